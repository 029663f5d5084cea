//! Auditing an estate: every plug-in managed identity row (`credentialsource` 2), every plug-in assembly and
//! package bound to one (with its registered signature and the subject the platform presents for it), and, where
//! the signed-in identity can read them, the FICs of each row's application or user-assigned identity, across any
//! number of environments; what is wrong with each, with a stable id, a severity, the evidence and the fix; and the
//! specs that fix what can be fixed, which `plan`/`apply` carry out. The audit itself writes nothing.
//!
//! ```no_run
//! # async fn run(platform: dataverse_mi::clients::Platform) -> Result<(), Box<dyn std::error::Error>> {
//! use dataverse_mi::audit::{AuditOptions, Auditor};
//! use dataverse_mi::cloud::{Cloud, CloudProfile};
//!
//! let auditor = Auditor::on_platform(&platform, &CloudProfile::from(Cloud::Public))?;
//! let urls = vec!["https://contoso-dev.crm.dynamics.com".to_owned()];
//! let report = auditor.audit(&urls, &AuditOptions::default()).await;
//! println!("{report}");
//! for (file, spec) in report.fix_specs() {
//!     println!("{file}: {} environment(s) to fix", spec.environments.len());
//! }
//! # Ok(()) }
//! ```

mod findings;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::{StreamExt as _, stream};
use serde::Serialize;
use uuid::Uuid;

pub use findings::{AuditFinding, FindingKind, Severity};

use crate::clients::dataverse::requests as dv;
use crate::clients::{ApiError, AppRef, ArmClient, Batch, ComponentKind, GraphClient, UserAssignedIdentityRef};
use crate::fic::FederatedIdentityCredential;
use crate::provision::SigningCertificate;
use crate::provision::api::{DataverseConnector, send_reads};

/// How an audit reads.
#[derive(Clone)]
#[non_exhaustive]
pub struct AuditOptions {
    /// A certificate ending within this window is reported as expiring (60 days by default: time to sign with the
    /// next certificate, register and rotate).
    pub expiry_window: Duration,
    /// Environments read at once (8 by default); the client stack's Dataverse limit caps the requests in flight.
    pub concurrency: usize,
    /// The time certificates are judged at (now by default).
    pub now: Option<SystemTime>,
    /// Called after each environment is read: (environments read, environments in all).
    pub progress: Option<Arc<dyn Fn(usize, usize) + Send + Sync>>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions { expiry_window: Duration::from_secs(60 * 86_400), concurrency: 8, now: None, progress: None }
    }
}

impl fmt::Debug for AuditOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditOptions")
            .field("expiry_window", &self.expiry_window)
            .field("concurrency", &self.concurrency)
            .field("now", &self.now)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl AuditOptions {
    /// Certificates ending within `window` are expiring.
    pub fn expiry_window(mut self, window: Duration) -> Self {
        self.expiry_window = window;
        self
    }

    /// `n` environments read at once.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Certificates judged at `now`.
    pub fn at(mut self, now: SystemTime) -> Self {
        self.now = Some(now);
        self
    }

    /// `progress(read, all)` after each environment.
    pub fn progress(mut self, progress: impl Fn(usize, usize) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }
}

/// An identity as the directory knows it: an app registration or a user-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum EstateIdentity {
    /// An app registration's service principal.
    AppRegistration {
        /// The application (client) id.
        app_id: Uuid,
    },
    /// A user-assigned managed identity.
    UserAssigned {
        /// Its client id.
        client_id: Uuid,
        /// Its ARM resource id.
        resource_id: String,
    },
}

impl EstateIdentity {
    /// The identity as a spec names it.
    pub fn spec(&self) -> Option<crate::provision::IdentitySpec> {
        match self {
            EstateIdentity::AppRegistration { app_id } => {
                Some(crate::provision::IdentitySpec::app_registration(*app_id))
            }
            EstateIdentity::UserAssigned { resource_id, .. } => {
                let r = uami_ref(resource_id)?;
                Some(crate::provision::IdentitySpec::user_assigned(r.subscription_id, r.resource_group, r.name))
            }
        }
    }
}

