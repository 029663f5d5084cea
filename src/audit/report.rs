//! An audit's report for people (a table for the terminal, Markdown for a ticket) and the specs that fix what can
//! be fixed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use uuid::Uuid;

use super::{EstateIdentity, Severity};
use crate::clients::ComponentKind;
use crate::provision::{EnvironmentSpec, ProvisionSpec};

use super::{AuditFinding, EnvironmentAudit, FindingKind, IdentityAudit};
use serde::Serialize;

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

impl AuditReport {
    /// Per environment: its findings by severity.
    fn severities(&self, org_url: &str) -> [usize; 3] {
        let mut n = [0; 3];
        for f in self.findings.iter().filter(|f| f.org_url.as_deref() == Some(org_url)) {
            n[match f.severity {
                Severity::Error => 0,
                Severity::Warning => 1,
                _ => 2,
            }] += 1;
        }
        n
    }

    /// The specs that fix the fixable findings, one per identity (file name, spec): the identity, each environment
    /// with a fixable finding for it and the components bound to its rows there (a package for an assembly inside
    /// one), version 2, `adopt = true`, the registered certificates. `plan` and `apply` carry them out; nothing
    /// else is changed.
    pub fn fix_specs(&self) -> Vec<(String, ProvisionSpec)> {
        let mut wanted: BTreeMap<Uuid, BTreeSet<&str>> = BTreeMap::new();
        for f in self.findings.iter().filter(|f| f.fixable) {
            if let (Some(client), Some(org)) = (f.client_id, f.org_url.as_deref()) {
                wanted.entry(client).or_default().insert(org);
            }
        }
        let mut out = Vec::new();
        for (client, orgs) in wanted {
            let Some(identity) =
                self.identities.iter().find(|i| i.client_id == client).and_then(|i| i.identity.as_ref())
            else {
                continue;
            };
            let Some(identity_spec) = identity.spec() else { continue };
            let mut environments = Vec::new();
            for e in self.environments.iter().filter(|e| orgs.contains(e.org_url.as_str())) {
                let rows: BTreeSet<Uuid> =
                    e.rows.iter().filter(|r| r.application_id == Some(client)).map(|r| r.id).collect();
                let (mut assemblies, mut packages) = (BTreeSet::new(), BTreeSet::new());
                for c in e.components.iter().filter(|c| rows.contains(&c.row)) {
                    match (c.kind, c.package) {
                        (ComponentKind::PluginPackage, _) => {
                            packages.insert(c.name.clone());
                        }
                        // An assembly inside a package: the package is what binds (named by its id).
                        (_, Some(package)) => {
                            packages.insert(package.to_string());
                        }
                        _ => {
                            assemblies.insert(c.name.clone());
                        }
                    }
                }
                if assemblies.is_empty() && packages.is_empty() {
                    continue;
                }
                environments
                    .push(EnvironmentSpec::new(e.org_url.clone()).with_assemblies(assemblies).with_packages(packages));
            }
            if environments.is_empty() {
                continue;
            }
            let mut spec = ProvisionSpec::new(identity_spec, environments);
            spec.adopt = true;
            out.push((format!("fix-{client}.toml"), spec));
        }
        out
    }

    /// The report as Markdown, for a ticket: a summary, the findings by severity, the identities.
    pub fn to_markdown(&self) -> String {
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let mut md = String::from("# Plug-in managed identity audit\n\n");
        let rows: usize = self.environments.iter().map(|e| e.rows.len()).sum();
        let bound: usize = self.environments.iter().map(|e| e.components.len()).sum();
        md.push_str(&format!(
            "{} environment(s), {rows} managed identity row(s), {bound} bound component(s), {} identit(ies); worst: {}.\n\n",
            self.environments.len(),
            self.identities.len(),
            self.worst().map_or("nothing found".to_owned(), |s| s.to_string())
        ));
        md.push_str("| finding | count |\n|---|---|\n");
        for (kind, n) in self.counts() {
            md.push_str(&format!("| `{kind}` | {n} |\n"));
        }
        md.push_str("\n## Findings\n\n| severity | finding | environment | component | evidence | fix |\n|---|---|---|---|---|---|\n");
        for f in &self.findings {
            md.push_str(&format!(
                "| {} | `{}` | {} | {} | {} | {}{} |\n",
                f.severity,
                f.kind.id(),
                cell(f.org_url.as_deref().unwrap_or("")),
                cell(f.component.as_deref().unwrap_or("")),
                cell(&f.evidence),
                cell(&f.fix),
                if f.fixable { " (fixed by `audit --fix`)" } else { "" }
            ));
        }
        let unread: Vec<_> = self.environments.iter().filter(|e| e.error.is_some()).collect();
        if !unread.is_empty() {
            md.push_str("\n## Environments not read\n\n");
            for e in unread {
                md.push_str(&format!("- {}: {}\n", e.org_url, cell(e.error.as_deref().unwrap_or(""))));
            }
        }
        md.push_str("\n## Identities\n\n| client id | identity | FICs |\n|---|---|---|\n");
        for i in &self.identities {
            let what = match &i.identity {
                Some(EstateIdentity::AppRegistration { .. }) => "app registration".to_owned(),
                Some(EstateIdentity::UserAssigned { resource_id, .. }) => format!("user-assigned {resource_id}"),
                None if i.error.is_none() => "unknown in the tenant".to_owned(),
                None => format!("not read: {}", i.error.as_deref().unwrap_or("")),
            };
            let fics = i.fics.as_ref().map_or("not read".to_owned(), |f| format!("{} of 20", f.len()));
            md.push_str(&format!("| {} | {} | {fics} |\n", i.client_id, cell(&what)));
        }
        md
    }
}

impl fmt::Display for AuditReport {
    /// The terminal table: environments with their counts, then each finding with its fix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<48} {:>5} {:>6} {:>7} {:>8} {:>5}",
            "environment", "rows", "bound", "errors", "warnings", "info"
        )?;
        for e in &self.environments {
            let [errors, warnings, info] = self.severities(&e.org_url);
            match &e.error {
                Some(why) => writeln!(f, "{:<48} not read: {why}", e.org_url)?,
                None => writeln!(
                    f,
                    "{:<48} {:>5} {:>6} {errors:>7} {warnings:>8} {info:>5}",
                    e.org_url,
                    e.rows.len(),
                    e.components.len()
                )?,
            }
        }
        for i in &self.identities {
            let fics = i.fics.as_ref().map_or("FICs not read".to_owned(), |f| format!("{} of 20 FICs", f.len()));
            let what = match &i.identity {
                Some(EstateIdentity::AppRegistration { .. }) => "app registration",
                Some(EstateIdentity::UserAssigned { .. }) => "user-assigned identity",
                None => "unknown in the tenant",
            };
            writeln!(f, "identity {}: {what}, {fics}", i.client_id)?;
        }
        for finding in &self.findings {
            let at = [finding.org_url.as_deref(), finding.component.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            writeln!(
                f,
                "\n{:<7} [{}] {at}\n  {}\n  fix: {}",
                finding.severity,
                finding.kind.id(),
                finding.evidence,
                finding.fix
            )?;
        }
        match self.worst() {
            Some(worst) => write!(f, "\n{} finding(s); worst: {worst}", self.findings.len()),
            None => write!(f, "\nnothing found"),
        }
    }
}
