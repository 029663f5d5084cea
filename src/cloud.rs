//! The clouds Power Platform runs in, and the three values of each that a FIC depends on.
//!
//! | cloud | audience | login host | subject prefix |
//! |---|---|---|---|
//! | [`Cloud::Public`] (also GCC and GCC first release) | `api://AzureADTokenExchange` | `https://login.microsoftonline.com` | `/eid1/c/pub` |
//! | [`Cloud::UsGov`] (GCC High and DoD) | `api://AzureADTokenExchangeUSGov` | `https://login.microsoftonline.us` | `/eid1/c/usg` |
//! | [`Cloud::China`] (21Vianet, "Mooncake") | `api://AzureADTokenExchangeChina` | `https://login.partner.microsoftonline.cn` | `/eid1/c/chn` |
//! | [`Cloud::UsNat`] | `api://AzureADTokenExchangeUSNat` | `https://login.microsoftonline.eaglex.ic.gov` | `/eid1/c/uss` |
//! | [`Cloud::UsSec`] | `api://AzureADTokenExchangeUSSec` | `https://login.microsoftonline.scloud` | `/eid1/c/usn` |
//!
//! The values follow Microsoft's documentation ("Set up managed identity for Power Platform", versions 1
//! and 2). Two of them look doubtful and are kept as documented: both pages give USNat the code `uss`
//! and USSec `usn` (which reads swapped), and other Microsoft code uses
//! `https://login.microsoftonline.microsoft.scloud` for USSec. Where your cloud disagrees, override the
//! value: every field of [`CloudProfile`] is public.
//!
//! Each cloud also has its Microsoft Graph and Azure Resource Manager endpoints (the token scope of each client
//! is its endpoint's origin and `/.default`):
//!
//! | cloud | Graph | ARM |
//! |---|---|---|
//! | public | `https://graph.microsoft.com` | `https://management.azure.com` |
//! | usgov | `https://graph.microsoft.us` (DoD: `https://dod-graph.microsoft.us`) | `https://management.usgovcloudapi.net` |
//! | china | `https://microsoftgraph.chinacloudapi.cn` | `https://management.chinacloudapi.cn` |
//! | usnat | `https://graph.eaglex.ic.gov` | `https://management.azure.eaglex.ic.gov` |
//! | ussec | `https://graph.microsoft.scloud` | `https://management.azure.microsoft.scloud` |
//!
//! ```
//! use dataverse_mi::cloud::{Cloud, CloudProfile};
//! use uuid::Uuid;
//!
//! let cloud: Cloud = "GCCHigh".parse()?;
//! assert_eq!(cloud, Cloud::UsGov);
//! let mut profile = CloudProfile::from(cloud);
//! assert_eq!(profile.audience, "api://AzureADTokenExchangeUSGov");
//! let tenant = Uuid::parse_str("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
//! assert_eq!(
//!     profile.fic_issuer(tenant),
//!     "https://login.microsoftonline.us/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
//! );
//! // Overriding one value keeps the others.
//! profile.login_host = "https://login.example.test".into();
//! assert_eq!(profile.subject_prefix, "/eid1/c/usg");
//! # Ok::<(), dataverse_mi::cloud::UnknownCloud>(())
//! ```
//!
//! Its files import `guid`: the floors below it (`tests/architecture.rs` checks that no import runs up a
//! floor and that no files import each other in a circle).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One of the five clouds of Power Platform managed identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Cloud {
    /// Public cloud, GCC, and GCC first release.
    #[default]
    Public,
    /// US Government: GCC High and DoD.
    UsGov,
    /// China, operated by 21Vianet ("Mooncake").
    China,
    /// US National (USNat).
    UsNat,
    /// US Secure (USSec).
    UsSec,
}

