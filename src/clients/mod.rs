//! Thin typed clients for the Dataverse Web API, Microsoft Graph and Azure Resource Manager.
//!
//! One method per API call, typed in and out, no provisioning policy. Every client shares the same
//! machinery: a base URL (injectable, so tests point it at a loopback fake), a token requested for exactly
//! that origin, a [`RetryOptions`](crate::http::RetryOptions) policy, a concurrency limit shared by the client's clones, and a
//! `tracing` span per request that never records the token.
//!
//! Its files import `auth`, `http` and the core (`guid` to `entities`): the floors below it (`tests/architecture.rs` checks that no import runs up a
//! floor and that no files import each other in a circle).

pub mod arm;
pub(crate) mod batch;
pub mod dataverse;
pub mod discovery;
mod error;
pub mod graph;
mod options;
mod paths;
mod pipeline;
pub(crate) mod platform;
pub mod policy;
mod request;
mod response;
mod stats;

pub use arm::{
    AUTHORIZATION_API_VERSION, ArmClient, ArmFederatedIdentityCredential, CREATED_BY_TAG,
    DEFAULT_MANAGED_IDENTITY_API_VERSION, RoleAssignment, RoleDefinition, UserAssignedIdentity,
    UserAssignedIdentityRef, role_assignment_name,
};
pub use dataverse::{
    ApplicationUser, BusinessUnit, ComponentKind, ComponentManagedIdentityFic, DATAVERSE_HOST_SUFFIXES,
    DataverseClient, EnvironmentStatus, ManagedIdentityUpdate, OrgUrl, SecurityRole, WhoAmI,
};
pub use discovery::{DiscoveredEnvironment, GlobalDiscoveryClient};
pub use error::{ApiError, DATAVERSE_DUPLICATE_KEY, DATAVERSE_NOT_FOUND, ErrorDetail, Service, ServiceError};
pub use graph::{
    AppRef, AppRole, AppRoleAssignment, Application, CREATED_TAG, DirectoryPrincipal, GraphClient,
    GraphFederatedIdentityCredential, MICROSOFT_GRAPH_APP_ID, PermissionScope, ResourceServicePrincipal,
    ServicePrincipal, UpsertOutcome,
};
pub(crate) use options::default_transport;
pub use options::{
    BatchPermits, ClientOptions, ConcurrencyLimit, DATAVERSE_BATCH_LIMIT, DEFAULT_MAX_PAGES, GRAPH_BATCH_LIMIT,
};
pub use paths::odata_string;
pub(crate) use paths::{any_of, base_url, check_base, path_segment, with_query};
pub(crate) use pipeline::Pipeline;
pub use platform::{
    DEFAULT_DATAVERSE_CONCURRENCY, DataverseBaseUrl, Endpoints, EndpointsFile, EndpointsFileError, Platform,
};
pub use policy::CONCURRENT_FIC_WRITES;
pub use request::{Answers, Batch, Request, Slot};
pub use response::Created;
pub(crate) use response::{Page, created, decode};
pub use stats::RequestStats;
