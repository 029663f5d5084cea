//! The spec as a whole: the identity, the environments, the cloud and the options, and its serde form (the
//! `environments` table or list).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ApiPermissionSpec, ApplicationUserSpec, DiscoverSpec, EnvironmentSpec, GrantSpec, IdentitySpec};
use crate::cloud::Cloud;
use crate::subject::SubjectFormatVersion;

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
    /// subject (kept, with [`PlanNote::FicKept`](crate::provision::PlanNote::FicKept)). Never another spec's FICs on a shared
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
    /// [`Provisioner::resolve`](crate::provision::Provisioner::resolve) fills them.
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

impl ProvisionSpec {
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
}
