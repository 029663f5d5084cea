//! Why a spec was refused.

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
