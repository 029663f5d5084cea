//! The audit itself: every environment read concurrently (one read batch, and one more where components are
//! bound), each identity once, then the findings.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::{StreamExt as _, stream};
use uuid::Uuid;

use super::findings;
use super::model::registered_signature;
use super::{
    AuditReport, AuditedComponent, AuditedRow, EnvironmentAudit, EstateDirectory, IdentityAudit, PlatformDirectory,
};
use crate::clients::dataverse::requests as dv;
use crate::clients::{ApiError, Batch, ComponentKind};
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
