//! Dataverse rows as the Web API sends and takes them: `managedidentity`, `pluginassembly`, `pluginpackage`,
//! `plugintracelog`, and the organization detail of `RetrieveCurrentOrganization`.
//!
//! Column names are the platform's logical names at the serde boundary and Rust names everywhere else.
//! Choice columns are enums with their numeric wire values and an `Other(i32)` for values this crate does
//! not know, so nothing the service sends is lost. Unknown columns and OData annotations are kept in each
//! row's `extra` map.
//!
//! Its files import `guid`, `environment` and `subject`: the floors below it (`tests/architecture.rs` checks that no import runs up a
//! floor and that no files import each other in a circle).

mod managed_identity;
mod organization;
mod plugin;
mod trace;

pub use managed_identity::{
    CredentialSource, MANAGED_IDENTITY_ID_NAMESPACE, MAX_MANAGED_IDENTITY_NAME_LEN, ManagedIdentity,
    ManagedIdentityBinding, NewManagedIdentity, RowError, SubjectScope, managed_identity_row_id,
};
pub use organization::{Endpoints, OrganizationDetail, RetrieveCurrentOrganizationResponse};
pub use plugin::{IsolationMode, PluginAssembly, PluginPackage};
pub use trace::{PluginTraceLog, PluginTraceLogSetting};

/// Declares a choice column: an enum with known numeric values and `Other(i32)`, (de)serialized as the number.
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $label:literal ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this crate does not know, kept as it came.
            Other(i32),
        }

        impl $name {
            /// The number the Web API uses.
            pub fn value(self) -> i32 {
                match self {
                    $( $name::$variant => $value, )*
                    $name::Other(v) => v,
                }
            }

            /// The choice for a number.
            pub fn from_value(v: i32) -> Self {
                match v {
                    $( $value => $name::$variant, )*
                    other => $name::Other(other),
                }
            }

            /// The platform's own label for the value, spelled as the platform spells it.
            pub fn wire_label(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($label), )*
                    $name::Other(_) => None,
                }
            }
        }

        /// The platform's label (`Off`), or the number for a value this crate does not know (`7`).
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self.wire_label() {
                    Some(label) => f.write_str(label),
                    None => write!(f, "{}", self.value()),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i32(self.value())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                i32::deserialize(d).map($name::from_value)
            }
        }
    };
}
pub(crate) use choice;

/// Serde helpers for GUIDs that arrive as strings, possibly empty.
pub(crate) mod guid_string {
    use serde::{Deserialize, Deserializer, Serializer};
    use uuid::Uuid;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => crate::guid::parse_guid(text).map(Some).map_err(serde::de::Error::custom),
        }
    }

    pub(crate) fn serialize<S: Serializer>(v: &Option<Uuid>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(id) => s.collect_str(&id.hyphenated()),
            None => s.serialize_none(),
        }
    }
}