/// The names [`Cloud::from_str`] accepts, case-insensitively.
pub const CLOUD_NAMES: &[(&str, Cloud)] = &[
    ("public", Cloud::Public),
    ("gcc", Cloud::Public),
    ("commercial", Cloud::Public),
    ("usgov", Cloud::UsGov),
    ("gcchigh", Cloud::UsGov),
    ("gcc-high", Cloud::UsGov),
    ("dod", Cloud::UsGov),
    ("china", Cloud::China),
    ("mooncake", Cloud::China),
    ("usnat", Cloud::UsNat),
    ("ussec", Cloud::UsSec),
];

impl Cloud {
    /// Every cloud, in the order of the table above.
    pub const ALL: [Cloud; 5] = [Cloud::Public, Cloud::UsGov, Cloud::China, Cloud::UsNat, Cloud::UsSec];

    /// The canonical short name (`public`, `usgov`, `china`, `usnat`, `ussec`).
    pub fn name(self) -> &'static str {
        match self {
            Cloud::Public => "public",
            Cloud::UsGov => "usgov",
            Cloud::China => "china",
            Cloud::UsNat => "usnat",
            Cloud::UsSec => "ussec",
        }
    }

    /// The FIC audience (compared case-sensitively by Entra).
    pub fn audience(self) -> &'static str {
        match self {
            Cloud::Public => "api://AzureADTokenExchange",
            Cloud::UsGov => "api://AzureADTokenExchangeUSGov",
            Cloud::China => "api://AzureADTokenExchangeChina",
            Cloud::UsNat => "api://AzureADTokenExchangeUSNat",
            Cloud::UsSec => "api://AzureADTokenExchangeUSSec",
        }
    }

    /// The host suffixes of this cloud's Dataverse environments (e.g. `.dynamics.com`; GCC High's
    /// `.microsoftdynamics.us` and DoD's `.appsplatform.us` for [`Cloud::UsGov`]).
    pub fn dataverse_host_suffixes(self) -> &'static [&'static str] {
        match self {
            Cloud::Public => &[".dynamics.com", ".microsoftdynamics.de"],
            Cloud::UsGov => &[".dynamics.us", ".microsoftdynamics.us", ".appsplatform.us"],
            Cloud::China => &[".dynamics.cn"],
            Cloud::UsNat => &[".dynamics.eaglex.ic.gov"],
            Cloud::UsSec => &[".microsoftdynamics.scloud"],
        }
    }

    /// The Global Discovery Service of the cloud (Learn, "Discover user organizations"), where the page names
    /// one: Commercial for [`Cloud::Public`] (GCC's is `https://globaldisco.crm9.dynamics.com`), GCC High for
    /// [`Cloud::UsGov`] (DoD's is `https://globaldisco.crm.appsplatform.us`), China. `None` for the clouds the page
    /// does not list; a spec gives `discovery_url` then.
    pub fn global_discovery_url(self) -> Option<&'static str> {
        match self {
            Cloud::Public => Some("https://globaldisco.crm.dynamics.com"),
            Cloud::UsGov => Some("https://globaldisco.crm.microsoftdynamics.us"),
            Cloud::China => Some("https://globaldisco.crm.dynamics.cn"),
            Cloud::UsNat | Cloud::UsSec => None,
        }
    }

    /// The Entra login host, with scheme and no trailing slash.
    pub fn login_host(self) -> &'static str {
        match self {
            Cloud::Public => "https://login.microsoftonline.com",
            Cloud::UsGov => "https://login.microsoftonline.us",
            Cloud::China => "https://login.partner.microsoftonline.cn",
            Cloud::UsNat => "https://login.microsoftonline.eaglex.ic.gov",
            Cloud::UsSec => "https://login.microsoftonline.scloud",
        }
    }

    /// The Microsoft Graph endpoint (for GCC High; DoD uses `https://dod-graph.microsoft.us`: override it).
    pub fn graph_endpoint(self) -> &'static str {
        match self {
            Cloud::Public => "https://graph.microsoft.com",
            Cloud::UsGov => "https://graph.microsoft.us",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
            Cloud::UsNat => "https://graph.eaglex.ic.gov",
            Cloud::UsSec => "https://graph.microsoft.scloud",
        }
    }

    /// The Azure Resource Manager endpoint.
    pub fn arm_endpoint(self) -> &'static str {
        match self {
            Cloud::Public => "https://management.azure.com",
            Cloud::UsGov => "https://management.usgovcloudapi.net",
            Cloud::China => "https://management.chinacloudapi.cn",
            Cloud::UsNat => "https://management.azure.eaglex.ic.gov",
            Cloud::UsSec => "https://management.azure.microsoft.scloud",
        }
    }

    /// The cloud code in the subject identifier (`pub`, `usg`, `chn`, `uss`, `usn`).
    pub fn subject_code(self) -> &'static str {
        match self {
            Cloud::Public => "pub",
            Cloud::UsGov => "usg",
            Cloud::China => "chn",
            Cloud::UsNat => "uss",
            Cloud::UsSec => "usn",
        }
    }

    /// The subject prefix: `/eid1/c/` and the cloud code.
    pub fn subject_prefix(self) -> &'static str {
        match self {
            Cloud::Public => "/eid1/c/pub",
            Cloud::UsGov => "/eid1/c/usg",
            Cloud::China => "/eid1/c/chn",
            Cloud::UsNat => "/eid1/c/uss",
            Cloud::UsSec => "/eid1/c/usn",
        }
    }

    /// The cloud whose subject code is `code` (`pub`, `usg`, ...), if any.
    pub fn from_subject_code(code: &str) -> Option<Cloud> {
        Cloud::ALL.into_iter().find(|c| c.subject_code() == code)
    }

    /// The cloud whose audience is exactly `audience`, if any.
    pub fn from_audience(audience: &str) -> Option<Cloud> {
        Cloud::ALL.into_iter().find(|c| c.audience() == audience)
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A cloud name that [`Cloud::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown cloud '{given}': use one of public, gcc, usgov, gcchigh, dod, china, mooncake, usnat, ussec (case does not matter)"
)]
pub struct UnknownCloud {
    /// What was given.
    pub given: String,
}

impl FromStr for Cloud {
    type Err = UnknownCloud;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        CLOUD_NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, cloud)| *cloud)
            .ok_or_else(|| UnknownCloud { given: crate::guid::clip(s) })
    }
}

/// The values of one cloud that the crate uses, each overridable.
///
/// Build it from a [`Cloud`] and change any field: the FIC issuer, audience and subject prefix are all taken
/// from here, never from the enum directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudProfile {
    /// The cloud these values started from.
    pub cloud: Cloud,
    /// The FIC audience.
    pub audience: String,
    /// The login host, with scheme, without trailing slash; the FIC issuer is `{login_host}/{tenant}/v2.0`.
    pub login_host: String,
    /// The subject prefix, e.g. `/eid1/c/pub`.
    pub subject_prefix: String,
    /// The `/a/` segment of subjects: [`POWER_PLATFORM_MI_APP_SEGMENT`](crate::guid::POWER_PLATFORM_MI_APP_SEGMENT)
    /// in every customer cloud. Microsoft's own scripts use other values for its internal clusters
    /// ([`PREPROD_APP_SEGMENT`](crate::guid::PREPROD_APP_SEGMENT), [`TEST_APP_SEGMENT`](crate::guid::TEST_APP_SEGMENT));
    /// override it only for those.
    pub app_segment: String,
    /// The Microsoft Graph endpoint, without `/v1.0`.
    pub graph_endpoint: String,
    /// The Azure Resource Manager endpoint.
    pub arm_endpoint: String,
}

impl From<Cloud> for CloudProfile {
    fn from(cloud: Cloud) -> Self {
        CloudProfile {
            cloud,
            audience: cloud.audience().to_owned(),
            login_host: cloud.login_host().to_owned(),
            subject_prefix: cloud.subject_prefix().to_owned(),
            app_segment: crate::guid::POWER_PLATFORM_MI_APP_SEGMENT.to_owned(),
            graph_endpoint: cloud.graph_endpoint().to_owned(),
            arm_endpoint: cloud.arm_endpoint().to_owned(),
        }
    }
}

impl Default for CloudProfile {
    fn default() -> Self {
        Cloud::Public.into()
    }
}

impl CloudProfile {
    /// The FIC issuer for a tenant: `{login_host}/{tenant}/v2.0`, the tenant lowercase and hyphenated.
    pub fn fic_issuer(&self, tenant: Uuid) -> String {
        format!("{}/{}/v2.0", self.login_host.trim_end_matches('/'), tenant.hyphenated())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_name_parses() {
        for (name, cloud) in CLOUD_NAMES {
            assert_eq!(name.parse::<Cloud>().unwrap(), *cloud);
            assert_eq!(name.to_uppercase().parse::<Cloud>().unwrap(), *cloud);
        }
        assert_eq!("MoonCake".parse::<Cloud>().unwrap(), Cloud::China);
        assert_eq!("DoD".parse::<Cloud>().unwrap(), Cloud::UsGov);
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let err = "azure-germany".parse::<Cloud>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("azure-germany"), "{msg}");
        for name in ["public", "gcc", "usgov", "gcchigh", "dod", "china", "mooncake", "usnat", "ussec"] {
            assert!(msg.contains(name), "{msg} lacks {name}");
        }
        assert!("".parse::<Cloud>().is_err());
    }

    #[test]
    fn table_matches_the_documentation() {
        let rows = [
            (Cloud::Public, "api://AzureADTokenExchange", "https://login.microsoftonline.com", "/eid1/c/pub"),
            (Cloud::UsGov, "api://AzureADTokenExchangeUSGov", "https://login.microsoftonline.us", "/eid1/c/usg"),
            (
                Cloud::China,
                "api://AzureADTokenExchangeChina",
                "https://login.partner.microsoftonline.cn",
                "/eid1/c/chn",
            ),
            (
                Cloud::UsNat,
                "api://AzureADTokenExchangeUSNat",
                "https://login.microsoftonline.eaglex.ic.gov",
                "/eid1/c/uss",
            ),
            (Cloud::UsSec, "api://AzureADTokenExchangeUSSec", "https://login.microsoftonline.scloud", "/eid1/c/usn"),
        ];
        for (cloud, aud, host, prefix) in rows {
            let p = CloudProfile::from(cloud);
            assert_eq!(p.audience, aud);
            assert_eq!(p.login_host, host);
            assert_eq!(p.subject_prefix, prefix);
            assert_eq!(format!("/eid1/c/{}", cloud.subject_code()), prefix);
            assert_eq!(Cloud::from_subject_code(cloud.subject_code()), Some(cloud));
            assert_eq!(Cloud::from_audience(aud), Some(cloud));
            assert_eq!(cloud.name().parse::<Cloud>().unwrap(), cloud);
        }
    }

    #[test]
    fn issuer_is_v2_with_lowercase_tenant() {
        let t = Uuid::parse_str("5F8A1A9F-2E1A-415F-B10C-84C3736A21B9").unwrap();
        // The example in Microsoft's page.
        assert_eq!(
            CloudProfile::from(Cloud::Public).fic_issuer(t),
            "https://login.microsoftonline.com/5f8a1a9f-2e1a-415f-b10c-84c3736a21b9/v2.0"
        );
        let mut p = CloudProfile::from(Cloud::Public);
        p.login_host = "https://login.example.test/".into();
        assert_eq!(p.fic_issuer(t), "https://login.example.test/5f8a1a9f-2e1a-415f-b10c-84c3736a21b9/v2.0");
    }
}
