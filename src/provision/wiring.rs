//! Building a production engine: [`Provisioner::for_identity`], [`Provisioner::for_spec`].

use std::sync::Arc;

use super::ProvisionError;
use super::api::{access_api, directory_api, identity_api};
use super::engine::{ProvisionOptions, Provisioner};
use super::spec::{IdentitySpec, ProvisionSpec};
use crate::clients::Platform;
use crate::cloud::{Cloud, CloudProfile};

impl Provisioner {
    /// The engine for one identity in one cloud, on `platform` (the client stack, built once and shared by every
    /// engine): the engine a service builds once and shares across its tasks. It reads nothing else: any spec
    /// naming this identity and cloud can be planned, applied, verified and torn down with it (a spec or plan
    /// naming another is refused before any request, [`ProvisionError::OtherIdentity`]), with or without `grants`
    /// (its ARM client is always there) and `discover` (the Global Discovery Service the spec names, by default
    /// the cloud's own).
    ///
    /// Its clients are views of the platform: Microsoft Graph for an app registration or Azure Resource Manager for
    /// a user-assigned identity, Dataverse for each environment, ARM for role assignments, each reached where the
    /// platform's [`Endpoints`](crate::clients::Endpoints) say. One transport, one token cache, one set of total
    /// counters ([`Platform::stats`]), Dataverse requests of all environments under one concurrency limit; each
    /// call counts its own requests in its report ([`CallCounts`](super::CallCounts)). Making an engine sends
    /// nothing. `engine.clone()` is cheap and shares all of it (`.with_progress(f)` on a clone routes one caller's
    /// progress).
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use dataverse_mi::clients::{ClientOptions, Platform};
    /// use dataverse_mi::cloud::Cloud;
    /// use dataverse_mi::provision::{IdentitySpec, ProvisionOptions, ProvisionSpec, Provisioner};
    ///
    /// # async fn run(credential: Arc<dyn dataverse_mi::auth::TokenSource>) -> Result<(), Box<dyn std::error::Error>> {
    /// let platform = Platform::new(credential, ClientOptions::default())?; // once, at start-up
    /// let app = IdentitySpec::app_registration("0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b".parse()?);
    /// let engine = Provisioner::for_identity(&app, Cloud::Public, &platform, ProvisionOptions::default())?;
    /// // Per request, from any task:
    /// let spec = ProvisionSpec::from_file("spec.toml")?; // names the same app
    /// let plan = engine.plan(&spec).await?;
    /// let report = engine.apply(&plan).await;
    /// assert!(report.is_success(), "{report}");
    /// println!("{} requests, {} retries", report.counts.requests, report.counts.retries);
    /// # Ok(()) }
    /// ```
    pub fn for_identity(
        identity: &IdentitySpec,
        cloud: Cloud,
        platform: &Platform,
        options: ProvisionOptions,
    ) -> Result<Self, ProvisionError> {
        let profile = CloudProfile::from(cloud);
        let api = identity_api(identity, &profile, platform).map_err(ProvisionError::identity)?;
        let access = access_api(&profile, platform).map_err(ProvisionError::identity)?;
        let directory = directory_api(&profile, platform).map_err(ProvisionError::identity)?;
        // One platform, two views of it: the connector the engine reaches environments through, and the client
        // stack it makes the clients a spec asks for from (its discovery service).
        let shared = Arc::new(platform.clone());
        Ok(Provisioner::new(api, shared.clone(), options)
            .with_access(access)
            .with_directory(directory)
            .with_platform(shared)
            .bound_to_identity(identity, cloud))
    }

    /// [`for_identity`](Self::for_identity) with the spec's `identity` and `cloud` (the only fields of the spec it
    /// reads): the same engine plans any spec naming them.
    pub fn for_spec(
        spec: &ProvisionSpec,
        platform: &Platform,
        options: ProvisionOptions,
    ) -> Result<Self, ProvisionError> {
        Self::for_identity(&spec.identity, spec.cloud, platform, options)
    }
}