/// `/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{n}`, read.
fn uami_ref(resource_id: &str) -> Option<UserAssignedIdentityRef> {
    let parts: Vec<&str> = resource_id.trim_matches('/').split('/').collect();
    let at = |key: &str| {
        parts.iter().position(|p| p.eq_ignore_ascii_case(key)).and_then(|i| parts.get(i + 1)).map(|s| (*s).to_owned())
    };
    Some(UserAssignedIdentityRef {
        subscription_id: at("subscriptions")?,
        resource_group: at("resourceGroups")?,
        name: at("userAssignedIdentities")?,
    })
}

/// The directory reads an audit needs: who a client id is, and its FICs.
#[async_trait]
pub trait EstateDirectory: Send + Sync + fmt::Debug {
    /// The identity with this client id; `None` when the tenant has none.
    async fn identity(&self, client_id: Uuid) -> Result<Option<EstateIdentity>, ApiError>;
    /// Its FICs.
    async fn fics(&self, identity: &EstateIdentity) -> Result<Vec<FederatedIdentityCredential>, ApiError>;
}

/// The production directory: Microsoft Graph for who a client id is and an application's FICs, ARM for a
/// user-assigned identity's.
#[derive(Debug, Clone)]
pub struct PlatformDirectory {
    graph: GraphClient,
    arm: ArmClient,
}

impl PlatformDirectory {
    /// Over these clients.
    pub fn new(graph: GraphClient, arm: ArmClient) -> Self {
        PlatformDirectory { graph, arm }
    }
}

#[async_trait]
impl EstateDirectory for PlatformDirectory {
    async fn identity(&self, client_id: Uuid) -> Result<Option<EstateIdentity>, ApiError> {
        let principal = match self.graph.send(crate::clients::graph::requests::directory_principal(client_id)).await {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(match principal.user_assigned_resource_id() {
            Some(resource_id) => EstateIdentity::UserAssigned { client_id, resource_id: resource_id.to_owned() },
            None => EstateIdentity::AppRegistration { app_id: client_id },
        }))
    }

    async fn fics(&self, identity: &EstateIdentity) -> Result<Vec<FederatedIdentityCredential>, ApiError> {
        match identity {
            EstateIdentity::AppRegistration { app_id } => {
                Ok(self.graph.list_fics(AppRef::AppId(*app_id)).await?.into_iter().map(|f| f.credential).collect())
            }
            EstateIdentity::UserAssigned { resource_id, .. } => {
                let r = uami_ref(resource_id)
                    .ok_or_else(|| ApiError::invalid("identity", format!("'{resource_id}' is no identity's id")))?;
                Ok(self.arm.list_fics(&r).await?.into_iter().map(|f| f.credential).collect())
            }
        }
    }
}

/// A `managedidentity` row, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditedRow {
    /// The row's id.
    pub id: Uuid,
    /// Its name.
    pub name: Option<String>,
    /// Its `applicationid`.
    pub application_id: Option<Uuid>,
    /// Its `tenantid`.
    pub tenant_id: Option<Uuid>,
    /// Its subject format `version` (`None`/0: deprecated).
    pub version: Option<i32>,
}

/// A plug-in assembly or package bound to a row, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditedComponent {
    /// Assembly or package.
    pub kind: ComponentKind,
    /// Its id.
    pub id: Uuid,
    /// Its name (a package's unique name).
    pub name: String,
    /// The row it is bound to.
    pub row: Uuid,
    /// For an assembly: the package it belongs to.
    pub package: Option<Uuid>,
    /// Its registered signature, when the platform keeps its bytes.
    pub signature: Option<Signature>,
    /// The subject the platform presents for it (`GetComponentManagedIdentityFIC`), or why it presents none.
    pub platform_subject: Result<String, String>,
}

/// One environment, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EnvironmentAudit {
    /// The environment.
    pub org_url: String,
    /// Its environment id, once read.
    pub environment_id: Option<String>,
    /// Its tenant, once read.
    pub tenant_id: Option<Uuid>,
    /// Its plug-in managed identity rows.
    pub rows: Vec<AuditedRow>,
    /// The components bound to them.
    pub components: Vec<AuditedComponent>,
    /// Why it could not be read, when it could not.
    pub error: Option<String>,
    /// Round trips its reads took.
    pub round_trips: usize,
}

