//! The provisioning spec: what a user wants, as a TOML or JSON file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cert::{Certificate, CertificateHash};
use crate::cloud::Cloud;
use crate::secret::Secret;
use crate::subject::{CertificateBinding, CertificateKind, SubjectFormatVersion};

/// Which identity the plug-ins get tokens for, and whether to create it when it does not exist (step 1 of
/// the walkthrough).
///
/// In TOML, an app registration found by name and created when missing:
///
/// ```toml
/// [identity]
/// kind = "app-registration"
/// display_name = "Contoso plug-ins"
/// create = true
/// ```
///
/// and a user-assigned identity created when missing:
///
/// ```toml
/// [identity]
/// kind = "user-assigned"
/// subscription_id = "..."
/// resource_group = "rg-plugins"
/// name = "contoso-plugins"
/// create = { location = "westeurope", tags = { owner = "platform-team" } }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum IdentitySpec {
    /// An Entra app registration; FICs go through Microsoft Graph. Found by `app_id`, else by `display_name`.
    AppRegistration {
        /// The application (client) id, when the application exists.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        app_id: Option<Uuid>,
        /// The display name: how the application is found without an id, and the name it is created with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
        /// Create the application and its service principal when no application has the display name. The
        /// application gets no password and no key: the plug-ins authenticate with the FICs alone.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        create: bool,
        /// Refused: a client secret or password credential (see [`RefusedCredential`]).
        #[serde(default, alias = "password_credential", alias = "client_secret", skip_serializing)]
        password_credentials: Option<RefusedCredential>,
        /// Refused: a key (certificate) credential (see [`RefusedCredential`]).
        #[serde(default, alias = "key_credential", skip_serializing)]
        key_credentials: Option<RefusedCredential>,
    },
    /// A user-assigned managed identity; FICs go through Azure Resource Manager.
    UserAssigned {
        /// The subscription id.
        subscription_id: String,
        /// The resource group.
        resource_group: String,
        /// The identity's name.
        name: String,
        /// Create the identity when it does not exist, with this location and these tags (an existing identity
        /// is used as it is).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        create: Option<CreateIdentitySpec>,
    },
}

/// Whether two identity specs name the same identity (how it is created, and refused credentials, aside): the
/// same application id and display name, or the same user-assigned identity (ARM names compare case-insensitively).
pub(crate) fn same_identity(a: &IdentitySpec, b: &IdentitySpec) -> bool {
    match (a, b) {
        (
            IdentitySpec::AppRegistration { app_id: a_id, display_name: a_name, .. },
            IdentitySpec::AppRegistration { app_id: b_id, display_name: b_name, .. },
        ) => a_id == b_id && a_name == b_name,
        (
            IdentitySpec::UserAssigned { subscription_id: s1, resource_group: g1, name: n1, .. },
            IdentitySpec::UserAssigned { subscription_id: s2, resource_group: g2, name: n2, .. },
        ) => s1.eq_ignore_ascii_case(s2) && g1.eq_ignore_ascii_case(g2) && n1.eq_ignore_ascii_case(n2),
        _ => false,
    }
}

/// An identity spec in words, for errors: `app registration 0b5a...`, `user-assigned identity rg/name`.
pub(crate) fn describe_identity(identity: &IdentitySpec) -> String {
    match identity {
        IdentitySpec::AppRegistration { app_id: Some(id), .. } => format!("app registration {id}"),
        IdentitySpec::AppRegistration { display_name: Some(name), .. } => format!("app registration '{name}'"),
        IdentitySpec::AppRegistration { .. } => "an app registration".to_owned(),
        IdentitySpec::UserAssigned { subscription_id, resource_group, name, .. } => {
            format!("user-assigned identity {subscription_id}/{resource_group}/{name}")
        }
    }
}

impl EnvironmentSpec {
    /// Whether this environment is the one at `org_url` (case, surrounding white space and a trailing slash aside).
    pub fn is_at(&self, org_url: &str) -> bool {
        let key = |u: &str| u.trim().trim_end_matches('/').to_ascii_lowercase();
        key(org_url) == key(&self.org_url)
    }
}

impl IdentitySpec {
    /// An existing app registration, by application (client) id.
    pub fn app_registration(app_id: Uuid) -> Self {
        IdentitySpec::AppRegistration {
            app_id: Some(app_id),
            display_name: None,
            create: false,
            password_credentials: None,
            key_credentials: None,
        }
    }

    /// An app registration found by display name, created (with its service principal) when missing.
    pub fn app_registration_named(display_name: impl Into<String>, create: bool) -> Self {
        IdentitySpec::AppRegistration {
            app_id: None,
            display_name: Some(display_name.into()),
            create,
            password_credentials: None,
            key_credentials: None,
        }
    }

