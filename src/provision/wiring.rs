//! One way to build a production engine from a spec: [`Provisioner::for_spec`].

use std::fmt;
use std::sync::Arc;

use url::Url;

use super::ProvisionError;
use super::api::{ClientConnector, DataverseBaseUrl, access_api, identity_api};
use super::engine::{ProvisionOptions, Provisioner};
use super::spec::ProvisionSpec;
use crate::auth::TokenSource;
use crate::clients::{ClientOptions, ConcurrencyLimit, RequestStats};
use crate::cloud::CloudProfile;

/// Dataverse requests in flight at once across all environments of one engine, when the client options give no
/// shared limit: Dataverse allows 52 concurrent requests per user, and this leaves room for everything else the
/// same user runs.
pub const DEFAULT_DATAVERSE_CONCURRENCY: usize = 16;

/// Where the engine reaches each service, when not at the spec's cloud's own endpoints: a proxy, or a loopback
/// fake (the testkit's `FakeServer::endpoints`). The default is the cloud's endpoints and each organization's own
/// host.
///
/// ```
/// use dataverse_mi::provision::Endpoints;
/// let endpoints = Endpoints::default()
///     .graph("https://graph-proxy.contoso.com/v1.0/".parse()?)
///     .arm("https://arm-proxy.contoso.com/".parse()?);
/// # Ok::<(), url::ParseError>(())
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Endpoints {
    /// Microsoft Graph's base URL (with `/v1.0/`).
    pub graph: Option<Url>,
    /// Azure Resource Manager's base URL.
    pub arm: Option<Url>,
    /// Each organization's Web API base URL (with `/api/data/v9.2/`).
    pub dataverse: Option<DataverseBaseUrl>,
    /// The Global Discovery Service's base URL (with `/api/discovery/v2.0/`).
    pub discovery: Option<Url>,
}

impl fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoints")
            .field("graph", &self.graph.as_ref().map(Url::as_str))
            .field("arm", &self.arm.as_ref().map(Url::as_str))
            .field("dataverse", &self.dataverse.is_some())
            .field("discovery", &self.discovery.as_ref().map(Url::as_str))
            .finish()
    }
}

impl Endpoints {
    /// Graph at `base` (with `/v1.0/`).
    pub fn graph(mut self, base: Url) -> Self {
        self.graph = Some(base);
        self
    }

    /// ARM at `base`.
    pub fn arm(mut self, base: Url) -> Self {
        self.arm = Some(base);
        self
    }

    /// The Global Discovery Service at `base` (with `/api/discovery/v2.0/`).
    pub fn discovery(mut self, base: Url) -> Self {
        self.discovery = Some(base);
        self
    }

    /// Each organization's Web API where `base_url` says.
    pub fn dataverse(mut self, base_url: DataverseBaseUrl) -> Self {
        self.dataverse = Some(base_url);
        self
    }
}

impl Provisioner {
    /// The engine for a spec, against the real services of the spec's cloud: Microsoft Graph for an app
    /// registration or Azure Resource Manager for a user-assigned identity, Dataverse for each environment, and ARM
    /// for role assignments when the spec has `grants`, the Global Discovery Service when it has `discover`. Every
    /// client signs in with `credential` (one token per
    /// scope, cached), uses `client`'s retry policy and transport, and adds its requests to one set of counters
    /// (`options.stats`, or `client.stats`, or new ones) so that `ApplyReport` counts them. Dataverse requests of
    /// all environments share one concurrency limit (`client.shared_limit`, else
    /// [`DEFAULT_DATAVERSE_CONCURRENCY`]); Graph and ARM clients each have `client.max_concurrency`.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use dataverse_mi::clients::ClientOptions;
    /// use dataverse_mi::provision::{ProvisionOptions, ProvisionSpec, Provisioner};
    ///
    /// # async fn run(credential: Arc<dyn dataverse_mi::auth::TokenSource>) -> Result<(), Box<dyn std::error::Error>> {
    /// let spec = ProvisionSpec::from_file("spec.toml")?;
    /// let engine = Provisioner::for_spec(&spec, credential, ClientOptions::default(), ProvisionOptions::default())?;
    /// let plan = engine.plan(&spec).await?;
    /// let report = engine.apply(&plan).await;
    /// assert!(report.is_success(), "{report}");
    /// # Ok(()) }
    /// ```
    pub fn for_spec(
        spec: &ProvisionSpec,
        credential: Arc<dyn TokenSource>,
        client: ClientOptions,
        options: ProvisionOptions,
    ) -> Result<Self, ProvisionError> {
        Self::for_spec_at(spec, credential, client, options, Endpoints::default())
    }

    /// [`for_spec`](Self::for_spec), with the services at `endpoints` (a proxy, a loopback fake).
    pub fn for_spec_at(
        spec: &ProvisionSpec,
        credential: Arc<dyn TokenSource>,
        mut client: ClientOptions,
        mut options: ProvisionOptions,
        endpoints: Endpoints,
    ) -> Result<Self, ProvisionError> {
        let stats =
            options.stats.clone().or_else(|| client.stats.clone()).unwrap_or_else(|| Arc::new(RequestStats::default()));
        client.stats = Some(stats.clone());
        options.stats = Some(stats);
        // One token cache for every client the engine makes (Graph, ARM, each environment's Dataverse,
        // discovery): the only one, so a 401's refresh reaches all of them.
        client.token_cache.get_or_insert_with(|| Arc::new(crate::auth::TokenCache::new(credential.clone())));
        let cloud = CloudProfile::from(spec.cloud);
        let at = |base: &Option<Url>| ClientOptions { base_url: base.clone(), shared_limit: None, ..client.clone() };
        let identity =
            identity_api(&spec.identity, &cloud, credential.clone(), at(&endpoints.graph), at(&endpoints.arm))
                .map_err(ProvisionError::identity)?;
        let dataverse = ClientOptions {
            base_url: None,
            shared_limit: Some(
                client.shared_limit.clone().unwrap_or_else(|| ConcurrencyLimit::new(DEFAULT_DATAVERSE_CONCURRENCY)),
            ),
            ..client.clone()
        };
        let mut connector = ClientConnector::new(credential.clone(), dataverse);
        if let Some(base_url) = endpoints.dataverse {
            connector = connector.with_base_url(base_url);
        }
        let mut engine = Provisioner::new(identity, Arc::new(connector), options).bound_to(spec);
        if !spec.grants.is_empty() {
            let access =
                access_api(&cloud, credential.clone(), at(&endpoints.arm)).map_err(ProvisionError::identity)?;
            engine = engine.with_access(access);
        }
        if let Some(d) = &spec.discover {
            let url = d.discovery_url.as_deref().or(spec.cloud.global_discovery_url()).unwrap_or_default();
            let discovery = crate::clients::GlobalDiscoveryClient::new(url, credential, at(&endpoints.discovery))
                .map_err(ProvisionError::identity)?;
            engine = engine.with_discovery(Arc::new(discovery));
        }
        Ok(engine)
    }
}
