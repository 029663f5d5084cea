//! The deprecated version 0 (preview) issuer and subject, recognised for migration; never produced.

use serde::Serialize;

use crate::cert::Thumbprint;
use crate::environment::EnvironmentId;

/// The deprecated version 0 (preview) issuer, subject and audience. Computed for migration checks only:
/// never create a FIC with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegacyV0 {
    /// `https://{env without hyphens, all but the last 2 characters}.{last 2}.environment.api.powerplatform.com/sts`
    pub issuer: String,
    /// `component:pluginassembly,thumbprint:{SHA-1 upper hex},environment:{environment id}`
    pub subject: String,
    /// `api://azureadtokenexchange` (lowercase, as the preview used it).
    pub audience: String,
}

impl LegacyV0 {
    /// The version 0 audience.
    pub const AUDIENCE: &'static str = "api://azureadtokenexchange";

    /// Computes the version 0 values for an environment and a certificate thumbprint. The issuer host is the
    /// environment id without hyphens, lowercase (`default{tenant}` for a Default environment, as Power Platform's
    /// environment API hosts write it), its last two characters split off.
    pub fn compute(environment_id: impl Into<EnvironmentId>, thumbprint: Thumbprint) -> LegacyV0 {
        let environment_id = environment_id.into();
        let env = environment_id.to_string();
        let simple = environment_id.compact();
        let (head, tail) = simple.split_at(simple.len() - 2);
        LegacyV0 {
            issuer: format!("https://{head}.{tail}.environment.api.powerplatform.com/sts"),
            subject: format!("component:pluginassembly,thumbprint:{thumbprint},environment:{env}"),
            audience: Self::AUDIENCE.to_owned(),
        }
    }

    /// Reads a version 0 subject: `Some((environment, thumbprint))` when `s` is one.
    pub fn parse_subject(s: &str) -> Option<(EnvironmentId, Thumbprint)> {
        let rest = s.strip_prefix("component:pluginassembly,thumbprint:")?;
        let (thumb, env) = rest.split_once(",environment:")?;
        Some((env.parse().ok()?, thumb.parse().ok()?))
    }

    /// Whether an issuer is a version 0 environment issuer.
    pub fn is_v0_issuer(issuer: &str) -> bool {
        issuer.starts_with("https://") && issuer.ends_with(".environment.api.powerplatform.com/sts")
    }
}