    /// An existing user-assigned managed identity.
    pub fn user_assigned(
        subscription_id: impl Into<String>,
        resource_group: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        IdentitySpec::UserAssigned {
            subscription_id: subscription_id.into(),
            resource_group: resource_group.into(),
            name: name.into(),
            create: None,
        }
    }

    fn check(&self) -> Result<(), SpecError> {
        match self {
            IdentitySpec::AppRegistration { password_credentials: Some(_), .. } => {
                Err(SpecError::CredentialRequested { field: "password_credentials" })
            }
            IdentitySpec::AppRegistration { key_credentials: Some(_), .. } => {
                Err(SpecError::CredentialRequested { field: "key_credentials" })
            }
            IdentitySpec::AppRegistration { app_id: None, display_name: None, .. } => Err(SpecError::Invalid {
                field: "identity",
                message: "an app registration needs app_id or display_name".into(),
            }),
            IdentitySpec::AppRegistration { create: true, display_name: None, .. } => Err(SpecError::Invalid {
                field: "identity.create",
                message: "creating an app registration needs its display_name".into(),
            }),
            IdentitySpec::AppRegistration { create: true, app_id: Some(_), .. } => Err(SpecError::Invalid {
                field: "identity.create",
                message: "a created application gets a new app_id: give its display_name alone, or drop create".into(),
            }),
            IdentitySpec::AppRegistration { display_name: Some(n), .. } if n.trim().is_empty() => {
                Err(SpecError::Invalid { field: "identity.display_name", message: "empty".into() })
            }
            IdentitySpec::UserAssigned { create: Some(c), .. } if c.location.trim().is_empty() => {
                Err(SpecError::Invalid { field: "identity.create.location", message: "empty".into() })
            }
            _ => Ok(()),
        }
    }
}

/// How to create a user-assigned managed identity that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIdentitySpec {
    /// The Azure region, e.g. `westeurope`.
    pub location: String,
    /// Tags to put on it.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A credential a spec asked for, which is refused: this crate exists so that plug-ins need no secret, and a
/// password or key on the application would be one more secret to store, rotate and leak. Any value in the spec
/// file is accepted by the parser only to give this explanation instead of "unknown field".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefusedCredential;

impl<'de> Deserialize<'de> for RefusedCredential {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| RefusedCredential)
    }
}

impl Serialize for RefusedCredential {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_none()
    }
}

/// Access to grant the identity on an Azure resource (step 5 of the walkthrough): an ARM role assignment.
///
/// ```toml
/// [[grants]]
/// role = "Key Vault Secrets User"
/// scope = "/subscriptions/.../resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso-kv"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSpec {
    /// The role's name, resolved to its definition at the scope (e.g. `Key Vault Secrets User`).
    pub role: String,
    /// The resource id the role applies to.
    pub scope: String,
}

/// The identity as an application user of a Dataverse environment, with security roles: for plug-ins that call
/// Dataverse with the identity's token (another environment, or their own with the identity's permissions). The
/// roles are the root business unit's, by name.
///
/// ```toml
/// [[application_users]]
/// environment = "https://contoso-data.crm.dynamics.com"  # leave out: every environment of the spec
/// roles = ["Basic User", "Contoso Reader"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ApplicationUserSpec {
    /// The environment's URL; `None` for every environment of the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The security roles, by name (the root business unit's).
    pub roles: Vec<String>,
}

impl ApplicationUserSpec {
    /// An application user with `roles` in `environment` (`None`: every environment of the spec).
    pub fn new(environment: Option<String>, roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        ApplicationUserSpec { environment, roles: roles.into_iter().map(Into::into).collect() }
    }
}

/// Application permissions of an API for the identity (app role assignments on its service principal): Microsoft
/// Graph's by default. Delegated permissions (which act for a signed-in user) cannot be given to a plug-in's
/// identity and are refused with the reason.
///
/// ```toml
/// [[api_permissions]]
/// permissions = ["Mail.Send", "User.Read.All"]
/// # api = "00000003-0000-0000-c000-000000000000"  # another API's application id; Microsoft Graph by default
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ApiPermissionSpec {
    /// The API's application id; `None` for Microsoft Graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<Uuid>,
    /// The permissions, by name (the app role's value, e.g. `Mail.Send`).
    pub permissions: Vec<String>,
}

impl ApiPermissionSpec {
    /// Microsoft Graph application permissions.
    pub fn graph(permissions: impl IntoIterator<Item = impl Into<String>>) -> Self {
        ApiPermissionSpec { api: None, permissions: permissions.into_iter().map(Into::into).collect() }
    }

    /// Application permissions of the API whose application id is `api`.
    pub fn of_api(api: Uuid, permissions: impl IntoIterator<Item = impl Into<String>>) -> Self {
        ApiPermissionSpec { api: Some(api), permissions: permissions.into_iter().map(Into::into).collect() }
    }

