//! Access tokens: the one trait the clients ask for tokens through, a static token, a per-scope cache, and
//! an adapter over any `azure_identity` credential (feature `azure-identity`).
//!
//! ```
//! use dataverse_mi::auth::{Secret, StaticToken, TokenSource};
//! use std::time::{Duration, SystemTime};
//!
//! # tokio_test_block_on(async {
//! let source = StaticToken::new(Secret::new("eyJ0eXAi..."), SystemTime::now() + Duration::from_secs(3600));
//! let token = source.token(&["https://contoso.crm.dynamics.com/.default"]).await?;
//! assert_eq!(format!("{:?}", token.token), "Secret");
//! assert_eq!(token.token.expose(), "eyJ0eXAi...");
//! # Ok::<(), dataverse_mi::auth::AuthError>(())
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```
//!
//! Its files import `http` and the core: the floors below it (`tests/architecture.rs` checks that no import runs up a
//! floor and that no files import each other in a circle).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use crate::secret::Secret;

/// A bearer token and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The token.
    pub token: Secret,
    /// When it stops being accepted.
    pub expires_on: SystemTime,
}

/// Why a token could not be obtained.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The credential failed (e.g. `az login` has not been run, or the workload identity is not configured).
    #[error("could not get a token for {scopes}: {message}")]
    Credential {
        /// The scopes asked for.
        scopes: String,
        /// The credential's own explanation.
        message: String,
    },
    /// The credential could not be set up (e.g. a workload identity token file that cannot be read).
    #[error("the {kind} credential could not be set up: {message}")]
    Setup {
        /// Which credential.
        kind: CredentialKind,
        /// Why (never a secret).
        message: String,
    },
}

/// The credentials [`default_credential`] chooses between, as the Azure tools do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CredentialKind {
    /// Workload identity federation (`AZURE_FEDERATED_TOKEN_FILE`, with `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`):
    /// GitHub Actions, AKS.
    WorkloadIdentity,
    /// A client secret (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`).
    ClientSecret,
    /// The Azure CLI's sign-in (`az login`).
    AzureCli,
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialKind::WorkloadIdentity => "workload identity",
            CredentialKind::ClientSecret => "client secret",
            CredentialKind::AzureCli => "Azure CLI",
        })
    }
}

impl CredentialKind {
    /// The credential the environment variables choose (`var` reads one; empty counts as unset): workload
    /// identity when `AZURE_FEDERATED_TOKEN_FILE` is set, a client secret when `AZURE_TENANT_ID`,
    /// `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` are, else the Azure CLI.
    ///
    /// ```
    /// use dataverse_mi::auth::CredentialKind;
    /// let env = |name: &str| (name == "AZURE_FEDERATED_TOKEN_FILE").then(|| "/var/run/token".to_owned());
    /// assert_eq!(CredentialKind::from_env(env), CredentialKind::WorkloadIdentity);
    /// assert_eq!(CredentialKind::from_env(|_| None), CredentialKind::AzureCli);
    /// ```
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
        if set("AZURE_FEDERATED_TOKEN_FILE") {
            CredentialKind::WorkloadIdentity
        } else if set("AZURE_TENANT_ID") && set("AZURE_CLIENT_ID") && set("AZURE_CLIENT_SECRET") {
            CredentialKind::ClientSecret
        } else {
            CredentialKind::AzureCli
        }
    }
}

/// The credential the Azure tools would use here, as the CLI signs in: workload identity when
/// `AZURE_FEDERATED_TOKEN_FILE` is set, a client secret from `AZURE_TENANT_ID` / `AZURE_CLIENT_ID` /
/// `AZURE_CLIENT_SECRET`, else the Azure CLI (`az login`). See [`CredentialKind::from_env`]. Its token requests go
/// through azure_identity's own HTTP client; [`default_credential_over`] sends them through yours.
#[cfg(feature = "azure-identity")]
pub fn default_credential() -> Result<Arc<dyn TokenSource>, AuthError> {
    default_credential_over(None)
}

