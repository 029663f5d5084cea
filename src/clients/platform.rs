//! [`Platform`]: the client stack, built once.

use std::fmt;
use std::sync::Arc;

use url::Url;

use super::{
    ApiError, ArmClient, ClientOptions, ConcurrencyLimit, DataverseClient, GlobalDiscoveryClient, GraphClient, OrgUrl,
    RequestStats,
};
use crate::auth::{TokenCache, TokenSource};
use crate::cloud::CloudProfile;
use crate::http::Transport;

/// Dataverse requests in flight at once across all environments of one [`Platform`], when the client options give
/// no shared limit: Dataverse allows 52 concurrent requests per user, and this leaves room for everything else the
/// same user runs.
pub const DEFAULT_DATAVERSE_CONCURRENCY: usize = 16;

/// Maps an organization to the base URL of its Web API (with `/api/data/v9.2/`), for environments reached
/// somewhere else than at their own host: a proxy, or a loopback fake (the testkit's `FakeServer::endpoints`).
pub type DataverseBaseUrl = Arc<dyn Fn(&OrgUrl) -> Result<Url, ApiError> + Send + Sync>;

/// Where the services are, when not at the cloud's own endpoints: a proxy, or a loopback fake (the testkit's
/// `FakeServer::endpoints`). The default is the cloud's endpoints and each organization's own host.
///
/// ```
/// use dataverse_mi::clients::Endpoints;
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

/// Where the services are, as a file: what `dataverse-mi fake` writes and every command that talks to the
/// services reads with `--endpoints FILE` (a proxy, or a loopback fake). Every field is optional: a service left
/// out is reached at the cloud's own endpoint.
///
/// ```
/// use dataverse_mi::clients::EndpointsFile;
///
/// let file: EndpointsFile = serde_json::from_str(r#"{
///     "graph": "http://127.0.0.1:40123/graph/v1.0/",
///     "dataverse": "http://127.0.0.1:40123/dv/{host}/api/data/v9.2/",
///     "fake": true
/// }"#)?;
/// let endpoints = file.endpoints()?;
/// assert!(endpoints.graph.is_some() && endpoints.arm.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EndpointsFile {
    /// Microsoft Graph's base URL (with `/v1.0/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<String>,
    /// Azure Resource Manager's base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    /// The Global Discovery Service's base URL (with `/api/discovery/v2.0/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<String>,
    /// Each organization's Web API base URL, `{host}` standing for the organization's host name
    /// (`http://127.0.0.1:40123/dv/{host}/api/data/v9.2/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataverse: Option<String>,
    /// The services are a fake that takes any token (the testkit's): no sign-in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fake: bool,
}

/// Where each service sits under the testkit fake's loopback address: the one place the layout is written (the
/// fake serves these paths, [`EndpointsFile::fake_at`] points clients at them).
pub(crate) mod fake_layout {
    /// Microsoft Graph.
    pub(crate) const GRAPH: &str = "/graph/v1.0/";
    /// Azure Resource Manager.
    pub(crate) const ARM: &str = "/arm/";
    /// The Global Discovery Service.
    pub(crate) const DISCOVERY: &str = "/discovery/api/discovery/v2.0/";
    /// Each environment, under its host name: `/dv/{host}/` then this.
    pub(crate) const DATAVERSE: &str = "/dv/";
    /// The Web API below an environment.
    pub(crate) const WEB_API: &str = "api/data/v9.2/";
    /// The token endpoint (only the fake serves it; clients get their tokens from the credential).
    #[cfg(feature = "testkit")]
    pub(crate) const LOGIN: &str = "/login/";
}

/// Why an endpoints file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointsFileError {
    /// The file cannot be read.
    #[error(transparent)]
    Read(#[from] crate::files::FileError),
    /// Not an endpoints file.
    #[error("{path}: not an endpoints file: {source}")]
    Format {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A URL in it is not one.
    #[error("the endpoints file's {field} is not a URL: '{value}'")]
    Url {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// The Dataverse template lacks `{host}`.
    #[error(
        "the endpoints file's dataverse URL must contain {{host}} (where each organization's host name goes): '{value}'"
    )]
    NoHost {
        /// Its value.
        value: String,
    },
}