    /// The API's application id (Microsoft Graph's when none is given).
    pub fn api_app_id(&self) -> Uuid {
        self.api.unwrap_or(crate::clients::MICROSOFT_GRAPH_APP_ID)
    }
}

/// The signing certificate of an environment's components.
///
/// In a file: `certificate = "registered"` (the default when an environment names no certificate), a path
/// (`{ path = "signing.cer" }`, `{ path = "signing.pfx", password_env = "PFX_PASSWORD" }`), a hash
/// (`{ sha256 = "..." }`), names (`{ issuer_dn = "...", subject_dn = "..." }`) or the certificate itself
/// (`{ der = "<base64>" }`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CertificateSpec {
    /// The certificate that signed each component as the platform registered it: plan reads each component's
    /// registered bytes (`pluginassembly.content`, the plug-in package's content or file) and takes the signer
    /// from its signature, so a component signed with another certificate than the one at hand cannot be missed.
    /// Components signed with different certificates get one FIC per certificate; an unsigned component is
    /// refused. The default when a spec names no certificate.
    #[default]
    Registered,
    /// A file of any form [`Certificate::from_file`] reads (relative paths are relative to the spec file).
    File {
        /// The path.
        path: PathBuf,
        /// The name of an environment variable holding a PFX password.
        password_env: Option<String>,
    },
    /// The SHA-256 of a self-signed certificate.
    Sha256 {
        /// The hash (any case, colons allowed).
        sha256: CertificateHash,
    },
    /// The .NET-formatted names of a CA-issued certificate.
    Names {
        /// `X509Certificate2.Issuer`.
        issuer_dn: String,
        /// `X509Certificate2.Subject`.
        subject_dn: String,
    },
    /// A certificate itself (read from a vault, a database, a request; in a file, `{ der = "<base64 DER>" }`).
    Loaded {
        /// The certificate (its DER bytes in Base64 in a file).
        certificate: Certificate,
    },
    /// A PFX file and its password, given in memory as a [`Secret`] (never printed) instead of through an
    /// environment variable. Not part of the file format (a plan stores the certificate read from it instead:
    /// [`ProvisionSpec::storable`]); serializing it is an error.
    Pkcs12 {
        /// The path (relative paths are relative to the spec's `base_dir`).
        path: PathBuf,
        /// The password.
        password: Secret,
    },
}

impl CertificateSpec {
    /// Whether this is [`CertificateSpec::Registered`].
    pub fn is_registered(&self) -> bool {
        matches!(self, CertificateSpec::Registered)
    }
}

/// The file form of [`CertificateSpec`].
#[derive(Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum CertificateRepr {
    Keyword(CertificateKeyword),
    File {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
    },
    Sha256 {
        sha256: CertificateHash,
    },
    Names {
        issuer_dn: String,
        subject_dn: String,
    },
    Loaded {
        #[serde(rename = "der", with = "der_base64")]
        certificate: Certificate,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum CertificateKeyword {
    Registered,
}

impl Serialize for CertificateSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let repr = match self.clone() {
            CertificateSpec::Registered => CertificateRepr::Keyword(CertificateKeyword::Registered),
            CertificateSpec::File { path, password_env } => CertificateRepr::File { path, password_env },
            CertificateSpec::Sha256 { sha256 } => CertificateRepr::Sha256 { sha256 },
            CertificateSpec::Names { issuer_dn, subject_dn } => CertificateRepr::Names { issuer_dn, subject_dn },
            CertificateSpec::Loaded { certificate } => CertificateRepr::Loaded { certificate },
            CertificateSpec::Pkcs12 { .. } => {
                return Err(serde::ser::Error::custom(
                    "a PFX given with its password in memory is not written out (ProvisionSpec::storable stores the certificate read from it)",
                ));
            }
        };
        repr.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CertificateSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match CertificateRepr::deserialize(deserializer)? {
            CertificateRepr::Keyword(CertificateKeyword::Registered) => CertificateSpec::Registered,
            CertificateRepr::File { path, password_env } => CertificateSpec::File { path, password_env },
            CertificateRepr::Sha256 { sha256 } => CertificateSpec::Sha256 { sha256 },
            CertificateRepr::Names { issuer_dn, subject_dn } => CertificateSpec::Names { issuer_dn, subject_dn },
            CertificateRepr::Loaded { certificate } => CertificateSpec::Loaded { certificate },
        })
    }
}

impl From<Certificate> for CertificateSpec {
    fn from(certificate: Certificate) -> Self {
        CertificateSpec::Loaded { certificate }
    }
}

