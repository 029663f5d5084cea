//! Whether a spec can be carried out: every rule checked before any request.

use super::{ProvisionSpec, SpecError};

impl ProvisionSpec {
    /// Checks what the file format cannot: at least one environment, an identity that can be found (and
    /// created, when asked), no credential requested, grants with a role and a resource id. The loaders and
    /// [`Provisioner::plan`](crate::provision::Provisioner::plan) call it; a spec built in code can call it early.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.identity.check()?;
        if let Some(d) = self.discover.as_ref().filter(|_| self.environments.is_empty()) {
            if d.service_url(self.cloud).is_none() {
                return Err(SpecError::Invalid {
                    field: "environments.discovery_url",
                    message: format!(
                        "the {} cloud has no documented discovery service: give discovery_url",
                        self.cloud
                    ),
                });
            }
            return self.validate_grants();
        }
        if self.environments.is_empty() {
            return Err(SpecError::NoEnvironment);
        }
        // Each environment costs at least a FIC per certificate on the identity: more than it can hold is refused
        // before any request.
        let at_least: usize = self.environments.iter().map(|e| e.certificate_specs().len()).sum();
        if at_least > crate::fic::MAX_FICS_PER_IDENTITY {
            let rotating = self.environments.iter().any(|e| e.certificate_specs().len() > 1);
            return Err(SpecError::Invalid {
                field: "environments",
                message: format!(
                    "{} environments need at least {at_least} FICs (one per certificate), and an app registration or user-assigned identity holds at most {}; {}",
                    self.environments.len(),
                    crate::fic::MAX_FICS_PER_IDENTITY,
                    if rotating {
                        "while rotating (two certificates per environment), rotate a few environments at a time (`rotate --add NEW --environment URL ...`, `ProvisionSpec::adding_certificate_in`)"
                    } else {
                        "split them over several identities"
                    }
                ),
            });
        }
        let mut hosts: Vec<String> = Vec::with_capacity(self.environments.len());
        for (i, e) in self.environments.iter().enumerate() {
            let invalid = |message: String| SpecError::Invalid { field: "environments.org_url", message };
            if e.org_url.len() > 300 {
                return Err(invalid(format!("environment {}: the URL is {} characters long", i + 1, e.org_url.len())));
            }
            let org = crate::clients::OrgUrl::parse(&e.org_url)
                .map_err(|err| invalid(format!("environment {}: {err}", i + 1)))?;
            let host = org.host().to_ascii_lowercase();
            if !self.cloud.dataverse_host_suffixes().iter().any(|s| host.ends_with(s)) {
                return Err(invalid(format!(
                    "environment {}: {host} is not a Dataverse host of the {} cloud (the spec's `cloud`)",
                    i + 1,
                    self.cloud
                )));
            }
            if let Some(first) = hosts.iter().position(|h| *h == host) {
                return Err(invalid(format!(
                    "environments {} and {} are the same environment ({host}); list each once",
                    first + 1,
                    i + 1
                )));
            }
            if !e.certificates.is_empty() && !e.certificate.is_registered() {
                return Err(SpecError::Invalid {
                    field: "environments.certificates",
                    message: format!(
                        "environment {} ({host}) gives both certificate and certificates; list every certificate under certificates",
                        i + 1
                    ),
                });
            }
            for (field, names) in [
                ("environments.plugin_assemblies", &e.plugin_assemblies),
                ("environments.plugin_packages", &e.plugin_packages),
            ] {
                if names.iter().any(|n| n.trim().is_empty()) {
                    return Err(SpecError::Invalid {
                        field,
                        message: format!("environment {} ({host}) names an empty component", i + 1),
                    });
                }
            }
            hosts.push(host);
        }
        self.validate_grants()
    }

    /// Whether planning needs the identity's principal (its service principal's object id): for role
    /// assignments and API permissions, which name it.
    pub(crate) fn needs_principal(&self) -> bool {
        !self.grants.is_empty() || !self.api_permissions.is_empty()
    }

    fn validate_grants(&self) -> Result<(), SpecError> {
        for g in &self.grants {
            if g.role.trim().is_empty() {
                return Err(SpecError::Invalid { field: "grants.role", message: "empty".into() });
            }
            if !g.scope.starts_with('/') {
                return Err(SpecError::Invalid {
                    field: "grants.scope",
                    message: format!("'{}' is not an Azure resource id (it starts with /subscriptions/...)", g.scope),
                });
            }
        }
        for u in &self.application_users {
            if u.roles.is_empty() || u.roles.iter().any(|r| r.trim().is_empty()) {
                return Err(SpecError::Invalid {
                    field: "application_users.roles",
                    message: "name at least one security role, none empty (e.g. roles = [\"Basic User\"])".into(),
                });
            }
            if let Some(env) = &u.environment
                && let Err(e) = crate::clients::OrgUrl::parse(env)
            {
                return Err(SpecError::Invalid { field: "application_users.environment", message: e.to_string() });
            }
        }
        for p in &self.api_permissions {
            if p.permissions.is_empty() || p.permissions.iter().any(|r| r.trim().is_empty()) {
                return Err(SpecError::Invalid {
                    field: "api_permissions.permissions",
                    message: "name at least one permission, none empty (e.g. permissions = [\"Mail.Send\"])".into(),
                });
            }
        }
        Ok(())
    }
}