/// One identity the rows name, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct IdentityAudit {
    /// Its client id (the rows' `applicationid`).
    pub client_id: Uuid,
    /// What the directory says it is; `None` when the tenant does not know it.
    pub identity: Option<EstateIdentity>,
    /// Its FICs, when they could be read.
    pub fics: Option<Vec<FederatedIdentityCredential>>,
    /// Why they could not, when they could not.
    pub error: Option<String>,
}

/// What an audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditReport {
    /// Each environment, in the order given.
    pub environments: Vec<EnvironmentAudit>,
    /// Each identity the rows name.
    pub identities: Vec<IdentityAudit>,
    /// Everything wrong, most severe first.
    pub findings: Vec<AuditFinding>,
}

/// Reads an estate.
#[derive(Debug, Clone)]
pub struct Auditor {
    connector: Arc<dyn DataverseConnector>,
    directory: Option<Arc<dyn EstateDirectory>>,
}

impl Auditor {
    /// Over a way to reach each environment and, where FICs can be read, a directory.
    pub fn new(connector: Arc<dyn DataverseConnector>, directory: Option<Arc<dyn EstateDirectory>>) -> Self {
        Auditor { connector, directory }
    }

    /// On a client stack: its Dataverse clients, and Microsoft Graph and ARM of `cloud` for the FICs.
    pub fn on_platform(
        platform: &crate::clients::Platform,
        cloud: &crate::cloud::CloudProfile,
    ) -> Result<Self, ApiError> {
        let directory = PlatformDirectory::new(platform.graph(cloud)?, platform.arm(cloud)?);
        Ok(Auditor::new(Arc::new(platform.clone()), Some(Arc::new(directory))))
    }

    /// Audits the environments at `org_urls`: each read concurrently (one read batch, then one for its bound
    /// components' signatures and subjects), then each identity the rows name (who it is, its FICs), then the
    /// findings. An environment that cannot be read is reported with its error, not dropped.
    pub async fn audit(&self, org_urls: &[String], options: &AuditOptions) -> AuditReport {
        let total = org_urls.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let reads: Vec<_> = org_urls
            .iter()
            .map(|url| {
                let done = &done;
                async move {
                    let audited = self.read_environment(url).await;
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if let Some(progress) = &options.progress {
                        progress(n, total);
                    }
                    audited
                }
            })
            .collect();
        let environments: Vec<EnvironmentAudit> =
            stream::iter(reads).buffered(options.concurrency.max(1)).collect().await;
        let client_ids: BTreeSet<Uuid> =
            environments.iter().flat_map(|e| e.rows.iter().filter_map(|r| r.application_id)).collect();
        let identities: Vec<IdentityAudit> = stream::iter(client_ids.into_iter().map(|id| self.read_identity(id)))
            .buffered(options.concurrency.max(1))
            .collect()
            .await;
        let now = options.now.unwrap_or_else(SystemTime::now);
        let findings = findings::find(&environments, &identities, now, options.expiry_window);
        AuditReport { environments, identities, findings }
    }

    async fn read_identity(&self, client_id: Uuid) -> IdentityAudit {
        let Some(directory) = self.directory.as_deref() else {
            return IdentityAudit { client_id, identity: None, fics: None, error: Some("no directory to read".into()) };
        };
        let identity = match directory.identity(client_id).await {
            Ok(found) => found,
            Err(e) => {
                return IdentityAudit { client_id, identity: None, fics: None, error: Some(e.to_string()) };
            }
        };
        let Some(identity) = identity else {
            return IdentityAudit { client_id, identity: None, fics: None, error: None };
        };
        match directory.fics(&identity).await {
            Ok(fics) => IdentityAudit { client_id, identity: Some(identity), fics: Some(fics), error: None },
            Err(e) => IdentityAudit { client_id, identity: Some(identity), fics: None, error: Some(e.to_string()) },
        }
    }

    async fn read_environment(&self, org_url: &str) -> EnvironmentAudit {
        let mut out = EnvironmentAudit {
            org_url: org_url.trim_end_matches('/').to_owned(),
            environment_id: None,
            tenant_id: None,
            rows: Vec::new(),
            components: Vec::new(),
            error: None,
            round_trips: 0,
        };
        if let Err(e) = self.read_into(&mut out).await {
            out.error = Some(e.to_string());
        }
        out
    }

