//! What a fake platform starts with: a seed (a file, or a built-in scenario), for `dataverse-mi fake` and for
//! tests that describe their world as data.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{FakeOptions, FakePlatform};
use crate::cert::Certificate;

/// The example certificate the example specs name (`examples/contoso-plugins.cer`), built in.
const EXAMPLE_CERTIFICATE: &[u8] = include_bytes!("../../examples/contoso-plugins.cer");

/// The built-in scenarios [`Seed::scenario`] knows, with the spec (under `examples/specs/`) each is made for.
pub const SCENARIOS: &[(&str, &str)] = &[
    ("contoso", "examples/specs/contoso.toml"),
    ("quickstart", "examples/specs/quickstart.toml"),
    ("estate", "examples/specs/estate.toml"),
];

/// The built-in test assemblies a seed names by `registered`.
const REGISTERED_ASSEMBLIES: &[(&str, &[u8])] = &[
    ("signed", include_bytes!("../../tests/fixtures/signed/signed.dll")),
    ("renewed", include_bytes!("../../tests/fixtures/signed/renewed.dll")),
    ("unsigned", include_bytes!("../../tests/fixtures/signed/unsigned.dll")),
];

/// The built-in test packages a seed names by `registered`.
const REGISTERED_PACKAGES: &[(&str, &[u8])] = &[("signed", include_bytes!("../../tests/fixtures/signed/signed.nupkg"))];

/// A fake platform's starting state: the tenant, its app registrations and user-assigned identities, and its
/// environments with their plug-ins (each signed with a certificate, or not).
///
/// ```toml
/// tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
///
/// [[applications]]
/// app_id = "0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b"
/// display_name = "Contoso plug-ins"
///
/// [[environments]]
/// host = "contoso-dev.crm.dynamics.com"
/// plugin_assemblies = [{ name = "Contoso.Plugins", certificate = "example" }]
/// plugin_packages = [{ unique_name = "contoso_Integrations", certificate = "signing.cer", assemblies = ["Contoso.Integrations"] }]
/// ```
///
/// A certificate is a file (relative to the seed file's folder), or `"example"`: the example certificate the example
/// specs name. A component without one is registered unsigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Seed {
    /// The tenant every environment and identity is in.
    pub tenant: Uuid,
    /// App registrations (each with its service principal).
    #[serde(default)]
    pub applications: Vec<SeedApplication>,
    /// User-assigned managed identities.
    #[serde(default)]
    pub user_assigned_identities: Vec<SeedUserAssignedIdentity>,
    /// The environments.
    #[serde(default)]
    pub environments: Vec<SeedEnvironment>,
    /// `managedidentity` rows as they are found (an older version's, a solution import's, one bound to nothing),
    /// with the components bound to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_identities: Vec<SeedRow>,
    /// FICs already on the identities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fics: Vec<SeedFic>,
    /// Where relative certificate paths start (the seed file's folder; not part of the file).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// An app registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedApplication {
    /// Its client id.
    pub app_id: Uuid,
    /// Its display name.
    pub display_name: String,
}

/// A user-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedUserAssignedIdentity {
    /// The subscription.
    pub subscription_id: String,
    /// The resource group.
    pub resource_group: String,
    /// The name.
    pub name: String,
}

/// An environment and its plug-ins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedEnvironment {
    /// Its host (`contoso.crm.dynamics.com`).
    pub host: String,
    /// Whether it is the tenant's Default environment (its id is then `Default-{tenant}`).
    #[serde(default)]
    pub default: bool,
    /// Plug-in assemblies.
    #[serde(default)]
    pub plugin_assemblies: Vec<SeedAssembly>,
    /// Plug-in packages.
    #[serde(default)]
    pub plugin_packages: Vec<SeedPackage>,
}

/// A plug-in assembly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedAssembly {
    /// Its name.
    pub name: String,
    /// The certificate that signed it (a file, or `"example"`); unsigned without.
    #[serde(default)]
    pub certificate: Option<String>,
    /// The `.dll` registered for it (a file; or `"signed"`, `"renewed"`, `"unsigned"`: the built-in test
    /// assemblies, signed with a certificate valid until 2125, signed with one that ends on 2027-01-15, not
    /// signed): its signer is then the certificate, and the platform keeps its bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<String>,
}

