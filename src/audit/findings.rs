//! What an audit reports: each kind of finding with its stable id and severity, and the rules that find them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use uuid::Uuid;

use super::model::{AuditedComponent, EnvironmentAudit, IdentityAudit, Signature};
use crate::clients::ComponentKind;
use crate::fic::MAX_FICS_PER_IDENTITY;
use crate::subject::SubjectSegments;

/// How bad a finding is; the CLI's exit code says the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Severity {
    /// Worth knowing; nothing fails.
    Info,
    /// Something will fail, or is deprecated.
    Warning,
    /// A plug-in fails now (or cannot get a token the way it is set up).
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A kind of finding (serialized as its [`id`](FindingKind::id)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// A row at version null or 0 (deprecated).
    DeprecatedVersion,
    /// A row at version 1 (move to 2).
    Version1,
    /// A row whose tenant is not the environment's.
    RowOtherTenant,
    /// A row whose application the tenant does not know.
    UnknownApplication,
    /// A row whose application has no FIC for this environment.
    NoFicForEnvironment,
    /// A bound component that is not signed.
    ComponentUnsigned,
    /// A bound component signed with an expired certificate.
    CertificateExpired,
    /// A bound component whose certificate expires within the window.
    CertificateExpiring,
    /// An assembly inside a plug-in package bound instead of the package.
    AssemblyBoundInPackage,
    /// A row nothing is bound to.
    RowUnused,
    /// A FIC for an audited environment that no component presents.
    FicStale,
    /// An identity with most of its 20 FICs used.
    FicBudget,
    /// A component whose platform subject has no FIC on the bound identity: it fails at token time now.
    SubjectWithoutFic,
}

impl FindingKind {
    /// Every kind.
    pub const ALL: &'static [FindingKind] = &[
        FindingKind::DeprecatedVersion,
        FindingKind::Version1,
        FindingKind::RowOtherTenant,
        FindingKind::UnknownApplication,
        FindingKind::NoFicForEnvironment,
        FindingKind::ComponentUnsigned,
        FindingKind::CertificateExpired,
        FindingKind::CertificateExpiring,
        FindingKind::AssemblyBoundInPackage,
        FindingKind::RowUnused,
        FindingKind::FicStale,
        FindingKind::FicBudget,
        FindingKind::SubjectWithoutFic,
    ];

    /// The stable id scripts match on.
    pub fn id(self) -> &'static str {
        match self {
            FindingKind::DeprecatedVersion => "deprecated_version",
            FindingKind::Version1 => "version_1",
            FindingKind::RowOtherTenant => "row_other_tenant",
            FindingKind::UnknownApplication => "unknown_application",
            FindingKind::NoFicForEnvironment => "no_fic_for_environment",
            FindingKind::ComponentUnsigned => "component_unsigned",
            FindingKind::CertificateExpired => "certificate_expired",
            FindingKind::CertificateExpiring => "certificate_expiring",
            FindingKind::AssemblyBoundInPackage => "assembly_bound_in_package",
            FindingKind::RowUnused => "row_unused",
            FindingKind::FicStale => "fic_stale",
            FindingKind::FicBudget => "fic_budget",
            FindingKind::SubjectWithoutFic => "subject_without_fic",
        }
    }
}

/// One finding: what, where, how bad, the evidence, the fix, and whether the specs `--fix` writes carry it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditFinding {
    /// The kind (its `id` is stable).
    pub kind: FindingKind,
    /// How bad.
    pub severity: Severity,
    /// The environment, when it is about one.
    pub org_url: Option<String>,
    /// The identity's client id, when it is about one.
    pub client_id: Option<Uuid>,
    /// The row, when it is about one.
    pub row: Option<Uuid>,
    /// The component's name, when it is about one.
    pub component: Option<String>,
    /// What was read that shows it.
    pub evidence: String,
    /// What to do.
    pub fix: String,
    /// Whether the specs the audit writes (`--fix`) carry the fix out when applied.
    pub fixable: bool,
}

impl Serialize for FindingKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