/// [`default_credential`], whose token requests (workload identity's and a client secret's, to Entra ID) go through
/// `transport` when given: the transport the clients use, so that one proxy, one set of certificates and one
/// recorder see every request. The Azure CLI credential runs `az` and sends nothing itself.
#[cfg(feature = "azure-identity")]
pub fn default_credential_over(
    transport: Option<Arc<dyn crate::http::Transport>>,
) -> Result<Arc<dyn TokenSource>, AuthError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let kind = CredentialKind::from_env(var);
    let setup = |e: azure_core::Error| AuthError::Setup { kind, message: e.to_string() };
    let client_options = || azure_core::http::ClientOptions {
        transport: transport.clone().map(|t| azure_core::http::Transport::new(Arc::new(TransportHttpClient::new(t)))),
        ..Default::default()
    };
    let credential: Arc<dyn azure_core::credentials::TokenCredential> = match kind {
        CredentialKind::WorkloadIdentity => {
            let options = azure_identity::WorkloadIdentityCredentialOptions {
                credential_options: azure_identity::ClientAssertionCredentialOptions {
                    client_options: client_options(),
                },
                ..Default::default()
            };
            azure_identity::WorkloadIdentityCredential::new(Some(options)).map_err(setup)?
        }
        CredentialKind::ClientSecret => {
            let (tenant, client, secret) = (
                var("AZURE_TENANT_ID").unwrap_or_default(),
                var("AZURE_CLIENT_ID").unwrap_or_default(),
                var("AZURE_CLIENT_SECRET").unwrap_or_default(),
            );
            let options = azure_identity::ClientSecretCredentialOptions { client_options: client_options() };
            azure_identity::ClientSecretCredential::new(
                &tenant,
                client,
                azure_core::credentials::Secret::new(secret),
                Some(options),
            )
            .map_err(setup)?
        }
        CredentialKind::AzureCli => azure_identity::AzureCliCredential::new(None).map_err(setup)?,
    };
    Ok(Arc::new(AzureIdentity::new(credential)))
}

/// A [`Transport`](crate::http::Transport) as azure_core's `HttpClient`, so that an azure_identity credential's
/// token requests go through it: give it in the credential's `ClientOptions::transport`
/// (`azure_core::http::Transport::new(Arc::new(TransportHttpClient::new(transport)))`).
#[cfg(feature = "azure-identity")]
#[derive(Debug, Clone)]
pub struct TransportHttpClient(Arc<dyn crate::http::Transport>);

#[cfg(feature = "azure-identity")]
impl TransportHttpClient {
    /// Wraps `transport`.
    pub fn new(transport: Arc<dyn crate::http::Transport>) -> Self {
        TransportHttpClient(transport)
    }
}

#[cfg(feature = "azure-identity")]
#[async_trait]
impl azure_core::http::HttpClient for TransportHttpClient {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        use azure_core::error::{Error, ErrorKind};
        let body = match request.body() {
            azure_core::http::Body::Bytes(bytes) => bytes.clone(),
            #[allow(unreachable_patterns)]
            _ => return Err(Error::with_message(ErrorKind::Other, "streamed request bodies are not supported")),
        };
        let mut builder = http::Request::builder().method(request.method().as_str()).uri(request.url().as_str());
        for (name, value) in request.headers().iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let outgoing = builder.body(body).map_err(|e| Error::new(ErrorKind::Other, e))?;
        let response = self.0.send(outgoing).await.map_err(|e| Error::new(ErrorKind::Io, e))?;
        let mut headers = azure_core::http::headers::Headers::new();
        for (name, value) in response.headers() {
            if let Ok(v) = value.to_str() {
                headers.insert(name.as_str().to_owned(), v.to_owned());
            }
        }
        let status = azure_core::http::StatusCode::from(response.status().as_u16());
        Ok(azure_core::http::AsyncRawResponse::from_bytes(status, headers, response.into_body()))
    }
}

/// Where the clients get tokens: one call, any credential behind it.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use dataverse_mi::reexports::async_trait;
/// use dataverse_mi::auth::{AccessToken, AuthError, Secret, TokenSource};
///
/// /// Tokens from the service's own token broker.
/// #[derive(Debug)]
/// struct Broker;
///
/// #[async_trait]
/// impl TokenSource for Broker {
///     async fn token(&self, scopes: &[&str]) -> Result<AccessToken, AuthError> {
///         let token = format!("token-for-{}", scopes.join(" ")); // ask the broker here
///         Ok(AccessToken { token: Secret::new(token), expires_on: SystemTime::now() + Duration::from_secs(3600) })
///     }
/// }
/// ```
///
/// Where a trait is more than needed, [`token_fn`] makes a source of an async function.
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A token valid for `scopes` (for this crate always one scope, `https://{host}/.default`).
    async fn token(&self, scopes: &[&str]) -> Result<AccessToken, AuthError>;
}

/// A [`TokenSource`] made of an async function of the scopes: see [`token_fn`].
pub struct TokenFn<F>(F);

impl<F> fmt::Debug for TokenFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenFn")
    }
}

/// A token source of an async function of the scopes, for when a trait is more than needed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::{Duration, SystemTime};
/// use dataverse_mi::auth::{AccessToken, Secret, TokenSource, token_fn};
///
/// let source = token_fn(|scopes: Vec<String>| async move {
///     Ok(AccessToken { token: Secret::new(format!("for {}", scopes[0])), expires_on: SystemTime::now() + Duration::from_secs(60) })
/// });
/// let token = source.token(&["https://graph.microsoft.com/.default"]).await.unwrap();
/// assert_eq!(token.token.expose(), "for https://graph.microsoft.com/.default");
/// # }
/// ```
pub fn token_fn<F, Fut>(f: F) -> TokenFn<F>
where
    F: Fn(Vec<String>) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<AccessToken, AuthError>> + Send,
{
    TokenFn(f)
}

