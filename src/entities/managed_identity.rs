//! The `managedidentity` table.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::choice;
use crate::subject::SubjectFormatVersion;

choice! {
    /// `credentialsource`: where the identity's credential comes from. Plug-ins use [`CredentialSource::IsManaged`].
    #[non_exhaustive]
    CredentialSource {
        /// 0: a client secret.
        ClientSecret = 0 => "ClientSecret",
        /// 1: Azure Key Vault.
        KeyVault = 1 => "KeyVault",
        /// 2: managed (federated): what plug-ins use.
        IsManaged = 2 => "IsManaged",
        /// 3: a Microsoft first-party certificate.
        MicrosoftFirstPartyCertificate = 3 => "MicrosoftFirstPartyCertificate",
    }
}

choice! {
    /// `subjectscope`: what the subject is scoped to. Plug-ins use [`SubjectScope::EnvironmentScope`].
    ///
    /// The platform spells the label of value 1 `EnviornmentScope`; that spelling is returned by
    /// [`wire_label`](SubjectScope::wire_label) and accepted by `FromStr`, and nowhere else.
    #[non_exhaustive]
    SubjectScope {
        /// 0: global.
        GlobalScope = 0 => "GlobalScope",
        /// 1: the environment (label `EnviornmentScope` on the wire).
        EnvironmentScope = 1 => "EnviornmentScope",
        /// 2: development only.
        DevOnlyScope = 2 => "DevOnlyScope",
    }
}

impl std::str::FromStr for SubjectScope {
    type Err = RowError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "0" | "globalscope" | "global" => Ok(SubjectScope::GlobalScope),
            "1" | "environmentscope" | "enviornmentscope" | "environment" => Ok(SubjectScope::EnvironmentScope),
            "2" | "devonlyscope" | "devonly" => Ok(SubjectScope::DevOnlyScope),
            _ => Err(RowError::UnknownChoice { column: "subjectscope", given: crate::guid::clip(s) }),
        }
    }
}

/// Why a row cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RowError {
    /// The `name` column is empty or longer than 100 characters.
    #[error("a managed identity's name has 1 to 100 characters; '{name}' has {len}")]
    NameLength {
        /// The name (cut).
        name: String,
        /// Its length.
        len: usize,
    },
    /// A choice label this crate does not know.
    #[error("unknown {column} value '{given}'")]
    UnknownChoice {
        /// The column.
        column: &'static str,
        /// What was given.
        given: String,
    },
}

/// The most characters the `name` column takes.
pub const MAX_MANAGED_IDENTITY_NAME_LEN: usize = 100;

/// The namespace of [`managed_identity_row_id`]'s UUID v5 (itself `uuid5(URL, "https://dataverse-mi/managedidentity")`).
pub const MANAGED_IDENTITY_ID_NAMESPACE: Uuid = Uuid::from_u128(0x4b037f42_7cb5_59a2_84df_b4dfe9a48f2f);

/// The deterministic `managedidentityid` for an app, tenant and environment: UUID v5 over
/// `"{app}|{tenant}|{environment}"` (lowercase, hyphenated; the environment in its canonical form, so a Default
/// environment is `Default-{tenant}`) in [`MANAGED_IDENTITY_ID_NAMESPACE`].
///
/// Creating the row with this client-chosen id makes a second create a duplicate-key error rather than a
/// second row, so re-runs and races are recognised.
pub fn managed_identity_row_id(
    application_id: Uuid,
    tenant_id: Uuid,
    environment_id: impl Into<crate::environment::EnvironmentId>,
) -> Uuid {
    let name = format!("{}|{}|{}", application_id.hyphenated(), tenant_id.hyphenated(), environment_id.into());
    Uuid::new_v5(&MANAGED_IDENTITY_ID_NAMESPACE, name.as_bytes())
}