struct Found(Vec<AuditFinding>);

/// What a finding is about: an environment, an identity, a row, a component (any of them, or none).
#[derive(Debug, Clone, Copy, Default)]
struct About<'a> {
    env: Option<&'a EnvironmentAudit>,
    client_id: Option<Uuid>,
    row: Option<Uuid>,
    component: Option<&'a str>,
}

/// A finding as a rule writes it.
struct NewFinding<'a> {
    kind: FindingKind,
    severity: Severity,
    about: About<'a>,
    evidence: String,
    fix: String,
    fixable: bool,
}

impl Found {
    fn add(&mut self, f: NewFinding<'_>) {
        self.0.push(AuditFinding {
            kind: f.kind,
            severity: f.severity,
            org_url: f.about.env.map(|e| e.org_url.clone()),
            client_id: f.about.client_id,
            row: f.about.row,
            component: f.about.component.map(str::to_owned),
            evidence: f.evidence,
            fix: f.fix,
            fixable: f.fixable,
        });
    }
}

/// Why a component is not signed, as far as the audit can tell: its registered bytes carry no signature, or (its
/// bytes not kept) the platform refuses it for that. `None` for a signed one, or one the audit cannot tell.
fn unsigned(c: &AuditedComponent) -> Option<String> {
    match (&c.signature, &c.platform_subject) {
        (Some(Signature::Unsigned { reason }), _) => Some(reason.clone()),
        (None, Err(why)) if why.contains("must be signed") => Some(format!("the platform answers \"{why}\"")),
        _ => None,
    }
}

/// Whether a component is signed as far as the audit can tell: a spec cannot make a FIC for one that is not.
fn signed(c: &AuditedComponent) -> bool {
    unsigned(c).is_none()
}

fn days(d: Duration) -> u64 {
    d.as_secs() / 86_400
}