#[async_trait]
impl<F, Fut> TokenSource for TokenFn<F>
where
    F: Fn(Vec<String>) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<AccessToken, AuthError>> + Send,
{
    async fn token(&self, scopes: &[&str]) -> Result<AccessToken, AuthError> {
        (self.0)(scopes.iter().map(|s| (*s).to_owned()).collect()).await
    }
}

/// A token given by the caller: for tests, and for callers that manage tokens themselves.
#[derive(Debug, Clone)]
pub struct StaticToken(AccessToken);

impl StaticToken {
    /// A token that is returned for every scope until `expires_on`.
    pub fn new(token: Secret, expires_on: SystemTime) -> Self {
        StaticToken(AccessToken { token, expires_on })
    }
}

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self, _scopes: &[&str]) -> Result<AccessToken, AuthError> {
        Ok(self.0.clone())
    }
}

/// Caches tokens per scope until shortly before they expire, so a run of a thousand requests asks the
/// credential once per service. A token is fetched once per scope however many requests wait for it (single
/// flight), and fetches for different scopes do not wait for each other.
#[derive(Debug)]
pub struct TokenCache {
    inner: Arc<dyn TokenSource>,
    refresh_margin: Duration,
    /// One slot per scope: its lock is held across that scope's fetch only.
    slots: std::sync::Mutex<HashMap<String, Slot>>,
}

/// A scope's cached token and when to refresh it.
type Slot = Arc<Mutex<Option<(AccessToken, Instant)>>>;

impl TokenCache {
    /// The default margin: a token is refreshed 5 minutes before it expires.
    pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(300);

    /// Caches `inner`'s tokens with the default refresh margin.
    pub fn new(inner: Arc<dyn TokenSource>) -> Self {
        Self::with_refresh_margin(inner, Self::DEFAULT_REFRESH_MARGIN)
    }

    /// Caches `inner`'s tokens, refreshing each `margin` before it expires.
    pub fn with_refresh_margin(inner: Arc<dyn TokenSource>, margin: Duration) -> Self {
        TokenCache { inner, refresh_margin: margin, slots: std::sync::Mutex::new(HashMap::new()) }
    }

    fn slot(&self, key: &str) -> Slot {
        // A panic elsewhere while holding this short lock leaves the map usable.
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.entry(key.to_owned()).or_default().clone()
    }

    /// Forgets every cached token.
    pub async fn clear(&self) {
        let slots: Vec<_> =
            self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).values().cloned().collect();
        for slot in slots {
            *slot.lock().await = None;
        }
    }

    /// Forgets the token cached for `scopes` (after the service refused it with a 401), so the next request
    /// fetches a fresh one.
    pub async fn forget(&self, scopes: &[&str]) {
        *self.slot(&scopes.join(" ")).lock().await = None;
    }
}

#[async_trait]
impl TokenSource for TokenCache {
    async fn token(&self, scopes: &[&str]) -> Result<AccessToken, AuthError> {
        let slot = self.slot(&scopes.join(" "));
        // Held across the fetch on purpose: the callers for this scope wait for one fetch instead of starting many;
        // other scopes have their own slots.
        let mut cached = slot.lock().await;
        if let Some((token, refresh_at)) = cached.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let token = self.inner.token(scopes).await?;
        // Measured on tokio's clock, so that tests with a paused clock control expiry exactly; a far-future expiry
        // (a credential's own sentinel) is kept for a year rather than overflowing.
        let lifetime = token.expires_on.duration_since(SystemTime::now()).unwrap_or_default();
        let keep = lifetime.saturating_sub(self.refresh_margin).min(Duration::from_secs(365 * 86_400));
        let refresh_at = Instant::now() + keep;
        *cached = Some((token.clone(), refresh_at));
        Ok(token)
    }
}

/// Who a bearer token says it was issued to, from its claims (`upn`, `unique_name`, `app_displayname`, `appid` /
/// `azp`, `oid`), for error messages; `None` when it is not a JWT with such claims. Never the token itself.
pub(crate) fn token_identity(token: &Secret) -> Option<String> {
    use base64::Engine as _;
    let payload = token.expose().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let name = text("upn").or_else(|| text("unique_name")).or_else(|| text("app_displayname"));
    let id = text("appid").or_else(|| text("azp")).or_else(|| text("oid"));
    match (name, id) {
        (Some(n), Some(i)) => Some(format!("{n} ({i})")),
        (Some(n), None) => Some(n),
        (None, Some(i)) => Some(i),
        (None, None) => None,
    }
}

