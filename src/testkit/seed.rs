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
pub const SCENARIOS: &[(&str, &str)] =
    &[("contoso", "examples/specs/contoso.toml"), ("quickstart", "examples/specs/quickstart.toml")];

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
        let assembly = |name: &str| SeedAssembly { name: name.into(), certificate: example() };
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
                        }],
                    },
                    SeedEnvironment {
                        host: "contoso-test.crm.dynamics.com".into(),
                        default: false,
                        plugin_assemblies: vec![assembly("Contoso.Plugins")],
                        plugin_packages: Vec::new(),
                    },
                ],
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
                        }],
                    },
                    SeedEnvironment {
                        host: "contoso-test.crm.dynamics.com".into(),
                        default: false,
                        plugin_assemblies: vec![assembly("Contoso.Plugins")],
                        plugin_packages: Vec::new(),
                    },
                ],
                base_dir: PathBuf::new(),
            }),
            _ => Err(SeedError::UnknownScenario { name: name.to_owned() }),
        }
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
                fake.add_plugin_assembly(&e.host, &a.name, certificate);
            }
            for (p, certificate) in packages {
                let package = fake.add_plugin_package(&e.host, &p.unique_name, certificate);
                for inside in &p.assemblies {
                    fake.add_packaged_assembly(&e.host, package, inside);
                }
            }
        }
        Ok(fake)
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
        assert_eq!(err.to_string(), "no scenario named 'nope': the scenarios are contoso, quickstart");
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
