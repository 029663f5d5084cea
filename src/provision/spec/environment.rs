//! An environment of a spec (its URL, components, certificate and version), discovery of environments, and the
//! name patterns components are picked by.

use serde::{Deserialize, Serialize};

use super::CertificateSpec;

impl EnvironmentSpec {
    /// Whether this environment is the one at `org_url` (case, surrounding white space and a trailing slash aside).
    pub fn is_at(&self, org_url: &str) -> bool {
        let key = |u: &str| u.trim().trim_end_matches('/').to_ascii_lowercase();
        key(org_url) == key(&self.org_url)
    }
}

/// One environment to provision.
///
/// ```
/// use dataverse_mi::provision::{CertificateSpec, EnvironmentSpec};
/// // The registered signature decides (the default), for an assembly and a package:
/// let env = EnvironmentSpec::new("https://contoso.crm.dynamics.com")
///     .with_assemblies(["Contoso.Plugins"])
///     .with_packages(["contoso_Plugins"]);
/// assert!(env.certificate.is_registered());
/// // During a rotation: the old certificate and the new one, a FIC for each.
/// let rotating = EnvironmentSpec::new("https://contoso.crm.dynamics.com")
///     .with_assemblies(["Contoso.Plugins"])
///     .with_certificates([
///         CertificateSpec::File { path: "old.cer".into(), password_env: None },
///         CertificateSpec::File { path: "new.cer".into(), password_env: None },
///     ]);
/// assert_eq!(rotating.certificate_specs().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EnvironmentSpec {
    /// The organization URL, e.g. `https://contoso.crm.dynamics.com`.
    pub org_url: String,
    /// The environment id the organization must report (a GUID, or `Default-{tenant}`), as a check: plan refuses
    /// the environment, before any write, when `RetrieveCurrentOrganization` reports another. Optional: the id is
    /// always read from the organization, never needed by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_id: Option<crate::environment::EnvironmentId>,
    /// Plug-in assemblies, by name or id.
    #[serde(default)]
    pub plugin_assemblies: Vec<String>,
    /// Plug-in packages, by unique name or id.
    #[serde(default)]
    pub plugin_packages: Vec<String>,
    /// The certificate that signed them: [`CertificateSpec::Registered`] (read from the platform) when not given.
    #[serde(default, skip_serializing_if = "CertificateSpec::is_registered")]
    pub certificate: CertificateSpec,
    /// Several certificates, each with its own FIC, instead of `certificate`: during a rotation, the old one and
    /// the new one (`certificates = [{ path = "old.cer" }, { path = "new.cer" }]`), or `"registered"` and the
    /// new one. Give `certificate` or `certificates`, not both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateSpec>,
}

impl EnvironmentSpec {
    /// An environment with no component yet, its certificate read from the platform ([`CertificateSpec::Registered`]).
    pub fn new(org_url: impl Into<String>) -> Self {
        EnvironmentSpec {
            org_url: org_url.into(),
            environment_id: None,
            plugin_assemblies: Vec::new(),
            plugin_packages: Vec::new(),
            certificate: CertificateSpec::Registered,
            certificates: Vec::new(),
        }
    }

    /// With these plug-in assemblies (names or ids).
    pub fn with_assemblies<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.plugin_assemblies.extend(names.into_iter().map(Into::into));
        self
    }

    /// With these plug-in packages (unique names or ids).
    pub fn with_packages<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.plugin_packages.extend(names.into_iter().map(Into::into));
        self
    }

    /// With this certificate (and no list of certificates).
    pub fn with_certificate(mut self, certificate: impl Into<CertificateSpec>) -> Self {
        self.certificate = certificate.into();
        self.certificates.clear();
        self
    }

    /// With these certificates, each with its own FIC (a rotation's old and new).
    pub fn with_certificates<I: IntoIterator<Item = C>, C: Into<CertificateSpec>>(mut self, certificates: I) -> Self {
        self.certificate = CertificateSpec::Registered;
        self.certificates = certificates.into_iter().map(Into::into).collect();
        self
    }

    /// With the environment id the organization must report (a check).
    pub fn with_environment_id(mut self, id: crate::environment::EnvironmentId) -> Self {
        self.environment_id = Some(id);
        self
    }

    /// The certificates this environment's FICs are made for: `certificates` when given, else `certificate`.
    pub fn certificate_specs(&self) -> &[CertificateSpec] {
        if self.certificates.is_empty() { std::slice::from_ref(&self.certificate) } else { &self.certificates }
    }

    /// Whether any of its certificates is read from the platform.
    pub fn uses_registered(&self) -> bool {
        self.certificate_specs().iter().any(CertificateSpec::is_registered)
    }
}

