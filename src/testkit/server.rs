//! Serving the fake: in-process (a [`Transport`]) or over loopback HTTP (wiremock), and the engine and client
//! stack wired to it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::auth::{Secret, StaticToken, TokenSource};
use crate::clients::{ApiError, ArmClient, ClientOptions, DataverseClient, GraphClient, OrgUrl};
use crate::cloud::{Cloud, CloudProfile};
use crate::http::{Transport, TransportError, TransportErrorKind};

use super::FakePlatform;
use super::router::{self, Handled};

impl FakePlatform {
    /// An in-process transport to the fake: give it to clients in [`ClientOptions::transport`]. URLs are routed
    /// by host (`*.dynamics.com` and friends to the environment of that host, `graph.microsoft.com` to Graph,
    /// `management.azure.com` to ARM, `login.microsoftonline.com` to the token endpoint).
    pub fn transport(&self) -> Arc<dyn Transport> {
        Arc::new(FakeTransport { platform: self.clone() })
    }

    /// Serves the fake over loopback HTTP (wiremock). Dataverse environments are under `/dv/{host}/`, Graph
    /// under `/graph/`, ARM under `/arm/`, the token endpoint under `/login/`.
    pub async fn start(&self) -> FakeServer {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::any())
            .respond_with(WiremockResponder { platform: self.clone() })
            .mount(&server)
            .await;
        FakeServer { server, platform: self.clone() }
    }

    /// Handles one request: the core both front ends share.
    pub(crate) fn handle(&self, request: &http::Request<Bytes>, host_hint: Option<&str>, path: &str) -> Handled {
        let handled = router::handle(&mut self.lock(), request, host_hint, path);
        let count = self.lock().log.len();
        self.received.send_replace(count);
        handled
    }
}

#[derive(Debug)]
struct FakeTransport {
    platform: FakePlatform,
}

#[async_trait::async_trait]
impl Transport for FakeTransport {
    async fn send(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
        let path = request.uri().path().to_owned();
        let host = request.uri().host().map(str::to_owned);
        match self.platform.handle(&request, host.as_deref(), &path) {
            Handled::Answer(response, delay) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(response)
            }
            Handled::Drop { delay, .. } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Err(TransportError::new(TransportErrorKind::Connection, "connection reset by peer (injected)"))
            }
        }
    }
}

struct WiremockResponder {
    platform: FakePlatform,
}

impl wiremock::Respond for WiremockResponder {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let mut builder = http::Request::builder().method(request.method.as_str()).uri(request.url.as_str());
        for (name, value) in request.headers.iter() {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
        let Ok(req) = builder.body(Bytes::from(request.body.clone())) else {
            return wiremock::ResponseTemplate::new(400);
        };
        match self.platform.handle(&req, None, request.url.path()) {
            Handled::Answer(response, delay) => {
                // The answer's own media type: a `$batch` answer is `multipart/mixed` with its boundary (wiremock's
                // body type would otherwise win over a content-type header, and a client could not read the batch).
                let content_type = response
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/json");
                let mut t = wiremock::ResponseTemplate::new(response.status().as_u16())
                    .set_body_raw(response.body().to_vec(), content_type)
                    .set_delay(delay);
                for (name, value) in response.headers() {
                    if name == http::header::CONTENT_TYPE {
                        continue;
                    }
                    if let Ok(v) = value.to_str() {
                        t = t.insert_header(name.as_str(), v);
                    }
                }
                t
            }
            // wiremock cannot drop a connection: answer 503 instead (drops need the in-process transport).
            Handled::Drop { delay, .. } => wiremock::ResponseTemplate::new(503).set_delay(delay),
        }
    }
}

/// The fake served over loopback HTTP.
#[derive(Debug)]
pub struct FakeServer {
    server: wiremock::MockServer,
    platform: FakePlatform,
}

/// Everything the provisioning engine needs to run against the fake.
#[derive(Debug, Clone)]
pub struct FakeClients {
    /// The engine, ready to plan, apply and verify.
    pub provisioner: crate::provision::Provisioner,
    /// Requests and retries made by the engine's clients.
    pub stats: Arc<crate::clients::RequestStats>,
}

impl FakePlatform {
    /// An engine wired to this fake through the in-process transport: `concurrency` requests at most in flight
    /// per service (Dataverse shared by every environment, as the per-user limit is), with the given retry
    /// policy.
    pub fn provisioner(
        &self,
        spec: &crate::provision::ProvisionSpec,
        concurrency: usize,
        retry: crate::http::RetryOptions,
        options: crate::provision::ProvisionOptions,
    ) -> Result<FakeClients, crate::provision::ProvisionError> {
        let platform = self.client_platform(concurrency, retry).map_err(crate::provision::ProvisionError::identity)?;
        // The production constructor, with the fake's in-process transport (it routes by the real host names).
        let provisioner = crate::provision::Provisioner::for_spec(spec, &platform, options)?;
        Ok(FakeClients { provisioner, stats: platform.stats().clone() })
    }

    /// The client stack ([`Platform`](crate::clients::Platform)) on this fake's in-process transport, with a test
    /// token: `concurrency` requests at most in flight per service (Dataverse shared by every environment), with the
    /// given retry policy. The real host names are used: the transport routes by them.
    pub fn client_platform(
        &self,
        concurrency: usize,
        retry: crate::http::RetryOptions,
    ) -> Result<crate::clients::Platform, ApiError> {
        let client = ClientOptions {
            retry,
            max_concurrency: concurrency,
            transport: Some(self.transport()),
            shared_limit: Some(crate::clients::ConcurrencyLimit::new(concurrency)),
            ..ClientOptions::default()
        };
        crate::clients::Platform::new(test_token(), client)
    }
}