/// Tokens from any `azure_identity` / `azure_core` credential: `AzureCliCredential`, `ClientSecretCredential`,
/// `WorkloadIdentityCredential` (GitHub Actions, AKS), `ManagedIdentityCredential`, ...
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use dataverse_mi::auth::{AzureIdentity, TokenSource};
/// let source = AzureIdentity::new(azure_identity::AzureCliCredential::new(None)?);
/// let token = source.token(&["https://contoso.crm.dynamics.com/.default"]).await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "azure-identity")]
#[derive(Debug, Clone)]
pub struct AzureIdentity(Arc<dyn azure_core::credentials::TokenCredential>);

#[cfg(feature = "azure-identity")]
impl AzureIdentity {
    /// Wraps a credential.
    pub fn new(credential: Arc<dyn azure_core::credentials::TokenCredential>) -> Self {
        AzureIdentity(credential)
    }
}

#[cfg(feature = "azure-identity")]
#[async_trait]
impl TokenSource for AzureIdentity {
    async fn token(&self, scopes: &[&str]) -> Result<AccessToken, AuthError> {
        let token = self
            .0
            .get_token(scopes, None)
            .await
            .map_err(|e| AuthError::Credential { scopes: scopes.join(" "), message: e.to_string() })?;
        Ok(AccessToken { token: Secret::new(token.token.secret()), expires_on: SystemTime::from(token.expires_on) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    #[async_trait]
    impl TokenSource for Counting {
        async fn token(&self, scopes: &[&str]) -> Result<AccessToken, AuthError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Ok(AccessToken {
                token: Secret::new(format!("token-{n}-{}", scopes.join(","))),
                expires_on: SystemTime::now() + Duration::from_secs(3600),
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn cache_per_scope_until_the_margin() {
        let inner = Arc::new(Counting::default());
        let cache = TokenCache::new(inner.clone());
        let a = cache.token(&["a"]).await.unwrap();
        assert_eq!(cache.token(&["a"]).await.unwrap(), a);
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
        cache.token(&["b"]).await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
        // 54 minutes later the token (one hour, 5 minute margin) is still used; at 56 it is refreshed.
        tokio::time::advance(Duration::from_secs(54 * 60)).await;
        assert_eq!(cache.token(&["a"]).await.unwrap(), a);
        tokio::time::advance(Duration::from_secs(2 * 60)).await;
        assert_ne!(cache.token(&["a"]).await.unwrap(), a);
        assert_eq!(inner.0.load(Ordering::SeqCst), 3);
        cache.clear().await;
        cache.token(&["a"]).await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 4);
    }

    /// Takes a second per fetch (like `az account get-access-token`), counting fetches.
    #[derive(Debug, Default)]
    struct Slow(AtomicUsize);

    #[async_trait]
    impl TokenSource for Slow {
        async fn token(&self, scopes: &[&str]) -> Result<AccessToken, AuthError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(AccessToken {
                token: Secret::new(format!("token-{}", scopes.join(","))),
                expires_on: SystemTime::now() + Duration::from_secs(3600),
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_fetch_per_scope_and_scopes_do_not_wait_for_each_other() {
        let inner = Arc::new(Slow::default());
        let cache = Arc::new(TokenCache::new(inner.clone()));
        let started = Instant::now();
        let calls = (0..20).map(|i| {
            let cache = cache.clone();
            let scope = format!("https://env{}.crm.dynamics.com/.default", i % 4);
            async move { cache.token(&[scope.as_str()]).await.unwrap() }
        });
        let tokens = futures_util::future::join_all(calls).await;
        assert_eq!(tokens.len(), 20);
        assert_eq!(inner.0.load(Ordering::SeqCst), 4, "one fetch per scope, however many callers wait");
        assert_eq!(started.elapsed(), Duration::from_secs(1), "four scopes fetched at once, not one after another");
        // Forgetting one scope (a 401) refetches that scope only.
        cache.forget(&["https://env0.crm.dynamics.com/.default"]).await;
        cache.token(&["https://env0.crm.dynamics.com/.default"]).await.unwrap();
        cache.token(&["https://env1.crm.dynamics.com/.default"]).await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_far_future_expiry_does_not_overflow() {
        let cache = TokenCache::new(Arc::new(StaticToken::new(
            Secret::new("t"),
            SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 4),
        )));
        assert!(cache.token(&["a"]).await.is_ok());
        assert!(cache.token(&["a"]).await.is_ok());
    }

    #[test]
    fn secrets_never_print() {
        let t = AccessToken { token: Secret::new("eyJhbGciOi.very.secret"), expires_on: SystemTime::UNIX_EPOCH };
        let shown = format!("{t:?} {} {:?}", t.token, StaticToken::new(t.token.clone(), t.expires_on));
        assert!(!shown.contains("very.secret"), "{shown}");
        assert!(shown.contains("Secret"));
    }
}
