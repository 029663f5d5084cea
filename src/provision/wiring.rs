//! One way to build a production engine from a spec: [`Provisioner::for_spec`].

use std::sync::Arc;

use super::ProvisionError;
use super::api::{access_api, identity_api};
use super::engine::{ProvisionOptions, Provisioner};
use super::spec::ProvisionSpec;
use crate::clients::Platform;
use crate::cloud::CloudProfile;

impl Provisioner {
    /// The engine for a spec, on `platform` (the client stack, built once and shared by every engine): Microsoft
    /// Graph for an app registration or Azure Resource Manager for a user-assigned identity, Dataverse for each
    /// environment, and ARM for role assignments when the spec has `grants`, the Global Discovery Service when it
    /// has `discover`, each reached where the platform's [`Endpoints`](crate::clients::Endpoints) say (by default
    /// the spec's cloud's own). Every client is a view of the platform: one transport, one token cache, one set of
    /// counters (the engine's reports count with them: `options.stats` is set to them), Dataverse requests of all
    /// environments under one concurrency limit. Making an engine sends nothing.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use dataverse_mi::clients::{ClientOptions, Platform};
    /// use dataverse_mi::provision::{ProvisionOptions, ProvisionSpec, Provisioner};
    ///
    /// # async fn run(credential: Arc<dyn dataverse_mi::auth::TokenSource>) -> Result<(), Box<dyn std::error::Error>> {
    /// let platform = Platform::new(credential, ClientOptions::default())?; // once, at start-up
    /// let spec = ProvisionSpec::from_file("spec.toml")?;
    /// let engine = Provisioner::for_spec(&spec, &platform, ProvisionOptions::default())?;
    /// let plan = engine.plan(&spec).await?;
    /// let report = engine.apply(&plan).await;
    /// assert!(report.is_success(), "{report}");
    /// # Ok(()) }
    /// ```
    pub fn for_spec(
        spec: &ProvisionSpec,
        platform: &Platform,
        mut options: ProvisionOptions,
    ) -> Result<Self, ProvisionError> {
        options.stats = Some(platform.stats().clone());
        let cloud = CloudProfile::from(spec.cloud);
        let identity = identity_api(&spec.identity, &cloud, platform).map_err(ProvisionError::identity)?;
        let mut engine = Provisioner::new(identity, Arc::new(platform.clone()), options).bound_to(spec);
        if !spec.grants.is_empty() {
            engine = engine.with_access(access_api(&cloud, platform).map_err(ProvisionError::identity)?);
        }
        if let Some(d) = &spec.discover {
            let url = d.discovery_url.as_deref().or(spec.cloud.global_discovery_url()).unwrap_or_default();
            let discovery = platform.discovery(url).map_err(ProvisionError::identity)?;
            engine = engine.with_discovery(Arc::new(discovery));
        }
        Ok(engine)
    }
}