impl EndpointsFile {
    /// Reads an endpoints file (JSON).
    pub fn read(path: impl AsRef<std::path::Path>) -> Result<EndpointsFile, EndpointsFileError> {
        let path = path.as_ref();
        let bytes = crate::files::read_bounded(path, crate::files::MAX_SPEC_FILE, "endpoints file")?;
        serde_json::from_slice(&bytes)
            .map_err(|source| EndpointsFileError::Format { path: path.display().to_string(), source })
    }

    /// The services at `uri` as the testkit's fake lays them out (`FakeServer::uri`): Graph under `/graph/v1.0/`,
    /// ARM under `/arm/`, discovery under `/discovery/api/discovery/v2.0/`, each environment under `/dv/{host}/`.
    /// The one place that layout is written.
    pub fn fake_at(uri: &str) -> EndpointsFile {
        use fake_layout::{ARM, DATAVERSE, DISCOVERY, GRAPH, WEB_API};
        let uri = uri.trim_end_matches('/');
        EndpointsFile {
            graph: Some(format!("{uri}{GRAPH}")),
            arm: Some(format!("{uri}{ARM}")),
            discovery: Some(format!("{uri}{DISCOVERY}")),
            dataverse: Some(format!("{uri}{DATAVERSE}{{host}}/{WEB_API}")),
            fake: true,
        }
    }

    /// The endpoints it names, each URL checked.
    pub fn endpoints(&self) -> Result<Endpoints, EndpointsFileError> {
        let url = |field: &'static str, v: &Option<String>| -> Result<Option<Url>, EndpointsFileError> {
            v.as_deref()
                .map(|s| s.parse::<Url>().map_err(|_| EndpointsFileError::Url { field, value: s.to_owned() }))
                .transpose()
        };
        let mut endpoints = Endpoints {
            graph: url("graph", &self.graph)?,
            arm: url("arm", &self.arm)?,
            discovery: url("discovery", &self.discovery)?,
            dataverse: None,
        };
        if let Some(template) = self.dataverse.clone() {
            if !template.contains("{host}") {
                return Err(EndpointsFileError::NoHost { value: template });
            }
            url("dataverse", &Some(template.replace("{host}", "contoso.crm.dynamics.com")))?;
            endpoints = endpoints.dataverse(Arc::new(move |org: &OrgUrl| {
                let base = template.replace("{host}", org.host());
                base.parse().map_err(|_| ApiError::invalid("URL", base))
            }));
        }
        Ok(endpoints)
    }
}

/// The client stack, built once and shared: one transport (one connection pool and TLS configuration), one token
/// cache around the credential, the options (retry, the caller's policies, the classifier), one set of request
/// counters, and the concurrency limits (Dataverse's shared by every environment, one for Graph, one for ARM, one
/// for discovery). Cheap to clone: clones are the same stack.
///
/// The clients are views of it, made on demand for a few allocations: [`dataverse`](Self::dataverse) per
/// organization, [`graph`](Self::graph), [`arm`](Self::arm), [`discovery`](Self::discovery). The engine borrows one
/// ([`Provisioner::for_identity`](crate::provision::Provisioner::for_identity)). A service builds one at start-up and hands
/// it to every request: tokens and connections are then reused across requests.
///
/// ```no_run
/// # fn run(credential: std::sync::Arc<dyn dataverse_mi::auth::TokenSource>) -> Result<(), dataverse_mi::clients::ApiError> {
/// use dataverse_mi::clients::{ClientOptions, Platform};
/// use dataverse_mi::cloud::{Cloud, CloudProfile};
///
/// let platform = Platform::new(credential, ClientOptions::default())?;
/// let contoso = platform.dataverse("https://contoso.crm.dynamics.com")?;
/// let fabrikam = platform.dataverse("https://fabrikam.crm4.dynamics.com")?;
/// let graph = platform.graph(&CloudProfile::from(Cloud::Public))?;
/// // All three share the transport, the token cache, the counters; both Dataverse clients share one limit.
/// # let _ = (contoso, fabrikam, graph); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Platform {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    credential: Arc<dyn TokenSource>,
    tokens: Arc<TokenCache>,
    stats: Arc<RequestStats>,
    /// With the transport, the token cache and the counters set.
    options: ClientOptions,
    dataverse_limit: ConcurrencyLimit,
    graph_limit: ConcurrencyLimit,
    arm_limit: ConcurrencyLimit,
    discovery_limit: ConcurrencyLimit,
    endpoints: Endpoints,
    any_host: bool,
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Platform")
            .field("options", &self.inner.options)
            .field("dataverse_limit", &self.inner.dataverse_limit.size())
            .field("endpoints", &self.inner.endpoints)
            .field("any_host", &self.inner.any_host)
            .finish()
    }
}

