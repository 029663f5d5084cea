//! The Dataverse Web API's rows and answers as the client reads and writes them: the organization URL, security
//! roles, business units, application users, components and their platform subjects.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

use super::super::{ApiError, check_base};
use crate::entities::{ManagedIdentity, PluginAssembly, PluginPackage};
use crate::subject::SubjectFormatVersion;

/// The host suffixes of Dataverse environments in the public and sovereign clouds.
pub const DATAVERSE_HOST_SUFFIXES: &[&str] = &[
    ".dynamics.com",
    ".dynamics.us",
    ".microsoftdynamics.us",
    ".appsplatform.us",
    ".dynamics.cn",
    ".microsoftdynamics.de",
    ".dynamics.eaglex.ic.gov",
    ".microsoftdynamics.scloud",
];

/// An environment's organization URL, e.g. `https://contoso.crm.dynamics.com`: checked, without path or query.
#[derive(Clone, PartialEq, Eq)]
pub struct OrgUrl(Url);

impl fmt::Debug for OrgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgUrl({})", self.0)
    }
}

impl fmt::Display for OrgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
    }
}

impl OrgUrl {
    /// Parses an organization URL: `https://`, a Dataverse host (`*.dynamics.com` and the sovereign clouds'
    /// suffixes, see [`DATAVERSE_HOST_SUFFIXES`]), no path beyond `/`, no query or fragment. A bare host
    /// (`contoso.crm.dynamics.com`) is accepted as `https://`.
    ///
    /// ```
    /// # use dataverse_mi::clients::OrgUrl;
    /// assert_eq!(OrgUrl::parse("contoso.crm.dynamics.com")?.to_string(), "https://contoso.crm.dynamics.com");
    /// assert!(OrgUrl::parse("http://contoso.crm.dynamics.com").is_err());
    /// assert!(OrgUrl::parse("https://contoso.crm.dynamics.com/api/data/v9.2").is_err());
    /// assert!(OrgUrl::parse("https://example.com").is_err());
    /// # Ok::<(), dataverse_mi::clients::ApiError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let url = Self::parse_shape(input)?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if !DATAVERSE_HOST_SUFFIXES.iter().any(|s| host.ends_with(s)) {
            return Err(ApiError::invalid(
                "organization URL",
                format!(
                    "'{host}' is not a Dataverse host (expected e.g. contoso.crm.dynamics.com, or the host of another Dataverse cloud such as crm.microsoftdynamics.us or crm.dynamics.cn)"
                ),
            ));
        }
        Ok(OrgUrl(url))
    }

    /// Like [`parse`](Self::parse) but accepts any `https://` host (a cloud this crate does not list).
    pub fn any_host(input: &str) -> Result<Self, ApiError> {
        Self::parse_shape(input).map(OrgUrl)
    }

    /// For tests: a loopback URL (`http://127.0.0.1:PORT`), where plain HTTP is allowed. Anything that is not
    /// loopback is refused.
    pub fn loopback_for_testing(input: &str) -> Result<Self, ApiError> {
        let url = Url::parse(input).map_err(|e| ApiError::invalid("organization URL", format!("'{input}': {e}")))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        if !loopback {
            return Err(ApiError::invalid("organization URL", format!("'{input}' is not a loopback URL")));
        }
        check_base(&url, "organization URL")?;
        Self::no_path(url, input).map(OrgUrl)
    }

    pub(in crate::clients) fn parse_shape(input: &str) -> Result<Url, ApiError> {
        let trimmed = input.trim();
        let with_scheme = if trimmed.contains("://") { trimmed.to_owned() } else { format!("https://{trimmed}") };
        let url =
            Url::parse(&with_scheme).map_err(|e| ApiError::invalid("organization URL", format!("'{input}': {e}")))?;
        if url.scheme() != "https" {
            return Err(ApiError::invalid("organization URL", format!("'{input}' must be https://")));
        }
        if url.port().is_some() {
            return Err(ApiError::invalid("organization URL", format!("'{input}' has a port; Dataverse has none")));
        }
        Self::no_path(url, input)
    }

    pub(in crate::clients) fn no_path(url: Url, input: &str) -> Result<Url, ApiError> {
        if url.path() != "/" && !url.path().is_empty() {
            return Err(ApiError::invalid(
                "organization URL",
                format!(
                    "'{input}' has the path '{}'; give the organization URL alone, e.g. https://contoso.crm.dynamics.com",
                    url.path()
                ),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ApiError::invalid("organization URL", format!("'{input}' has a query or fragment")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ApiError::invalid("organization URL", "credentials do not go in the URL"));
        }
        Ok(url)
    }

    /// The host, e.g. `contoso.crm.dynamics.com`.
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// The URL, ending in `/`.
    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

/// A security role, as the `roles` entity set answers (`roleid`, `name`, its business unit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SecurityRole {
    /// `roleid`.
    #[serde(rename = "roleid")]
    pub id: Uuid,
    /// `name`, e.g. `Basic User`.
    pub name: String,
    /// The role's business unit (`_businessunitid_value`): each business unit has its own copy of a role.
    #[serde(rename = "_businessunitid_value", default)]
    pub business_unit: Option<Uuid>,
}

/// A business unit, as `businessunits` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BusinessUnit {
    /// `businessunitid`.
    #[serde(rename = "businessunitid")]
    pub id: Uuid,
}