    async fn read_into(&self, out: &mut EnvironmentAudit) -> Result<(), ApiError> {
        let dv = self.connector.connect(&out.org_url)?;
        let mut reads = Batch::new();
        let org = reads.add(dv::current_organization());
        let rows = reads.add(dv::managed_identities(Some("credentialsource eq 2")));
        let assemblies = reads.add(dv::plugin_assemblies());
        let packages = reads.add(dv::plugin_packages());
        let mut answers = send_reads(dv.as_ref(), &reads, true).await;
        out.round_trips += answers.round_trips();
        let org = answers.take(org)?;
        out.environment_id = org.environment_id.map(|e| e.to_string());
        out.tenant_id = org.tenant_id;
        let rows = answers.take(rows)?;
        let assemblies = answers.take(assemblies)?;
        let packages = answers.take(packages)?;
        out.rows = rows
            .iter()
            .map(|r| AuditedRow {
                id: r.id,
                name: r.name.clone(),
                application_id: r.application_id,
                tenant_id: r.tenant_id,
                version: r.version,
            })
            .collect();
        let ours: BTreeSet<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut bound: Vec<(ComponentKind, Uuid, String, Uuid, Option<Uuid>)> = Vec::new();
        for a in &assemblies {
            if let Some(row) = a.managed_identity_id.filter(|r| ours.contains(r)) {
                bound.push((
                    ComponentKind::PluginAssembly,
                    a.id,
                    a.name.clone().unwrap_or_default(),
                    row,
                    a.package_id,
                ));
            }
        }
        for p in &packages {
            if let Some(row) = p.managed_identity_id.filter(|r| ours.contains(r)) {
                let name = p.unique_name.clone().or_else(|| p.name.clone()).unwrap_or_default();
                bound.push((ComponentKind::PluginPackage, p.id, name, row, None));
            }
        }
        if bound.is_empty() {
            return Ok(());
        }
        // The second read, for the bound components only: what the platform keeps of each and what it presents.
        let mut more = Batch::new();
        let slots: Vec<_> = bound
            .iter()
            .map(|(kind, id, ..)| {
                (more.add(dv::registered_content(*kind, *id)), more.add(dv::component_fic(*kind, *id)))
            })
            .collect();
        let mut answers = send_reads(dv.as_ref(), &more, true).await;
        out.round_trips += answers.round_trips();
        for ((kind, id, name, row, package), (content, subject)) in bound.into_iter().zip(slots) {
            let signature = match answers.take(content) {
                Ok(Some(bytes)) => Some(registered_signature(kind, &bytes)),
                Ok(None) => None,
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            let platform_subject = match answers.take(subject) {
                Ok(s) => Ok(s.fic_subject),
                Err(e) => Err(e.to_string()),
            };
            out.components.push(AuditedComponent { kind, id, name, row, package, signature, platform_subject });
        }
        Ok(())
    }
}

/// A registered component's signature, as read from the bytes the platform keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "signature", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Signature {
    /// Signed with this certificate.
    Signed {
        /// The signing certificate.
        certificate: SigningCertificate,
    },
    /// No signature the platform can use (not signed, only strong-named, unreadable).
    Unsigned {
        /// Why, in words.
        reason: String,
    },
}

/// A component's registered signature: its signing certificate, or why it has none.
fn registered_signature(kind: ComponentKind, bytes: &[u8]) -> Signature {
    match kind.signer(bytes).map(|l| SigningCertificate::of(&l.certificate)) {
        Ok(Some(certificate)) => Signature::Signed { certificate },
        Ok(None) => Signature::Unsigned { reason: "the signing certificate's validity cannot be read".into() },
        Err(e) => Signature::Unsigned { reason: e.to_string() },
    }
}

impl AuditReport {
    /// The most severe finding's severity; `None` when nothing was found.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// The findings of one kind.
    pub fn of_kind(&self, kind: FindingKind) -> Vec<&AuditFinding> {
        self.findings.iter().filter(|f| f.kind == kind).collect()
    }

    /// How many findings of each kind.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for f in &self.findings {
            *out.entry(f.kind.id()).or_insert(0) += 1;
        }
        out
    }
}