/// A `managedidentity` row as read from the Web API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedIdentity {
    /// `managedidentityid`.
    #[serde(rename = "managedidentityid")]
    pub id: Uuid,
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `applicationid`: the app registration's or UAMI's client id.
    #[serde(rename = "applicationid", default)]
    pub application_id: Option<Uuid>,
    /// `tenantid`.
    #[serde(rename = "tenantid", default)]
    pub tenant_id: Option<Uuid>,
    /// `credentialsource`.
    #[serde(rename = "credentialsource", default)]
    pub credential_source: Option<CredentialSource>,
    /// `subjectscope`.
    #[serde(rename = "subjectscope", default)]
    pub subject_scope: Option<SubjectScope>,
    /// `version`: `None` is the deprecated version 0, then 1 or 2.
    #[serde(default)]
    pub version: Option<i32>,
    /// `identitytype`.
    #[serde(rename = "identitytype", default)]
    pub identity_type: Option<i32>,
    /// `statecode`.
    #[serde(rename = "statecode", default)]
    pub state_code: Option<i32>,
    /// `componentstate`.
    #[serde(rename = "componentstate", default)]
    pub component_state: Option<i32>,
    /// `ismanaged`: part of a managed solution.
    #[serde(rename = "ismanaged", default)]
    pub is_managed: Option<bool>,
    /// Every other column and annotation, as it came.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ManagedIdentity {
    /// The subject format version the row asks for (`None` for version 0 or an unknown number).
    pub fn subject_format_version(&self) -> Option<SubjectFormatVersion> {
        self.version.and_then(SubjectFormatVersion::from_number)
    }
}

/// The body that creates a `managedidentity` row for plug-ins (`POST /managedidentities`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewManagedIdentity {
    /// `managedidentityid`, chosen by the client.
    #[serde(rename = "managedidentityid")]
    pub id: Uuid,
    /// `name`.
    pub name: String,
    /// `applicationid`.
    #[serde(rename = "applicationid")]
    pub application_id: Uuid,
    /// `tenantid`.
    #[serde(rename = "tenantid")]
    pub tenant_id: Uuid,
    /// `credentialsource`: 2 for plug-ins.
    #[serde(rename = "credentialsource")]
    pub credential_source: CredentialSource,
    /// `subjectscope`: 1 for plug-ins.
    #[serde(rename = "subjectscope")]
    pub subject_scope: SubjectScope,
    /// `version`: 2 for new setups.
    pub version: SubjectFormatVersion,
}

impl NewManagedIdentity {
    /// The row plug-ins need, with the deterministic id and a descriptive name.
    ///
    /// ```
    /// # use dataverse_mi::entities::NewManagedIdentity;
    /// # use dataverse_mi::subject::SubjectFormatVersion;
    /// # use uuid::Uuid;
    /// let row = NewManagedIdentity::for_plugins(Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3), SubjectFormatVersion::V2);
    /// let json = serde_json::to_value(&row).unwrap();
    /// assert_eq!(json["credentialsource"], 2);
    /// assert_eq!(json["subjectscope"], 1);
    /// assert_eq!(json["version"], 2);
    /// ```
    pub fn for_plugins(
        application_id: Uuid,
        tenant_id: Uuid,
        environment_id: impl Into<crate::environment::EnvironmentId>,
        version: SubjectFormatVersion,
    ) -> Self {
        NewManagedIdentity {
            id: managed_identity_row_id(application_id, tenant_id, environment_id),
            name: format!("dataverse-mi {}", application_id.hyphenated()),
            application_id,
            tenant_id,
            credential_source: CredentialSource::IsManaged,
            subject_scope: SubjectScope::EnvironmentScope,
            version,
        }
    }

    /// Replaces the name, checking the column's limit.
    pub fn with_name(mut self, name: impl Into<String>) -> Result<Self, RowError> {
        let name = name.into();
        let len = name.chars().count();
        if len == 0 || len > MAX_MANAGED_IDENTITY_NAME_LEN {
            return Err(RowError::NameLength { name: crate::guid::clip(&name), len });
        }
        self.name = name;
        Ok(self)
    }
}

/// The body that binds a plug-in assembly or package to a managed identity, or unbinds it
/// (`PATCH /pluginassemblies({id})` or `/pluginpackages({id})`).
///
/// ```
/// # use dataverse_mi::entities::ManagedIdentityBinding;
/// # use uuid::Uuid;
/// let bind = ManagedIdentityBinding::bind(Uuid::from_u128(1));
/// assert_eq!(
///     serde_json::to_string(&bind).unwrap(),
///     r#"{"managedidentityid@odata.bind":"/managedidentities(00000000-0000-0000-0000-000000000001)"}"#
/// );
/// assert_eq!(
///     serde_json::to_string(&ManagedIdentityBinding::unbind()).unwrap(),
///     r#"{"managedidentityid@odata.bind":null}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedIdentityBinding {
    /// `/managedidentities({id})`, or `None` to unbind.
    #[serde(rename = "managedidentityid@odata.bind")]
    pub target: Option<String>,
}