/// An application user: the `systemuser` row whose `applicationid` is an Entra application's (or a user-assigned
/// identity's) client id, with its security roles (`systemuserroles_association`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApplicationUser {
    /// `systemuserid`.
    #[serde(rename = "systemuserid")]
    pub id: Uuid,
    /// `applicationid`.
    #[serde(rename = "applicationid", default)]
    pub application_id: Option<Uuid>,
    /// `isdisabled`.
    #[serde(rename = "isdisabled", default)]
    pub disabled: Option<bool>,
    /// Its business unit (`_businessunitid_value`).
    #[serde(rename = "_businessunitid_value", default)]
    pub business_unit: Option<Uuid>,
    /// Its security roles, as expanded.
    #[serde(rename = "systemuserroles_association", default)]
    pub roles: Vec<SecurityRole>,
}

/// The answer of `WhoAmI`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The calling user (or application user).
    #[serde(rename = "UserId")]
    pub user_id: Uuid,
    /// Their business unit.
    #[serde(rename = "BusinessUnitId")]
    pub business_unit_id: Uuid,
    /// The organization.
    #[serde(rename = "OrganizationId")]
    pub organization_id: Uuid,
}

/// The kind of a plug-in component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ComponentKind {
    /// A plug-in assembly (`pluginassembly`).
    PluginAssembly,
    /// A plug-in package (`pluginpackage`).
    PluginPackage,
}

impl ComponentKind {
    /// The signer of a component of this kind from the bytes the platform keeps for it: an assembly's Authenticode
    /// signature, a package's NuGet author signature.
    pub fn signer(self, bytes: &[u8]) -> Result<crate::cert::LoadedCertificate, crate::cert::CertificateError> {
        match self {
            ComponentKind::PluginPackage => crate::cert::Certificate::from_signed_package(bytes),
            ComponentKind::PluginAssembly => crate::cert::Certificate::from_signed_assembly(bytes),
        }
    }

    /// The table's logical name.
    pub fn logical_name(self) -> &'static str {
        match self {
            ComponentKind::PluginAssembly => "pluginassembly",
            ComponentKind::PluginPackage => "pluginpackage",
        }
    }

    pub(in crate::clients) fn entity_set(self) -> &'static str {
        match self {
            ComponentKind::PluginAssembly => "pluginassemblies",
            ComponentKind::PluginPackage => "pluginpackages",
        }
    }
}

/// The answer of `GetComponentManagedIdentityFIC`: the subject the platform itself computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentManagedIdentityFic {
    /// The subject identifier the platform will present.
    #[serde(rename = "FICSubject")]
    pub fic_subject: String,
    /// Every other property, as it came.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An environment's managed identity rows and plug-ins, as [`DataverseClient::environment_status`](super::DataverseClient::environment_status) reads them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EnvironmentStatus {
    /// The `managedidentity` rows.
    pub managed_identities: Vec<ManagedIdentity>,
    /// The plug-in assemblies.
    pub plugin_assemblies: Vec<PluginAssembly>,
    /// The plug-in packages.
    pub plugin_packages: Vec<PluginPackage>,
}

impl std::fmt::Display for EnvironmentStatus {
    /// The rows (application, tenant, version) and each plug-in with the row it is bound to, as
    /// `dataverse-mi status` prints them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        let bound = |m: Option<Uuid>| m.map(|m| m.to_string()).unwrap_or_else(|| "not bound".into());
        write!(f, "managed identities:")?;
        for r in &self.managed_identities {
            write!(
                f,
                "\n  {} app {} tenant {} version {}",
                r.id,
                show(r.application_id.map(|a| a.to_string())),
                show(r.tenant_id.map(|t| t.to_string())),
                show(r.version.map(|v| v.to_string()))
            )?;
        }
        write!(f, "\nplug-in assemblies:")?;
        for a in &self.plugin_assemblies {
            write!(f, "\n  {:<50} {}", a.name.as_deref().unwrap_or("-"), bound(a.managed_identity_id))?;
        }
        write!(f, "\nplug-in packages:")?;
        for p in &self.plugin_packages {
            write!(f, "\n  {:<50} {}", p.unique_name.as_deref().unwrap_or("-"), bound(p.managed_identity_id))?;
        }
        Ok(())
    }
}

/// The columns of a managed identity row that may change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ManagedIdentityUpdate {
    /// `version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<SubjectFormatVersion>,
    /// `applicationid`.
    #[serde(rename = "applicationid", skip_serializing_if = "Option::is_none")]
    pub application_id: Option<Uuid>,
    /// `tenantid`.
    #[serde(rename = "tenantid", skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    /// `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

pub(super) const MI_SELECT: &str =
    "managedidentityid,name,applicationid,tenantid,credentialsource,subjectscope,version,identitytype,statecode";

pub(super) const ASSEMBLY_SELECT: &str = "pluginassemblyid,name,version,culture,publickeytoken,isolationmode,sourcetype,_packageid_value,_managedidentityid_value";

pub(super) const PACKAGE_SELECT: &str = "pluginpackageid,name,uniquename,version,_managedidentityid_value";
