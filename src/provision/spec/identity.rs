//! Which identity a spec provisions for: an app registration or a user-assigned identity, found or created.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::SpecError;

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

    pub(super) fn check(&self) -> Result<(), SpecError> {
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