/// Which identity a seeded row or FIC is for: an app registration's client id, or a user-assigned identity of the
/// seed by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedIdentityRef {
    /// An application (client) id (one the seed does not register is unknown in the tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<Uuid>,
    /// A user-assigned identity of the seed, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_assigned: Option<String>,
}

/// A `managedidentity` row as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedRow {
    /// The environment's host.
    pub host: String,
    /// The identity its `applicationid` names.
    pub identity: SeedIdentityRef,
    /// Its `tenantid` (the seed's tenant by default; another one is what a solution import brings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Uuid>,
    /// Its `version` (none: the deprecated version 0 form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    /// The components bound to it, by name (an assembly's name or a package's unique name).
    #[serde(default)]
    pub bound: Vec<String>,
}

/// A FIC on an identity: a subject given, or the one the platform presents for a component (`host/name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedFic {
    /// The identity it is on.
    pub identity: SeedIdentityRef,
    /// Its name.
    pub name: String,
    /// Its subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Or: the subject the platform presents for this component (`host/name`), once the rows are seeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presented_by: Option<String>,
    /// The environment (host) whose id a `subject` names as `{environment}` (`{tenant}` is the seed's tenant,
    /// encoded as subjects write it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// A plug-in package and the assemblies in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedPackage {
    /// Its unique name.
    pub unique_name: String,
    /// The certificate that signed it (a file, or `"example"`); unsigned without.
    #[serde(default)]
    pub certificate: Option<String>,
    /// The assemblies inside it.
    #[serde(default)]
    pub assemblies: Vec<String>,
    /// The `.nupkg` registered for it (a file; or `"signed"`: the built-in test package): its signer is then the
    /// package's author signature, and the platform keeps its bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<String>,
}

/// An identity a seed names, found in it.
enum Named<'a> {
    Application(Uuid),
    UserAssigned(&'a SeedUserAssignedIdentity),
}

/// Why a seed cannot be read or built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// The file cannot be read.
    #[error(transparent)]
    Read(#[from] crate::files::FileError),
    /// The file is not a seed.
    #[error("{path}: not a seed: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, as the parser says it.
        message: String,
    },
    /// No built-in scenario has this name.
    #[error("no scenario named '{name}': the scenarios are {}", SCENARIOS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
    UnknownScenario {
        /// The name given.
        name: String,
    },
    /// Something the seed names is not in it (a component, an identity), or a file it names cannot be read.
    #[error("the seed: {message}")]
    Invalid {
        /// What, in words.
        message: String,
    },
    /// A certificate the seed names cannot be read.
    #[error("the certificate {path}: {source}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::cert::CertificateError,
    },
}