impl Platform {
    /// The stack for `credential` with `options`: the transport in `options` or one default transport, the token
    /// cache in `options` or one around `credential`, the counters in `options` or new ones. Dataverse requests of
    /// every environment share `options.shared_limit`, else a limit of [`DEFAULT_DATAVERSE_CONCURRENCY`]; Graph,
    /// ARM and discovery each have a limit of `options.max_concurrency`. `options.base_url` is ignored: give
    /// [`Endpoints`] instead ([`with_endpoints`](Self::with_endpoints)).
    pub fn new(credential: Arc<dyn TokenSource>, mut options: ClientOptions) -> Result<Self, ApiError> {
        let transport: Arc<dyn Transport> = match options.transport.take() {
            Some(t) => t,
            None => super::default_transport()?,
        };
        options.transport = Some(transport);
        let tokens = options.token_cache.get_or_insert_with(|| Arc::new(TokenCache::new(credential.clone()))).clone();
        let stats = options.stats.get_or_insert_with(Default::default).clone();
        options.base_url = None;
        let dataverse_limit =
            options.shared_limit.take().unwrap_or_else(|| ConcurrencyLimit::new(DEFAULT_DATAVERSE_CONCURRENCY));
        let limit = || ConcurrencyLimit::new(options.max_concurrency);
        Ok(Platform {
            inner: Arc::new(Inner {
                credential,
                tokens,
                stats,
                graph_limit: limit(),
                arm_limit: limit(),
                discovery_limit: limit(),
                options,
                dataverse_limit,
                endpoints: Endpoints::default(),
                any_host: false,
            }),
        })
    }