/// Every finding, most severe first (then by environment, then by kind).
pub(super) fn find(
    environments: &[EnvironmentAudit],
    identities: &[IdentityAudit],
    now: SystemTime,
    window: Duration,
) -> Vec<AuditFinding> {
    let mut out = Found(Vec::new());
    let by_id: BTreeMap<Uuid, &IdentityAudit> = identities.iter().map(|i| (i.client_id, i)).collect();
    // Who presents which subject, per identity, across the audited environments.
    let mut presented: BTreeMap<Uuid, BTreeSet<String>> = BTreeMap::new();
    let audited: BTreeSet<String> =
        environments.iter().filter_map(|e| e.environment_id.clone()).map(|e| e.to_ascii_lowercase()).collect();
    for e in environments {
        let Some(tenant) = e.tenant_id else { continue };
        let environment = e.environment_id.clone().unwrap_or_default();
        for row in &e.rows {
            let bound: Vec<&AuditedComponent> = e.components.iter().filter(|c| c.row == row.id).collect();
            let app = row.application_id;
            let identity = app.and_then(|a| by_id.get(&a).copied());
            let known = identity.is_some_and(|i| i.identity.is_some());
            let fics = identity.and_then(|i| i.fics.as_ref());
            let spec_fix = "audit --fix writes a spec for the identity; `dataverse-mi apply` it";
            match row.version {
                None | Some(0) => out.add(NewFinding {
                    kind: FindingKind::DeprecatedVersion,
                    severity: Severity::Warning,
                    about: About { env: Some(e), client_id: app, row: Some(row.id), ..About::default() },
                    evidence: format!(
                        "row {} has version {}",
                        row.id,
                        row.version.map_or("null".into(), |v| v.to_string())
                    ),
                    fix: format!("move it to version 2: `dataverse-mi upgrade -f SPEC` (or {spec_fix}, at version 2)"),
                    fixable: known,
                }),
                Some(1) => out.add(NewFinding {
                    kind: FindingKind::Version1,
                    severity: Severity::Info,
                    about: About { env: Some(e), client_id: app, row: Some(row.id), ..About::default() },
                    evidence: format!("row {} has version 1 (CN-based subjects)", row.id),
                    fix: format!("move it to version 2: `dataverse-mi upgrade -f SPEC` (or {spec_fix}, at version 2)"),
                    fixable: known,
                }),
                _ => {}
            }
            if row.tenant_id.is_some_and(|t| t != tenant) {
                out.add(NewFinding { kind: FindingKind::RowOtherTenant, severity: Severity::Error, about: About { env: Some(e), client_id: app, row: Some(row.id), ..About::default() }, evidence: format!(
                        "row {} names tenant {}, the environment is in {tenant} (a solution import brings the source's)",
                        row.id,
                        row.tenant_id.map(|t| t.to_string()).unwrap_or_default()
                    ), fix: "adopt it: a spec for the identity with `adopt = true`, applied (audit --fix writes it when the identity is known here)".into(), fixable: known });
            }
            match (app, identity) {
                (Some(app), Some(i)) if i.identity.is_none() && i.error.is_none() => out.add(NewFinding {
                    kind: FindingKind::UnknownApplication,
                    severity: Severity::Error,
                    about: About { env: Some(e), client_id: Some(app), row: Some(row.id), ..About::default() },
                    evidence: format!("row {} names application {app}, which the tenant does not know", row.id),
                    fix: "adopt the row with your identity: a spec naming it with `adopt = true`, applied".into(),
                    fixable: false,
                }),
                (Some(app), Some(_)) => {
                    if let Some(fics) = fics {
                        let here = fics.iter().any(|f| {
                            SubjectSegments::split(&f.subject)
                                .environment
                                .is_some_and(|s| s.eq_ignore_ascii_case(&environment))
                        });
                        if !here {
                            out.add(NewFinding {
                                kind: FindingKind::NoFicForEnvironment,
                                severity: Severity::Error,
                                about: About {
                                    env: Some(e),
                                    client_id: Some(app),
                                    row: Some(row.id),
                                    ..About::default()
                                },
                                evidence: format!(
                                    "application {app} has {} FIC(s), none for environment {environment}",
                                    fics.len()
                                ),
                                fix: format!("{spec_fix} (it adopts the row and creates the FIC)"),
                                fixable: !bound.is_empty() && bound.iter().all(|c| signed(c)),
                            });
                        }
                    }
                }
                _ => {}
            }
            if bound.is_empty() {
                out.add(NewFinding {
                    kind: FindingKind::RowUnused,
                    severity: Severity::Info,
                    about: About { env: Some(e), client_id: app, row: Some(row.id), ..About::default() },
                    evidence: format!("no plug-in assembly or package is bound to row {}", row.id),
                    fix: "delete it if nothing will use it (`dataverse-mi destroy` for a spec's own rows)".into(),
                    fixable: false,
                });
            }
            for c in bound {
                let name = c.name.as_str();
                // The package is what the platform looks at: an assembly of a package that is itself bound is fine.
                let package_bound =
                    e.components.iter().any(|p| p.kind == ComponentKind::PluginPackage && Some(p.id) == c.package);
                if c.kind == ComponentKind::PluginAssembly && c.package.is_some() && !package_bound {
                    out.add(NewFinding { kind: FindingKind::AssemblyBoundInPackage, severity: Severity::Error, about: About { env: Some(e), client_id: app, row: Some(row.id), component: Some(name) }, evidence: format!("assembly {name} is inside a plug-in package and bound itself; the platform looks at the package"), fix: format!("bind the package instead ({spec_fix}: it lists the package)"), fixable: known });
                }
                if let Some(reason) = unsigned(c) {
                    out.add(NewFinding { kind: FindingKind::ComponentUnsigned, severity: Severity::Error, about: About { env: Some(e), client_id: app, row: Some(row.id), component: Some(name) }, evidence: format!("{name}: {reason}"), fix: "sign it with a code-signing certificate (`dataverse-mi sign` for an assembly, `nuget sign` for a package) and register it again".into(), fixable: false });
                }
                if let Some(Signature::Signed { certificate }) = &c.signature {
                    let end = SystemTime::UNIX_EPOCH
                        + Duration::from_secs(u64::try_from(certificate.not_after_unix).unwrap_or(0));
                    match end.duration_since(now) {
                        Err(_) => out.add(NewFinding {
                            kind: FindingKind::CertificateExpired,
                            severity: Severity::Error,
                            about: About { env: Some(e), client_id: app, row: Some(row.id), component: Some(name) },
                            evidence: format!(
                                "{name} is signed with {} which expired {}",
                                certificate.subject, certificate.not_after
                            ),
                            fix: "sign it with a new certificate and rotate (`dataverse-mi rotate`)".into(),
                            fixable: false,
                        }),
                        Ok(left) if left < window => out.add(NewFinding {
                            kind: FindingKind::CertificateExpiring,
                            severity: Severity::Warning,
                            about: About { env: Some(e), client_id: app, row: Some(row.id), component: Some(name) },
                            evidence: format!(
                                "{name} is signed with {} which expires {} (in {} day(s))",
                                certificate.subject,
                                certificate.not_after,
                                days(left)
                            ),
                            fix: "sign it with the next certificate and rotate before then (`dataverse-mi rotate`)"
                                .into(),
                            fixable: false,
                        }),
                        Ok(_) => {}
                    }
                }
                if let Ok(subject) = &c.platform_subject {
                    if let Some(app) = app {
                        presented.entry(app).or_default().insert(subject.clone());
                    }
                    if let (Some(app), Some(fics)) = (app, fics)
                        && !fics.iter().any(|f| f.subject == *subject)
                    {
                        out.add(NewFinding {
                            kind: FindingKind::SubjectWithoutFic,
                            severity: Severity::Error,
                            about: About {
                                env: Some(e),
                                client_id: Some(app),
                                row: Some(row.id),
                                component: Some(name),
                            },
                            evidence: format!(
                                "the platform presents {subject} for {name}; application {app} has no FIC with it"
                            ),
                            fix: format!("{spec_fix} (it creates the FIC)"),
                            fixable: true,
                        });
                    }
                }
            }
        }
    }
    for i in identities {
        let Some(fics) = &i.fics else { continue };
        let used = presented.get(&i.client_id);
        for f in fics {
            let parts = SubjectSegments::split(&f.subject);
            // Only plug-in FICs for an environment this audit read can be judged.
            let Some(env) = parts.environment.as_deref().filter(|_| parts.component.as_deref() == Some("plugin"))
            else {
                continue;
            };
            if !audited.contains(&env.to_ascii_lowercase()) || used.is_some_and(|u| u.contains(&f.subject)) {
                continue;
            }
            out.0.push(AuditFinding {
                kind: FindingKind::FicStale,
                severity: Severity::Warning,
                org_url: environments
                    .iter()
                    .find(|e| e.environment_id.as_deref().is_some_and(|id| id.eq_ignore_ascii_case(env)))
                    .map(|e| e.org_url.clone()),
                client_id: Some(i.client_id),
                row: None,
                component: None,
                evidence: format!("FIC {} ({}) is presented by no component of environment {env}", f.name, f.subject),
                fix: "delete it once nothing needs it (a spec with `prune = true` deletes the ones it made)".into(),
                fixable: false,
            });
        }
        if fics.len() * 5 >= MAX_FICS_PER_IDENTITY * 4 {
            let full = fics.len() >= MAX_FICS_PER_IDENTITY;
            out.0.push(AuditFinding {
                kind: FindingKind::FicBudget,
                severity: if full { Severity::Error } else { Severity::Warning },
                org_url: None,
                client_id: Some(i.client_id),
                row: None,
                component: None,
                evidence: format!("{} of {MAX_FICS_PER_IDENTITY} FICs used", fics.len()),
                fix: "delete stale FICs, or spread environments over more identities".into(),
                fixable: false,
            });
        }
    }
    let mut findings = out.0;
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.org_url.cmp(&b.org_url)).then(a.kind.cmp(&b.kind)));
    findings
}