/// Environments selected through the Global Discovery Service: every enabled environment the signed-in identity
/// can reach whose name matches `name` and none of `exclude` (patterns with `*` and `?`, case-insensitive,
/// matched against the URL name, unique name, friendly name and host), each with the components matching
/// `plugin_assemblies` and `plugin_packages` (names or patterns).
///
/// ```toml
/// environments = { discover = true, name = "contoso-*", exclude = ["contoso-sandbox*"], plugin_assemblies = ["Contoso.*"] }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DiscoverSpec {
    /// Must be `true` (it says what the table is).
    pub discover: bool,
    /// The environments to take (all when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The environments to leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// The discovery service, when not the cloud's default ([`Cloud::global_discovery_url`](crate::cloud::Cloud::global_discovery_url)): GCC's
    /// `https://globaldisco.crm9.dynamics.com`, DoD's `https://globaldisco.crm.appsplatform.us`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// Plug-in assemblies in each environment, by name or pattern.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugin_assemblies: Vec<String>,
    /// Plug-in packages in each environment, by unique name or pattern.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugin_packages: Vec<String>,
    /// The certificate (the registered signatures by default).
    #[serde(default, skip_serializing_if = "CertificateSpec::is_registered")]
    pub certificate: CertificateSpec,
    /// Several certificates (a rotation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateSpec>,
}

impl DiscoverSpec {
    /// Every environment whose name matches `name`.
    pub fn new(name: impl Into<String>) -> Self {
        DiscoverSpec {
            discover: true,
            name: Some(name.into()),
            exclude: Vec::new(),
            discovery_url: None,
            plugin_assemblies: Vec::new(),
            plugin_packages: Vec::new(),
            certificate: CertificateSpec::Registered,
            certificates: Vec::new(),
        }
    }

    /// Leaving out these.
    pub fn excluding<I: IntoIterator<Item = S>, S: Into<String>>(mut self, patterns: I) -> Self {
        self.exclude.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// With these plug-in assemblies (names or patterns) in each environment.
    pub fn with_assemblies<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.plugin_assemblies.extend(names.into_iter().map(Into::into));
        self
    }

    /// With these plug-in packages (names or patterns) in each environment.
    pub fn with_packages<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.plugin_packages.extend(names.into_iter().map(Into::into));
        self
    }

    /// The discovery service to ask: `discovery_url`, else `cloud`'s own; `None` for a cloud with no documented one
    /// and no `discovery_url` (which [`ProvisionSpec::validate`](super::ProvisionSpec::validate) refuses).
    pub fn service_url(&self, cloud: crate::cloud::Cloud) -> Option<&str> {
        self.discovery_url.as_deref().or(cloud.global_discovery_url())
    }

    /// Whether a discovered environment is selected: enabled, matching `name`, matching no `exclude`.
    ///
    /// ```
    /// use dataverse_mi::provision::DiscoverSpec;
    /// let d = DiscoverSpec::new("contoso-*").excluding(["*sandbox*"]);
    /// assert!(d.selects_name("Contoso-Dev"));
    /// assert!(!d.selects_name("contoso-sandbox-1"));
    /// assert!(!d.selects_name("fabrikam-dev"));
    /// ```
    pub fn selects(&self, e: &crate::clients::DiscoveredEnvironment) -> bool {
        let names = e.names();
        e.is_enabled()
            && names.iter().any(|n| self.name.as_deref().is_none_or(|p| name_matches(p, n)))
            && !self.exclude.iter().any(|p| names.iter().any(|n| name_matches(p, n)))
    }

    /// Why [`selects`](Self::selects) leaves an environment out, in words; `None` when it is selected. (An
    /// environment selected here is still left out of a plan when it has none of the spec's components; plan says
    /// so in a note.) The reasons: `disabled`, `its names do not match '{name}'`, `excluded by '{pattern}'`.
    pub fn why_left_out(&self, e: &crate::clients::DiscoveredEnvironment) -> Option<String> {
        let names = e.names();
        if !e.is_enabled() {
            return Some("disabled".into());
        }
        if let Some(p) = self.name.as_deref().filter(|p| !names.iter().any(|n| name_matches(p, n))) {
            return Some(format!("its names do not match '{p}'"));
        }
        self.exclude.iter().find(|p| names.iter().any(|n| name_matches(p, n))).map(|p| format!("excluded by '{p}'"))
    }

    /// [`selects`](Self::selects) for a single name.
    pub fn selects_name(&self, name: &str) -> bool {
        self.name.as_deref().is_none_or(|p| name_matches(p, name))
            && !self.exclude.iter().any(|p| name_matches(p, name))
    }

    /// The environment spec for a selected environment.
    pub fn environment(&self, e: &crate::clients::DiscoveredEnvironment) -> EnvironmentSpec {
        EnvironmentSpec {
            org_url: e.url.trim_end_matches('/').to_owned(),
            environment_id: e.environment_id,
            plugin_assemblies: self.plugin_assemblies.clone(),
            plugin_packages: self.plugin_packages.clone(),
            certificate: self.certificate.clone(),
            certificates: self.certificates.clone(),
        }
    }
}

/// Whether a component or environment name is a pattern (`*` or `?`) rather than a name.
pub(crate) fn is_pattern(name: &str) -> bool {
    name.contains(['*', '?'])
}

/// Case-insensitive `*`/`?` matching, as Dataverse compares names.
pub(crate) fn name_matches(pattern: &str, name: &str) -> bool {
    wildmatch::WildMatch::new_case_insensitive(pattern).matches(name)
}