    /// The services at `endpoints` (a proxy, a loopback fake); organization URLs of any host are then accepted.
    pub fn with_endpoints(mut self, endpoints: Endpoints) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        inner.any_host |= endpoints.dataverse.is_some();
        inner.endpoints = endpoints;
        self
    }

    /// Organization URLs of any host accepted (a fake or a test double that serves made-up hosts). Without it,
    /// an organization URL must be a Dataverse host (`*.dynamics.com` and the other clouds' suffixes), whatever
    /// the transport.
    pub fn accepting_any_host(mut self) -> Self {
        Arc::make_mut(&mut self.inner).any_host = true;
        self
    }

    /// The counters every client of this stack adds its requests to.
    pub fn stats(&self) -> &Arc<RequestStats> {
        &self.inner.stats
    }

    /// The one token cache.
    pub fn token_cache(&self) -> &Arc<TokenCache> {
        &self.inner.tokens
    }

    /// The options every client is made with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Where the services are.
    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    fn options_for(&self, base_url: Option<Url>, limit: &ConcurrencyLimit) -> ClientOptions {
        ClientOptions { base_url, shared_limit: Some(limit.clone()), ..self.inner.options.clone() }
    }

    /// The Dataverse client of the organization at `org_url` (e.g. `https://contoso.crm.dynamics.com`).
    pub fn dataverse(&self, org_url: &str) -> Result<DataverseClient, ApiError> {
        let org = if self.inner.any_host { OrgUrl::any_host(org_url)? } else { OrgUrl::parse(org_url)? };
        self.dataverse_for(org)
    }

    /// The Dataverse client of `org`.
    pub fn dataverse_for(&self, org: OrgUrl) -> Result<DataverseClient, ApiError> {
        let base = match &self.inner.endpoints.dataverse {
            Some(base_url) => Some(base_url(&org)?),
            None => None,
        };
        DataverseClient::new(org, self.inner.credential.clone(), self.options_for(base, &self.inner.dataverse_limit))
    }

    /// The Microsoft Graph client of `cloud`.
    pub fn graph(&self, cloud: &CloudProfile) -> Result<GraphClient, ApiError> {
        let options = self.options_for(self.inner.endpoints.graph.clone(), &self.inner.graph_limit);
        GraphClient::new(cloud, self.inner.credential.clone(), options)
    }

    /// The Azure Resource Manager client of `cloud`.
    pub fn arm(&self, cloud: &CloudProfile) -> Result<ArmClient, ApiError> {
        let options = self.options_for(self.inner.endpoints.arm.clone(), &self.inner.arm_limit);
        ArmClient::new(cloud, self.inner.credential.clone(), options)
    }

    /// The Global Discovery Service client at `url` (see
    /// [`Cloud::global_discovery_url`](crate::cloud::Cloud::global_discovery_url)).
    pub fn discovery(&self, url: &str) -> Result<GlobalDiscoveryClient, ApiError> {
        let options = self.options_for(self.inner.endpoints.discovery.clone(), &self.inner.discovery_limit);
        GlobalDiscoveryClient::new(url, self.inner.credential.clone(), options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::StaticToken;
    use crate::secret::Secret;

    #[derive(Debug)]
    struct NoNetwork;

    #[async_trait::async_trait]
    impl Transport for NoNetwork {
        async fn send(
            &self,
            _: http::Request<bytes::Bytes>,
        ) -> Result<http::Response<bytes::Bytes>, crate::http::TransportError> {
            Err(crate::http::TransportError::new(crate::http::TransportErrorKind::Other, "no network in this test"))
        }
    }

    fn token() -> Arc<dyn TokenSource> {
        Arc::new(StaticToken::new(Secret::new("t"), std::time::SystemTime::now() + std::time::Duration::from_secs(60)))
    }

    #[test]
    fn views_reach_only_dataverse_hosts_unless_told_otherwise() {
        let options = ClientOptions { transport: Some(Arc::new(NoNetwork)), ..ClientOptions::default() };
        let platform = Platform::new(token(), options).unwrap();
        assert!(platform.dataverse("https://contoso.crm.dynamics.com").is_ok());
        assert!(platform.dataverse("https://contoso.crm4.dynamics.com").is_ok());
        assert!(platform.dataverse("https://evil.example.com").is_err(), "a custom transport does not turn it off");
        let fake = platform.clone().accepting_any_host();
        assert!(fake.dataverse("https://made-up.example.test").is_ok());
        assert!(platform.dataverse("https://made-up.example.test").is_err(), "the original is unchanged");
    }

    #[test]
    fn clones_are_the_same_stack() {
        let options = ClientOptions { transport: Some(Arc::new(NoNetwork)), ..ClientOptions::default() };
        let platform = Platform::new(token(), options).unwrap();
        let clone = platform.clone();
        assert!(Arc::ptr_eq(platform.stats(), clone.stats()));
        assert!(Arc::ptr_eq(platform.token_cache(), clone.token_cache()));
        let (a, b) = (platform.options().transport.clone().unwrap(), clone.options().transport.clone().unwrap());
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(platform.inner.dataverse_limit.size(), DEFAULT_DATAVERSE_CONCURRENCY);
    }

    #[cfg(feature = "reqwest")]
    #[test]
    fn one_default_transport_is_made() {
        let platform = Platform::new(token(), ClientOptions::default()).unwrap();
        assert!(platform.options().transport.is_some(), "made once, shared by every client");
    }
}