/// A certificate as Base64 of its DER bytes.
mod der_base64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::cert::Certificate;

    pub(super) fn serialize<S: Serializer>(certificate: &Certificate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(certificate.der()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Certificate, D::Error> {
        let text = String::deserialize(d)?;
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD.decode(compact).map_err(|e| serde::de::Error::custom(format!("der: not Base64: {e}")))?;
        Certificate::from_der(&der).map_err(serde::de::Error::custom)
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

/// Everything to provision.
///
/// ```
/// use dataverse_mi::provision::ProvisionSpec;
/// let spec = ProvisionSpec::from_toml(r#"
///     version = 2
///     [identity]
///     kind = "app-registration"
///     app_id = "0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b"
///     [[environments]]
///     org_url = "https://contoso.crm.dynamics.com"
///     plugin_assemblies = ["Contoso.Plugins"]
///     certificate = { sha256 = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89" }
/// "#)?;
/// assert_eq!(spec.environments.len(), 1);
/// # Ok::<(), dataverse_mi::provision::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SpecFile", into = "SpecFile")]
#[non_exhaustive]
pub struct ProvisionSpec {
    /// The identity.
    pub identity: IdentitySpec,
    /// The cloud (`public` by default).
    #[serde(default)]
    pub cloud: Cloud,
    /// The subject format version (2 by default; 1 for legacy setups).
    #[serde(default)]
    pub version: SubjectFormatVersion,
    /// Delete the FICs this spec provably made for its own environments ([`fic::is_managed`](crate::fic::is_managed))
    /// that it no longer needs (e.g. the version 1 FIC after a migration), unless a plug-in still presents their
    /// subject (kept, with [`PlanNote::FicKept`](super::PlanNote::FicKept)). Never another spec's FICs on a shared
    /// identity, nor FICs made by hand; each deletion is listed in the plan with its reason.
    #[serde(default)]
    pub prune: bool,
    /// Switch rows at a newer subject format version back to this spec's `version` (a version 2 row to 1). Off by
    /// default: a spec still at version 1 after an upgrade leaves the upgraded rows alone and says so, instead of
    /// undoing the upgrade. [`ProvisionSpec::at_version`] sets it (an upgrade or a revert means its version).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_version_downgrade: bool,
    /// Rebind the spec's components that are bound to another row (another application's, another tenant's, or
    /// one this spec did not make). Off by default: such a component is left as it is and the plan names the row,
    /// its application and name, since rebinding gives that plug-in this identity's tokens.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub take_over: bool,
    /// Adopt the row the spec's components are already bound to when this identity has none in the environment:
    /// the solution-import case, where a solution brought the source environment's row (its `applicationid` and
    /// `tenantid`) with the components bound to it. The row is updated in place (application, tenant, version)
    /// instead of a second one being made. Never a row made in this environment for another application (its id
    /// is that application's deterministic one): that one is another team's. Off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// The environments. Empty in a spec that discovers them (`discover`) until
    /// [`Provisioner::resolve`](super::Provisioner::resolve) fills them.
    pub environments: Vec<EnvironmentSpec>,
    /// Environments selected through the Global Discovery Service instead of listed
    /// (`environments = { discover = true, name = "contoso-*" }` in a file).
    pub discover: Option<DiscoverSpec>,
    /// Role assignments to give the identity (step 5 of the walkthrough).
    #[serde(default)]
    pub grants: Vec<GrantSpec>,
    /// The identity as an application user of Dataverse environments, with security roles.
    #[serde(default)]
    pub application_users: Vec<ApplicationUserSpec>,
    /// Application permissions of Microsoft Graph (or another API) for the identity.
    #[serde(default)]
    pub api_permissions: Vec<ApiPermissionSpec>,
    /// Where relative certificate paths start (the spec file's folder); not part of the file.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// The file form of [`ProvisionSpec`]: `environments` is a list, or a discovery selector.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    identity: IdentitySpec,
    #[serde(default)]
    cloud: Cloud,
    #[serde(default)]
    version: SubjectFormatVersion,
    #[serde(default)]
    prune: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    allow_version_downgrade: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    take_over: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    adopt: bool,
    environments: EnvironmentsField,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    grants: Vec<GrantSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    application_users: Vec<ApplicationUserSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    api_permissions: Vec<ApiPermissionSpec>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EnvironmentsField {
    List(Vec<EnvironmentSpec>),
    Discover(Box<DiscoverSpec>),
}

impl<'de> Deserialize<'de> for EnvironmentsField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = EnvironmentsField;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of environments, or { discover = true, name = \"pattern\", ... }")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(EnvironmentsField::List)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                DiscoverSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|d| EnvironmentsField::Discover(Box::new(d)))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl TryFrom<SpecFile> for ProvisionSpec {
    type Error = String;
    fn try_from(f: SpecFile) -> Result<Self, String> {
        let (environments, discover) = match f.environments {
            EnvironmentsField::List(list) => (list, None),
            EnvironmentsField::Discover(d) if !d.discover => {
                return Err(
                    "environments: `discover = false` selects nothing; list the environments, or set discover = true"
                        .into(),
                );
            }
            EnvironmentsField::Discover(d) => (Vec::new(), Some(*d)),
        };
        Ok(ProvisionSpec {
            identity: f.identity,
            cloud: f.cloud,
            version: f.version,
            prune: f.prune,
            allow_version_downgrade: f.allow_version_downgrade,
            take_over: f.take_over,
            adopt: f.adopt,
            environments,
            discover,
            grants: f.grants,
            application_users: f.application_users,
            api_permissions: f.api_permissions,
            base_dir: PathBuf::new(),
        })
    }
}

impl From<ProvisionSpec> for SpecFile {
    fn from(s: ProvisionSpec) -> Self {
        // A resolved spec is written with its environments (what a stored plan needs); an unresolved one with
        // its selector.
        let environments = match s.discover {
            Some(d) if s.environments.is_empty() => EnvironmentsField::Discover(Box::new(d)),
            _ => EnvironmentsField::List(s.environments),
        };
        SpecFile {
            identity: s.identity,
            cloud: s.cloud,
            version: s.version,
            prune: s.prune,
            allow_version_downgrade: s.allow_version_downgrade,
            take_over: s.take_over,
            adopt: s.adopt,
            environments,
            grants: s.grants,
            application_users: s.application_users,
            api_permissions: s.api_permissions,
        }
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
    /// The discovery service, when not the cloud's default ([`Cloud::global_discovery_url`]): GCC's
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
    /// and no `discovery_url` (which [`ProvisionSpec::validate`] refuses).
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

/// Why a spec cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Reading this spec needs a feature the crate was built without (TOML: `spec-toml`; JSON always works).
    #[error("reading a TOML spec needs the crate's `{feature}` feature; give a .json spec, or build with it")]
    FeatureDisabled {
        /// The feature.
        feature: &'static str,
    },
    /// The spec file is larger than a spec can be (a wrong path: `/dev/zero`, a large file given by mistake).
    #[error(transparent)]
    File(crate::files::FileError),
    /// The file cannot be read.
    #[error("cannot read the spec {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TOML does not parse or does not fit the spec.
    #[error("the spec is not valid TOML for a provisioning spec: {0}")]
    Toml(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The JSON does not parse or does not fit the spec.
    #[error("the spec is not valid JSON for a provisioning spec: {0}")]
    Json(#[source] serde_json::Error),
    /// The spec has no environment.
    #[error("the spec lists no environment")]
    NoEnvironment,
    /// The spec asks for a password or key credential on the application.
    #[error(
        "the spec asks for {field} on the application: refused. dataverse-mi sets up plug-ins to get tokens with no secret at all (the platform signs an assertion that the FIC trusts); a password or key would be a secret to store, rotate and leak. Remove {field} from the spec"
    )]
    CredentialRequested {
        /// The field.
        field: &'static str,
    },
    /// A value in the spec is not usable.
    #[error("the spec's {field} is not usable: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        message: String,
    },
}

impl ProvisionSpec {
    /// Fills what a diagnosis can learn from the spec, where `inputs` has nothing yet: the cloud, the subject
    /// format version, the app registration's id, and the first environment's certificate (read as the spec says:
    /// a file with its password, a PFX with a password in memory, or the certificate itself; with its chain and
    /// the file's own hash). Returns what the user should know about how the certificate was picked.
    pub fn fill_diagnosis_inputs(
        &self,
        inputs: &mut crate::diagnose::DiagnosisInputs,
    ) -> Result<Vec<crate::cert::LoadWarning>, super::ProvisionError> {
        inputs.cloud.get_or_insert_with(|| crate::cloud::CloudProfile::from(self.cloud));
        inputs.version.get_or_insert(self.version);
        if let IdentitySpec::AppRegistration { app_id: Some(app_id), .. } = &self.identity {
            inputs.application_id.get_or_insert(*app_id);
        }
        if inputs.certificate.is_some() {
            return Ok(Vec::new());
        }
        let first = self.environments.first().and_then(|e| e.certificate_specs().iter().find(|c| !c.is_registered()));
        let (path, password) = match first {
            Some(CertificateSpec::Loaded { certificate }) => {
                inputs.certificate = Some(certificate.clone());
                return Ok(Vec::new());
            }
            Some(CertificateSpec::Pkcs12 { path, password }) => (path, Some(password.clone())),
            Some(CertificateSpec::File { path, password_env }) => {
                let password = match password_env {
                    Some(var) => Some(Secret::new(std::env::var(var).map_err(|_| super::ProvisionError::Input {
                        message: format!("the environment variable {var} (the PFX password) is not set"),
                    })?)),
                    None => None,
                };
                (path, password)
            }
            _ => return Ok(Vec::new()),
        };
        let path = self.base_dir.join(path);
        let bytes = crate::files::read_bounded(&path, crate::files::MAX_CERTIFICATE_FILE, "certificate file")
            .map_err(|e| super::ProvisionError::from(crate::cert::CertificateError::from(e)))?;
        Ok(inputs.set_certificate_file(&bytes, password.as_ref())?)
    }

    /// The spec as a plan stores it: a PFX given with its password in memory is replaced by the certificate read
    /// from it, so that no secret is written and the stored plan can still be checked later.
    pub fn storable(&self) -> Result<ProvisionSpec, super::ProvisionError> {
        let mut out = self.clone();
        for e in &mut out.environments {
            for c in std::iter::once(&mut e.certificate).chain(e.certificates.iter_mut()) {
                if matches!(c, CertificateSpec::Pkcs12 { .. })
                    && let Some(certificate) = c.certificate(&self.base_dir)?
                {
                    *c = CertificateSpec::Loaded { certificate };
                }
            }
        }
        Ok(out)
    }

    /// The first step of a rotation: every environment keeps its certificates and gains `new`, so that plan adds
    /// the new certificate's FICs and keeps the old ones (the plug-ins keep working before and after they are
    /// re-signed and registered again). Pruning is off for this step.
    ///
    /// ```
    /// use dataverse_mi::provision::{CertificateSpec, EnvironmentSpec, IdentitySpec, ProvisionSpec};
    /// let spec = ProvisionSpec::new(
    ///     IdentitySpec::app_registration_named("Contoso plug-ins", false),
    ///     vec![EnvironmentSpec::new("https://contoso.crm.dynamics.com").with_assemblies(["Contoso.Plugins"])],
    /// );
    /// let rotating = spec.adding_certificate(CertificateSpec::File { path: "new.cer".into(), password_env: None });
    /// // The registered certificate (the old one, until re-registration) and the new one.
    /// assert_eq!(rotating.environments[0].certificate_specs().len(), 2);
    /// assert!(rotating.environments[0].certificate_specs()[0].is_registered());
    /// ```
    pub fn adding_certificate(&self, new: CertificateSpec) -> ProvisionSpec {
        self.adding_certificate_in(new, &[])
    }

    /// [`adding_certificate`](Self::adding_certificate) in the environments whose org URL is one of `org_urls` (all
    /// of them when it is empty); the others keep their certificate. During a rotation each environment holds two
    /// FICs, so an identity serving more than 10 environments rotates a few at a time (it holds at most 20 FICs).
    /// URLs are compared as [`OrgUrl`](crate::clients::OrgUrl)s are (case and a trailing slash aside).
    pub fn adding_certificate_in(&self, new: CertificateSpec, org_urls: &[&str]) -> ProvisionSpec {
        let mut out = self.clone();
        out.prune = false;
        for e in out.environments.iter_mut().filter(|e| selected(e, org_urls)) {
            let mut all = e.certificate_specs().to_vec();
            if !all.contains(&new) {
                all.push(new.clone());
            }
            e.certificate = CertificateSpec::Registered;
            e.certificates = all;
        }
        out
    }

    /// The last step of a rotation: every environment's FICs are made for the new certificate `to` alone, and
    /// the spec's own FICs for any other certificate are pruned, except those a plug-in still presents: plan keeps
    /// them and says who uses them ([`PlanNote::FicKept`](super::PlanNote::FicKept), [`Plan::kept_fics`](
    /// super::Plan::kept_fics)) until every plug-in is re-signed. `CertificateSpec::Registered` keeps whatever the
    /// components carry now:
    /// only after every one of them is registered again with the new certificate (before that, it would remove
    /// the new certificate's FIC, and the next registration would break).
    pub fn finishing_rotation(&self, to: CertificateSpec) -> ProvisionSpec {
        self.finishing_rotation_in(to, &[])
    }

    /// [`finishing_rotation`](Self::finishing_rotation) in the environments whose org URL is one of `org_urls` (all
    /// of them when it is empty); only those environments' FICs are pruned.
    pub fn finishing_rotation_in(&self, to: CertificateSpec, org_urls: &[&str]) -> ProvisionSpec {
        let mut out = self.clone();
        out.prune = true;
        if !org_urls.is_empty() {
            out.environments.retain(|e| selected(e, org_urls));
        }
        for e in &mut out.environments {
            e.certificate = to.clone();
            e.certificates.clear();
        }
        out
    }

    /// A spec file's text with its top-level `version` set to `version`, everything else (comments, order) as
    /// it was: what `dataverse-mi upgrade --write-spec` writes, so that the spec agrees with the upgraded rows.
    /// A TOML file gets its `version = N` line replaced (or one added at the top); a JSON file its `"version"`
    /// member. Only the top level is touched (a `version` inside a table is another setting).
    ///
    /// ```
    /// use dataverse_mi::provision::ProvisionSpec;
    /// use dataverse_mi::subject::SubjectFormatVersion;
    /// let toml = "# Contoso\nversion = 1 # legacy\n[identity]\nversion = 7\n";
    /// let v2 = ProvisionSpec::with_version_written(toml, SubjectFormatVersion::V2, false);
    /// assert_eq!(v2, "# Contoso\nversion = 2 # legacy\n[identity]\nversion = 7\n");
    /// let added = ProvisionSpec::with_version_written("[identity]\nkind = \"x\"\n", SubjectFormatVersion::V2, false);
    /// assert_eq!(added, "version = 2\n[identity]\nkind = \"x\"\n");
    /// ```
    pub fn with_version_written(text: &str, version: SubjectFormatVersion, json: bool) -> String {
        let n = version.number();
        if json {
            let mut value: serde_json::Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(_) => return text.to_owned(),
            };
            if let Some(object) = value.as_object_mut() {
                object.insert("version".into(), n.into());
            }
            return serde_json::to_string_pretty(&value).map(|t| t + "\n").unwrap_or_else(|_| text.to_owned());
        }
        let mut out = String::with_capacity(text.len() + 16);
        let mut top_level = true;
        let mut written = false;
        for line in text.split_inclusive('\n') {
            let trimmed = line.trim_start();
            if trimmed.starts_with('[') {
                top_level = false;
            }
            let key = trimmed.split(['=', ' ', '\t']).next().unwrap_or_default();
            if top_level && !written && key == "version" && trimmed.contains('=') {
                let indent = &line[..line.len() - trimmed.len()];
                let rest = trimmed.split_once('=').map(|(_, r)| r).unwrap_or_default();
                // Keep a trailing comment.
                let comment = rest.find('#').map(|i| &rest[i..]).unwrap_or("").trim_end();
                let ending = if line.ends_with("\r\n") {
                    "\r\n"
                } else if line.ends_with('\n') {
                    "\n"
                } else {
                    ""
                };
                out.push_str(&format!("{indent}version = {n}"));
                if !comment.is_empty() {
                    out.push(' ');
                    out.push_str(comment);
                }
                out.push_str(ending);
                written = true;
                continue;
            }
            out.push_str(line);
        }
        if written {
            return out;
        }
        // No top-level `version` yet: added before the first table, after any leading comments and keys.
        format!("version = {n}\n{text}")
    }

    /// The same spec at another subject format version (a version 1 to 2 upgrade, or its revert), without
    /// pruning: the previous version's FICs stay until [`finishing_rotation`](Self::finishing_rotation)-style
    /// pruning (`prune = true`) removes them once verify is clean.
    pub fn at_version(&self, version: SubjectFormatVersion) -> ProvisionSpec {
        let mut out = self.clone();
        out.version = version;
        out.prune = false;
        // Whatever version the rows have, this spec means to put them at `version` (a revert from a spec whose
        // file still says 1 included).
        out.allow_version_downgrade = true;
        out
    }

    /// A spec with the file format's defaults: the public cloud, subject format version 2, no pruning, no
    /// grants, relative certificate paths from the current folder.
    ///
    /// ```
    /// use dataverse_mi::provision::{CertificateSpec, EnvironmentSpec, GrantSpec, IdentitySpec, ProvisionSpec};
    /// let mut spec = ProvisionSpec::new(
    ///     IdentitySpec::app_registration_named("Contoso plug-ins", true),
    ///     vec![EnvironmentSpec::new("https://contoso.crm.dynamics.com")
    ///         .with_assemblies(["Contoso.Plugins"])
    ///         .with_certificate(CertificateSpec::File { path: "signing.cer".into(), password_env: None })],
    /// );
    /// spec.grants.push(GrantSpec { role: "Key Vault Secrets User".into(), scope: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv".into() });
    /// assert!(spec.validate().is_ok());
    /// ```
    pub fn new(identity: IdentitySpec, environments: Vec<EnvironmentSpec>) -> Self {
        ProvisionSpec {
            identity,
            cloud: Cloud::default(),
            version: SubjectFormatVersion::default(),
            prune: false,
            allow_version_downgrade: false,
            take_over: false,
            adopt: false,
            environments,
            discover: None,
            grants: Vec::new(),
            application_users: Vec::new(),
            api_permissions: Vec::new(),
            base_dir: PathBuf::new(),
        }
    }

    /// The spec as a TOML file (what `from_toml` reads back as this spec; the certificate paths as they are).
    /// Needs the `spec-toml` feature (default); without it, [`SpecError::FeatureDisabled`].
    pub fn to_toml(&self) -> Result<String, SpecError> {
        #[cfg(feature = "spec-toml")]
        {
            toml::to_string(self).map_err(|e| SpecError::Toml(Box::new(e)))
        }
        #[cfg(not(feature = "spec-toml"))]
        {
            Err(SpecError::FeatureDisabled { feature: "spec-toml" })
        }
    }

    /// Reads a TOML spec. Needs the `spec-toml` feature (default); without it, [`SpecError::FeatureDisabled`].
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        #[cfg(feature = "spec-toml")]
        {
            let spec: ProvisionSpec = toml::from_str(text).map_err(|e| SpecError::Toml(Box::new(e)))?;
            spec.checked()
        }
        #[cfg(not(feature = "spec-toml"))]
        {
            let _ = text;
            Err(SpecError::FeatureDisabled { feature: "spec-toml" })
        }
    }

    /// Reads a JSON spec.
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        let spec: ProvisionSpec = serde_json::from_str(text).map_err(SpecError::Json)?;
        spec.checked()
    }

    /// Reads a spec file: JSON when it ends in `.json`, TOML otherwise.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SpecError> {
        let path = path.as_ref();
        let text = crate::files::read_bounded_text(path, crate::files::MAX_SPEC_FILE, "spec").map_err(|e| match e {
            crate::files::FileError::Io { source, .. } => SpecError::Io { path: path.display().to_string(), source },
            other => SpecError::File(other),
        })?;
        let mut spec = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            Self::from_json(&text)?
        } else {
            Self::from_toml(&text)?
        };
        spec.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(spec)
    }

    fn checked(self) -> Result<Self, SpecError> {
        self.validate()?;
        Ok(self)
    }

    /// Checks what the file format cannot: at least one environment, an identity that can be found (and
    /// created, when asked), no credential requested, grants with a role and a resource id. The loaders and
    /// [`Provisioner::plan`](super::Provisioner::plan) call it; a spec built in code can call it early.
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