/// The fake's services served at `uri` (e.g. `http://127.0.0.1:PORT`, from [`FakeServer::uri`]): Graph under
/// `/graph/v1.0/`, ARM under `/arm/`, each environment under `/dv/{host}/` (the layout
/// [`EndpointsFile::fake_at`](crate::clients::EndpointsFile::fake_at) writes). For a process that knows only the
/// fake's address; a `uri` that is not a URL is an error, never the real services.
pub fn endpoints_at(uri: &str) -> Result<crate::provision::Endpoints, crate::clients::EndpointsFileError> {
    crate::clients::EndpointsFile::fake_at(uri).endpoints()
}

/// A token for tests: any value works against the fake.
pub fn test_token() -> Arc<dyn TokenSource> {
    Arc::new(StaticToken::new(Secret::new("fake-token"), SystemTime::now() + Duration::from_secs(24 * 3600)))
}

impl FakeServer {
    /// The server's base URI, e.g. `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The wiremock server underneath, for ad-hoc mocks: mount them `.with_priority(1)` so that they answer before
    /// the fake (which answers every request at wiremock's default priority).
    pub fn mock_server(&self) -> &wiremock::MockServer {
        &self.server
    }

    /// The platform behind it.
    pub fn platform(&self) -> &FakePlatform {
        &self.platform
    }

    /// Where this fake's services are, as the file `dataverse-mi fake` writes ([`EndpointsFile::fake_at`]
    /// this server's URI: the one place the loopback layout is written).
    ///
    /// [`EndpointsFile::fake_at`]: crate::clients::EndpointsFile::fake_at
    pub fn endpoints_file(&self) -> crate::clients::EndpointsFile {
        crate::clients::EndpointsFile::fake_at(&self.uri())
    }

    /// Client options pointing at this fake for an environment at `host`.
    pub fn dataverse_options(&self, host: &str) -> Result<ClientOptions, ApiError> {
        let template = self.endpoints_file().dataverse.unwrap_or_default();
        let base = template.replace("{host}", &host.to_ascii_lowercase());
        Ok(ClientOptions {
            base_url: Some(base.parse().map_err(|_| ApiError::invalid("host", host.to_owned()))?),
            ..ClientOptions::default()
        })
    }

    /// A Dataverse client for the environment at `host`, with a test token.
    pub fn dataverse_client(&self, host: &str) -> Result<DataverseClient, ApiError> {
        DataverseClient::new(OrgUrl::any_host(host)?, test_token(), self.dataverse_options(host)?)
    }

    /// Client options pointing at this fake's Graph.
    pub fn graph_options(&self) -> ClientOptions {
        let base = self.endpoints_file().graph.and_then(|g| g.parse().ok());
        ClientOptions { base_url: base, ..ClientOptions::default() }
    }

    /// A Graph client with a test token.
    pub fn graph_client(&self) -> Result<GraphClient, ApiError> {
        GraphClient::new(&CloudProfile::from(Cloud::Public), test_token(), self.graph_options())
    }

    /// Client options pointing at this fake's ARM.
    pub fn arm_options(&self) -> ClientOptions {
        let base = self.endpoints_file().arm.and_then(|a| a.parse().ok());
        ClientOptions { base_url: base, ..ClientOptions::default() }
    }

    /// An ARM client with a test token.
    pub fn arm_client(&self) -> Result<ArmClient, ApiError> {
        ArmClient::new(&CloudProfile::from(Cloud::Public), test_token(), self.arm_options())
    }

    /// Where the fake's services are ([`endpoints_at`] this server's URI), for
    /// [`Platform::with_endpoints`](crate::clients::Platform::with_endpoints).
    pub fn endpoints(&self) -> crate::provision::Endpoints {
        // The server's address is `http://IP:PORT`: its URLs are well formed by construction.
        endpoints_at(&self.uri()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the fake's own address is not a URL");
            crate::provision::Endpoints::default()
        })
    }

    /// The client stack ([`Platform`](crate::clients::Platform)) reaching this fake over loopback HTTP, with a test
    /// token and the given options: the default transport, at [`FakeServer::endpoints`].
    pub fn client_platform(&self, options: ClientOptions) -> Result<crate::clients::Platform, ApiError> {
        Ok(crate::clients::Platform::new(test_token(), options)?.with_endpoints(self.endpoints()))
    }

    /// An engine wired to this fake over loopback HTTP, by the production constructor
    /// ([`Provisioner::for_spec`](crate::provision::Provisioner::for_spec)) on [`client_platform`](
    /// Self::client_platform) with the default options.
    pub fn provisioner(
        &self,
        spec: &crate::provision::ProvisionSpec,
        options: crate::provision::ProvisionOptions,
    ) -> Result<FakeClients, crate::provision::ProvisionError> {
        let platform =
            self.client_platform(ClientOptions::default()).map_err(crate::provision::ProvisionError::identity)?;
        let provisioner = crate::provision::Provisioner::for_spec(spec, &platform, options)?;
        Ok(FakeClients { provisioner, stats: platform.stats().clone() })
    }
}