impl Seed {
    /// A seed file: TOML (with the `spec-toml` feature), or JSON when it ends in `.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Seed, SeedError> {
        let path = path.as_ref();
        let text = crate::files::read_bounded_text(path, crate::files::MAX_SPEC_FILE, "seed")?;
        let format = |message: String| SeedError::Format { path: path.to_owned(), message };
        let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let mut seed: Seed = if json {
            serde_json::from_str(&text).map_err(|e| format(e.to_string()))?
        } else {
            Self::from_toml(&text).map_err(format)?
        };
        seed.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(seed)
    }

    #[cfg(feature = "spec-toml")]
    fn from_toml(text: &str) -> Result<Seed, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[cfg(not(feature = "spec-toml"))]
    fn from_toml(_: &str) -> Result<Seed, String> {
        Err("reading TOML needs the crate's `spec-toml` feature; give the seed as .json".into())
    }

    /// A built-in scenario ([`SCENARIOS`]): `contoso`, the world of `examples/specs/contoso.toml` (an app
    /// registration, two environments, an assembly in each and a package in the first); `quickstart`, the world of
    /// `examples/specs/quickstart.toml` and the quickstart example (no identity yet, the tenant's Default
    /// environment and a test environment, a package with an assembly inside).
    pub fn scenario(name: &str) -> Result<Seed, SeedError> {
        let tenant = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
        let example = || Some("example".to_owned());
        let assembly = |name: &str| SeedAssembly { name: name.into(), certificate: example(), registered: None };
        match name {
            "contoso" => Ok(Seed {
                tenant,
                applications: vec![SeedApplication {
                    app_id: Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b),
                    display_name: "Contoso plug-ins".into(),
                }],
                user_assigned_identities: Vec::new(),
                environments: vec![
                    SeedEnvironment {
                        host: "contoso-dev.crm.dynamics.com".into(),
                        default: false,
                        plugin_assemblies: vec![assembly("Contoso.Plugins")],
                        plugin_packages: vec![SeedPackage {
                            unique_name: "contoso_Integrations".into(),
                            certificate: example(),
                            assemblies: Vec::new(),
                            registered: None,
                        }],
                    },
                    SeedEnvironment {
                        host: "contoso-test.crm.dynamics.com".into(),
                        default: false,
                        plugin_assemblies: vec![assembly("Contoso.Plugins")],
                        plugin_packages: Vec::new(),
                    },
                ],
                managed_identities: Vec::new(),
                fics: Vec::new(),
                base_dir: PathBuf::new(),
            }),
            "quickstart" => Ok(Seed {
                tenant,
                applications: Vec::new(),
                user_assigned_identities: Vec::new(),
                environments: vec![
                    SeedEnvironment {
                        host: "contoso.crm.dynamics.com".into(),
                        default: true,
                        plugin_assemblies: vec![assembly("Contoso.Plugins")],
                        plugin_packages: vec![SeedPackage {
                            unique_name: "contoso_Integrations".into(),
                            certificate: example(),
                            assemblies: vec!["Contoso.Integrations".into()],
                            registered: None,
                        }],
                    },
                    SeedEnvironment {
                        host: "contoso-test.crm.dynamics.com".into(),
                        default: false,
                        plugin_assemblies: vec![assembly("Contoso.Plugins")],
                        plugin_packages: Vec::new(),
                    },
                ],
                managed_identities: Vec::new(),
                fics: Vec::new(),
                base_dir: PathBuf::new(),
            }),
            "estate" => Ok(Seed::estate(9)),
            _ => Err(SeedError::UnknownScenario { name: name.to_owned() }),
        }
    }

    /// An estate of `environments` environments with every kind of finding an audit reports, in turn: all well;
    /// a row at version 1; one at version 0; a row a solution import brought (another tenant's, no FIC here); a row
    /// of an application the tenant does not know; an assembly inside a package bound instead of the package; an
    /// unsigned assembly; one signed with a certificate that ends on 2027-01-15; a row bound to nothing. The
    /// environments share app registrations (one per eight); the first one's also has a FIC nothing presents any
    /// more, and a user-assigned identity has 17 of its 20 FICs used. `estate(9)` is the `estate` scenario, whose
    /// environments `examples/specs/estate.toml` lists.
    pub fn estate(environments: usize) -> Seed {
        let tenant = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
        let other_tenant = Uuid::from_u128(0x1d5f3c2b_8a9e_4b7c_9d6e_5f4a3b2c1d0e);
        let app = |group: usize| Uuid::from_u128(0x0e57a7e0_0000_4000_8000_000000000000 + group as u128);
        let labels =
            ["ok", "version-1", "version-0", "import", "unknown-app", "package", "unsigned", "expiring", "unused"];
        let mut seed = Seed {
            tenant,
            applications: Vec::new(),
            user_assigned_identities: vec![SeedUserAssignedIdentity {
                subscription_id: "00000000-0000-0000-0000-00000000e57a".into(),
                resource_group: "rg-estate".into(),
                name: "estate-shared".into(),
            }],
            environments: Vec::new(),
            managed_identities: Vec::new(),
            fics: Vec::new(),
            base_dir: PathBuf::new(),
        };
        for group in 0..environments.div_ceil(8) {
            seed.applications
                .push(SeedApplication { app_id: app(group), display_name: format!("Estate plug-ins {group}") });
        }
        let registered =
            |name: String, dll: &str| SeedAssembly { name, certificate: None, registered: Some(dll.into()) };
        for i in 0..environments {
            let label = labels[i % labels.len()];
            let host = format!("estate-{i:03}-{label}.crm.dynamics.com");
            let identity = SeedIdentityRef { application: Some(app(i / 8)), user_assigned: None };
            let name = format!("Estate.Plugins{i}");
            let mut env = SeedEnvironment {
                host: host.clone(),
                default: false,
                plugin_assemblies: Vec::new(),
                plugin_packages: Vec::new(),
            };
            let mut row = SeedRow {
                host: host.clone(),
                identity: identity.clone(),
                tenant: None,
                version: Some(2),
                bound: vec![name.clone()],
            };
            let mut presented = true;
            match label {
                "version-1" => row.version = Some(1),
                "version-0" => {
                    row.version = None;
                    presented = false;
                }
                "import" => {
                    row.tenant = Some(other_tenant);
                    presented = false;
                }
                "unknown-app" => {
                    row.identity = SeedIdentityRef {
                        application: Some(Uuid::from_u128(0xdead0000_0000_4000_8000_000000000000 + i as u128)),
                        user_assigned: None,
                    };
                    presented = false;
                }
                "package" => {
                    env.plugin_packages.push(SeedPackage {
                        unique_name: format!("estate_Package{i}"),
                        certificate: None,
                        assemblies: vec![name.clone()],
                        registered: Some("signed".into()),
                    });
                    presented = false;
                }
                "unsigned" => presented = false,
                "unused" => {
                    // The user-assigned identity's row, bound to nothing.
                    row.identity = SeedIdentityRef { application: None, user_assigned: Some("estate-shared".into()) };
                    row.bound.clear();
                    presented = false;
                }
                _ => {}
            }
            let dll = match label {
                "unsigned" => Some("unsigned"),
                "expiring" => Some("renewed"),
                "package" | "unused" => None,
                _ => Some("signed"),
            };
            if let Some(dll) = dll {
                env.plugin_assemblies.push(registered(name.clone(), dll));
            } else if label == "unused" {
                env.plugin_assemblies.push(SeedAssembly {
                    name: name.clone(),
                    certificate: Some("example".into()),
                    registered: None,
                });
            }
            if presented {
                seed.fics.push(SeedFic {
                    identity: identity.clone(),
                    name: format!("estate-{i:03}"),
                    subject: None,
                    presented_by: Some(format!("{host}/{name}")),
                    environment: None,
                });
            }
            if i == 0 {
                // A FIC of a certificate no plug-in is signed with any more.
                seed.fics.push(SeedFic {
                    identity,
                    name: "estate-000-retired".into(),
                    subject: Some(format!(
                        "/eid1/c/pub/t/{{tenant}}/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/{{environment}}/h/{}",
                        "0".repeat(64)
                    )),
                    presented_by: None,
                    environment: Some(host.clone()),
                });
            }
            seed.environments.push(env);
            seed.managed_identities.push(row);
        }
        // A user-assigned identity with 17 of its 20 FICs used (for environments this estate does not hold).
        for n in 0..17u128 {
            seed.fics.push(SeedFic {
                identity: SeedIdentityRef { application: None, user_assigned: Some("estate-shared".into()) },
                name: format!("elsewhere-{n:02}"),
                subject: Some(format!(
                    "/eid1/c/pub/t/{{tenant}}/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/{}/h/{}",
                    Uuid::from_u128(0x5a5a0000_0000_4000_8000_000000000000 + n),
                    "ab".repeat(32)
                )),
                presented_by: None,
                environment: None,
            });
        }
        seed
    }

    fn certificate(&self, named: Option<&str>) -> Result<Option<Certificate>, SeedError> {
        let Some(named) = named else { return Ok(None) };
        if named == "example" {
            return Certificate::from_der(EXAMPLE_CERTIFICATE)
                .map(Some)
                .map_err(|source| SeedError::Certificate { path: "example".into(), source });
        }
        let path = self.base_dir.join(named);
        Certificate::from_file(&path)
            .map(|l| Some(l.certificate))
            .map_err(|source| SeedError::Certificate { path, source })
    }

    /// A fake platform in this state. Every certificate is read first: a wrong path fails before anything is made.
    pub fn build(&self, options: FakeOptions) -> Result<FakePlatform, SeedError> {
        let mut environments = Vec::new();
        for e in &self.environments {
            let assemblies = e
                .plugin_assemblies
                .iter()
                .map(|a| Ok((a, self.certificate(a.certificate.as_deref())?)))
                .collect::<Result<Vec<_>, SeedError>>()?;
            let packages = e
                .plugin_packages
                .iter()
                .map(|p| Ok((p, self.certificate(p.certificate.as_deref())?)))
                .collect::<Result<Vec<_>, SeedError>>()?;
            environments.push((e, assemblies, packages));
        }
        // A built-in test file by its name, else a file relative to the seed.
        let registered = |builtin: &[(&str, &[u8])], named: &str| -> Result<Vec<u8>, SeedError> {
            match builtin.iter().find(|(n, _)| *n == named) {
                Some((_, bytes)) => Ok(bytes.to_vec()),
                None => std::fs::read(self.base_dir.join(named))
                    .map_err(|e| SeedError::Invalid { message: format!("the registered file {named}: {e}") }),
            }
        };
        let fake = FakePlatform::new(options);
        for a in &self.applications {
            fake.add_application(a.app_id, &a.display_name);
        }
        for u in &self.user_assigned_identities {
            fake.add_user_assigned_identity(&u.subscription_id, &u.resource_group, &u.name, self.tenant);
        }
        for (e, assemblies, packages) in environments {
            if e.default {
                fake.add_default_environment(&e.host, self.tenant);
            } else {
                fake.add_environment(&e.host, self.tenant);
            }
            for (a, certificate) in assemblies {
                match &a.registered {
                    Some(named) => {
                        fake.add_registered_assembly(&e.host, &a.name, &registered(REGISTERED_ASSEMBLIES, named)?);
                    }
                    None => {
                        fake.add_plugin_assembly(&e.host, &a.name, certificate);
                    }
                }
            }
            for (p, certificate) in packages {
                let package = match &p.registered {
                    Some(named) => {
                        fake.add_registered_package(&e.host, &p.unique_name, &registered(REGISTERED_PACKAGES, named)?)
                    }
                    None => fake.add_plugin_package(&e.host, &p.unique_name, certificate),
                };
                for inside in &p.assemblies {
                    fake.add_packaged_assembly(&e.host, package, inside);
                }
            }
        }
        self.seed_rows_and_fics(&fake)?;
        Ok(fake)
    }

    /// The identity a seeded row or FIC names: an application, or one of the seed's user-assigned identities.
    fn identity(&self, identity: &SeedIdentityRef) -> Result<Named<'_>, SeedError> {
        match (identity.application, &identity.user_assigned) {
            (Some(app), None) => Ok(Named::Application(app)),
            (None, Some(name)) => self
                .user_assigned_identities
                .iter()
                .find(|u| u.name == *name)
                .map(Named::UserAssigned)
                .ok_or_else(|| SeedError::Invalid { message: format!("no user-assigned identity named {name}") }),
            _ => Err(SeedError::Invalid {
                message: "an identity is `application` or `user_assigned`, one of them".into(),
            }),
        }
    }

    /// The client id a seeded row names (a user-assigned identity's, once the fake has made it).
    fn client_id(&self, fake: &FakePlatform, identity: &SeedIdentityRef) -> Result<Uuid, SeedError> {
        match self.identity(identity)? {
            Named::Application(app) => Ok(app),
            Named::UserAssigned(u) => fake
                .user_assigned_identity(&u.subscription_id, &u.resource_group, &u.name)
                .map(|(client_id, _)| client_id)
                .ok_or_else(|| SeedError::Invalid { message: format!("no user-assigned identity named {}", u.name) }),
        }
    }

    fn seed_rows_and_fics(&self, fake: &FakePlatform) -> Result<(), SeedError> {
        use crate::entities::{CredentialSource, ManagedIdentity, SubjectScope};
        for (i, r) in self.managed_identities.iter().enumerate() {
            let application = self.client_id(fake, &r.identity)?;
            let id = Uuid::new_v5(&self.tenant, format!("seeded row {}|{i}", r.host).as_bytes());
            fake.seed_managed_identity(
                &r.host,
                ManagedIdentity {
                    id,
                    name: Some(format!("seeded row {i}")),
                    application_id: Some(application),
                    tenant_id: Some(r.tenant.unwrap_or(self.tenant)),
                    credential_source: Some(CredentialSource::IsManaged),
                    subject_scope: Some(SubjectScope::EnvironmentScope),
                    version: r.version,
                    identity_type: None,
                    state_code: Some(0),
                    component_state: Some(0),
                    is_managed: Some(false),
                    extra: serde_json::Map::new(),
                },
            );
            for name in &r.bound {
                let component = fake.component_named(&r.host, name).ok_or_else(|| SeedError::Invalid {
                    message: format!("no component named {name} in {}", r.host),
                })?;
                fake.seed_binding(&r.host, component, Some(id));
            }
        }
        let cloud = crate::cloud::CloudProfile::from(crate::cloud::Cloud::Public);
        for f in &self.fics {
            let subject = match (&f.subject, &f.presented_by) {
                (Some(subject), None) => {
                    let mut subject = subject.replace("{tenant}", &crate::guid::encode_guid(self.tenant));
                    if subject.contains("{environment}") {
                        let environment =
                            f.environment.as_deref().and_then(|host| fake.environment_id(host)).ok_or_else(|| {
                                SeedError::Invalid {
                                    message: format!(
                                        "the FIC {} names {{environment}}: give an `environment` of the seed",
                                        f.name
                                    ),
                                }
                            })?;
                        subject = subject.replace("{environment}", &environment.to_string());
                    }
                    subject
                }
                (None, Some(at)) => {
                    let (host, name) = at.split_once('/').ok_or_else(|| SeedError::Invalid {
                        message: format!("presented_by is host/name, not {at}"),
                    })?;
                    let component = fake.component_named(host, name).ok_or_else(|| SeedError::Invalid {
                        message: format!("no component named {name} in {host}"),
                    })?;
                    fake.presented_subject(host, component).map_err(|why| SeedError::Invalid {
                        message: format!("the platform presents no subject for {at}: {why}"),
                    })?
                }
                _ => {
                    return Err(SeedError::Invalid {
                        message: format!("the FIC {} has a `subject` or a `presented_by`, one of them", f.name),
                    });
                }
            };
            let fic = crate::fic::FederatedIdentityCredential {
                name: f.name.clone(),
                issuer: cloud.fic_issuer(self.tenant),
                subject,
                audiences: vec![cloud.audience.clone()],
                description: None,
            };
            match self.identity(&f.identity)? {
                Named::Application(app) => fake.seed_graph_fic(app, fic),
                Named::UserAssigned(u) => fake.seed_uami_fic(&u.subscription_id, &u.resource_group, &u.name, fic),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_builds_and_an_unknown_one_is_named() {
        for (name, _) in SCENARIOS {
            let fake = Seed::scenario(name).and_then(|s| s.build(FakeOptions::default()));
            assert!(fake.is_ok(), "{name}: {:?}", fake.err());
        }
        let err = Seed::scenario("nope").unwrap_err();
        assert_eq!(err.to_string(), "no scenario named 'nope': the scenarios are contoso, quickstart, estate");
    }

    #[test]
    fn a_seed_file_in_json_with_its_certificates_relative_to_it() {
        let dir = std::env::temp_dir().join(format!("dataverse-mi-seed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("signing.cer"), EXAMPLE_CERTIFICATE).unwrap();
        let text = serde_json::json!({
            "tenant": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "applications": [{"app_id": "0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b", "display_name": "Contoso plug-ins"}],
            "environments": [{"host": "contoso.crm.dynamics.com",
                              "plugin_assemblies": [{"name": "A", "certificate": "signing.cer"}, {"name": "B"}]}],
        });
        std::fs::write(dir.join("seed.json"), text.to_string()).unwrap();
        let seed = Seed::from_file(dir.join("seed.json")).unwrap();
        let fake = seed.build(FakeOptions::default()).unwrap();
        assert_eq!(fake.applications_named("Contoso plug-ins").len(), 1);
        // A certificate that is not there fails before anything is made, naming the file.
        std::fs::write(dir.join("bad.json"), text.to_string().replace("signing.cer", "missing.cer")).unwrap();
        let err = Seed::from_file(dir.join("bad.json")).unwrap().build(FakeOptions::default()).unwrap_err();
        assert!(matches!(err, SeedError::Certificate { .. }) && err.to_string().contains("missing.cer"), "{err}");
        // An unknown field is an error, not ignored.
        std::fs::write(dir.join("typo.json"), text.to_string().replace("plugin_assemblies", "plugin_assembly"))
            .unwrap();
        assert!(matches!(Seed::from_file(dir.join("typo.json")), Err(SeedError::Format { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