impl ManagedIdentityBinding {
    /// Binds to the managed identity row `id`.
    pub fn bind(managed_identity_id: Uuid) -> Self {
        ManagedIdentityBinding { target: Some(format!("/managedidentities({})", managed_identity_id.hyphenated())) }
    }

    /// Removes the binding.
    pub fn unbind() -> Self {
        ManagedIdentityBinding { target: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_what_the_docs_say() {
        assert_eq!(
            MANAGED_IDENTITY_ID_NAMESPACE,
            Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://dataverse-mi/managedidentity")
        );
    }

    #[test]
    fn row_id_is_deterministic_and_v5() {
        let (a, t, e) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let id = managed_identity_row_id(a, t, e);
        assert_eq!(id, managed_identity_row_id(a, t, e));
        assert_eq!(id.get_version_num(), 5);
        assert_ne!(id, managed_identity_row_id(a, t, Uuid::from_u128(4)));
        assert_ne!(id, managed_identity_row_id(t, a, e));
    }

    #[test]
    fn choices_round_trip_and_keep_unknowns() {
        for v in -1..6 {
            assert_eq!(CredentialSource::from_value(v).value(), v);
            assert_eq!(SubjectScope::from_value(v).value(), v);
        }
        assert_eq!(SubjectScope::EnvironmentScope.wire_label(), Some("EnviornmentScope"));
        assert_eq!("EnviornmentScope".parse::<SubjectScope>().unwrap(), SubjectScope::EnvironmentScope);
        assert_eq!("EnvironmentScope".parse::<SubjectScope>().unwrap(), SubjectScope::EnvironmentScope);
        assert!("Galaxy".parse::<SubjectScope>().is_err());
        let s: SubjectScope = serde_json::from_str("7").unwrap();
        assert_eq!(s, SubjectScope::Other(7));
        assert_eq!(serde_json::to_string(&s).unwrap(), "7");
    }

    #[test]
    fn create_body_is_exact() {
        let row = NewManagedIdentity::for_plugins(
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(3),
            SubjectFormatVersion::V2,
        );
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "managedidentityid": row.id.to_string(),
                "name": "dataverse-mi 00000000-0000-0000-0000-000000000001",
                "applicationid": "00000000-0000-0000-0000-000000000001",
                "tenantid": "00000000-0000-0000-0000-000000000002",
                "credentialsource": 2,
                "subjectscope": 1,
                "version": 2
            })
        );
        assert!(row.clone().with_name("x".repeat(100)).is_ok());
        assert!(matches!(row.clone().with_name("x".repeat(101)), Err(RowError::NameLength { len: 101, .. })));
        assert!(matches!(row.with_name(""), Err(RowError::NameLength { len: 0, .. })));
    }

    #[test]
    fn reads_a_row_with_annotations() {
        let row: ManagedIdentity = serde_json::from_value(serde_json::json!({
            "@odata.etag": "W/\"123\"",
            "managedidentityid": "0d1f3d4e-0000-0000-0000-000000000001",
            "name": "mi",
            "applicationid": "00000000-0000-0000-0000-000000000001",
            "tenantid": "00000000-0000-0000-0000-000000000002",
            "credentialsource": 2,
            "subjectscope": 1,
            "subjectscope@OData.Community.Display.V1.FormattedValue": "EnviornmentScope",
            "version": null,
            "ismanaged": false
        }))
        .unwrap();
        assert_eq!(row.subject_scope, Some(SubjectScope::EnvironmentScope));
        assert_eq!(row.version, None);
        assert_eq!(row.subject_format_version(), None);
        assert_eq!(row.extra["@odata.etag"], "W/\"123\"");
        assert_eq!(row.extra["subjectscope@OData.Community.Display.V1.FormattedValue"], "EnviornmentScope");
        // Nothing is lost on the way back out.
        let back = serde_json::to_value(&row).unwrap();
        assert_eq!(back["@odata.etag"], "W/\"123\"");
    }
}