impl CertificateSpec {
    /// The certificate itself, when the spec names a file (relative paths start at `base_dir`); `None` for a
    /// hash, names, or the registered certificate (which plan reads per component).
    pub fn certificate(&self, base_dir: &Path) -> Result<Option<Certificate>, super::ProvisionError> {
        let (path, password) = match self {
            CertificateSpec::Loaded { certificate } => return Ok(Some(certificate.clone())),
            CertificateSpec::Pkcs12 { path, password } => (path, Some(password.clone())),
            CertificateSpec::File { path, password_env: Some(var) } => {
                let password = std::env::var(var).map_err(|_| super::ProvisionError::Input {
                    message: format!("the environment variable {var} (the PFX password) is not set"),
                })?;
                (path, Some(Secret::new(password)))
            }
            CertificateSpec::File { path, password_env: None } => (path, None),
            CertificateSpec::Sha256 { .. } | CertificateSpec::Names { .. } | CertificateSpec::Registered => {
                return Ok(None);
            }
        };
        // `join` keeps an absolute path as it is.
        Ok(Some(Certificate::from_file_with_password(base_dir.join(path), password.as_ref())?.certificate))
    }

    /// The certificate part of the subject for this spec's certificate.
    pub fn binding(
        &self,
        version: SubjectFormatVersion,
        base_dir: &Path,
    ) -> Result<CertificateBinding, super::ProvisionError> {
        self.binding_of(self.certificate(base_dir)?.as_ref(), version)
    }

