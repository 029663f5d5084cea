//! A stateful, in-process fake of the platform: the Dataverse Web API (the routes the clients use), Microsoft
//! Graph and Azure Resource Manager FIC endpoints, and a token endpoint. For this crate's tests, and for yours.
//!
//! Seed it with environments, plug-in assemblies and packages, app registrations and user-assigned identities;
//! point clients at it over loopback HTTP ([`FakePlatform::start`], on wiremock) or in-process
//! ([`FakePlatform::transport`], no sockets, where even dropped connections can be injected); then inspect the
//! rows, FICs, bindings and the request log. Faults (429 with `Retry-After`, 503, dropped connections, delays)
//! are injected at a seeded rate, so a chaos run is reproducible.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use dataverse_mi::testkit::{FakeOptions, FakePlatform};
//! use uuid::Uuid;
//!
//! let fake = FakePlatform::new(FakeOptions::default());
//! let tenant = Uuid::parse_str("72f988bf-86f1-41af-91ab-2d7cd011db47")?;
//! let env = fake.add_environment("contoso.crm.dynamics.com", tenant);
//! // A tenant's Default environment answers `Default-{tenant}`, as the platform does.
//! let default = fake.add_default_environment("org0.crm.dynamics.com", tenant);
//! assert_eq!(default.to_string(), "Default-72f988bf-86f1-41af-91ab-2d7cd011db47");
//! let server = fake.start().await;
//! let client = server.dataverse_client("contoso.crm.dynamics.com")?;
//! let org = client.retrieve_current_organization().await?;
//! assert_eq!(org.environment_id, Some(env));
//! assert_eq!(fake.count("GET dataverse RetrieveCurrentOrganization".parse()?), 1);
//! # Ok(()) }
//! ```
//!
//! A facade over files of one concern, lowest first: `options` and `state` (plain data), `model` (the platform's
//! rules), `access` and `batch` (multipart), `handlers` (one per route), `routes` (the table), `router` (dispatch,
//! faults, batches, the log), then the platform's handle (`platform`, with `environments` and `identities` for
//! seeding and reading) and `server` (the transports). `seed` and `replay` stand apart. They import the clients,
//! the engine's types and the core.
//!
//! Its files import `provision`, `clients`, `auth`, `http` and the core: the floors below it (`tests/architecture.rs` checks that no import runs up a
//! floor and that no files import each other in a circle).

mod access;
pub mod batch;
mod environments;
mod handlers;
mod identities;
mod model;
mod options;
mod platform;
mod replay;
mod route_name;
mod router;
mod routes;
mod seed;
mod server;
mod state;

pub use options::{FakeOptions, Fault, FaultKind, FaultOptions};
pub use platform::FakePlatform;
pub use replay::{CapturedRequest, ReplayEvent, ReplayMismatch, ReplayTransport, response as replay_response};
pub use route_name::{Route, UnknownRoute};
pub use seed::{
    SCENARIOS, Seed, SeedApplication, SeedAssembly, SeedEnvironment, SeedError, SeedPackage, SeedUserAssignedIdentity,
};
pub use server::{FakeClients, FakeServer, endpoints_at, test_token};
pub(crate) use state::{App, Component, Environment, State, Uami, ids};
pub use state::{LoggedRequest, Presentation};