    /// [`binding`](Self::binding) with the certificate already read by [`certificate`](Self::certificate), so
    /// that a caller that needs both reads the file once.
    pub(crate) fn binding_of(
        &self,
        certificate: Option<&Certificate>,
        version: SubjectFormatVersion,
    ) -> Result<CertificateBinding, super::ProvisionError> {
        match (self, certificate) {
            (_, Some(cert)) => Ok(CertificateBinding::for_certificate(cert, version, CertificateKind::Auto)?),
            (CertificateSpec::Sha256 { sha256 }, None) => Ok(CertificateBinding::SelfSigned { sha256: *sha256 }),
            (CertificateSpec::Names { issuer_dn, subject_dn }, None) => {
                Ok(CertificateBinding::from_names(issuer_dn, subject_dn, version)?)
            }
            (CertificateSpec::File { .. } | CertificateSpec::Pkcs12 { .. } | CertificateSpec::Loaded { .. }, None) => {
                Err(super::ProvisionError::Input { message: "the certificate file gave no certificate".into() })
            }
            (CertificateSpec::Registered, None) => Err(super::ProvisionError::Input {
                message: "the registered certificate is read per component from the platform (plan reads it)".into(),
            }),
        }
    }
}

/// Whether an environment is one of `org_urls` (every one when it is empty).
fn selected(e: &EnvironmentSpec, org_urls: &[&str]) -> bool {
    org_urls.is_empty() || org_urls.iter().any(|u| e.is_at(u))
}
