//! The `pluginassembly` and `pluginpackage` tables.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::choice;

choice! {
    /// `isolationmode` of a plug-in assembly.
    #[non_exhaustive]
    IsolationMode {
        /// 1: no isolation.
        None = 1 => "None",
        /// 2: the sandbox (all online plug-ins).
        Sandbox = 2 => "Sandbox",
        /// 3: external.
        External = 3 => "External",
    }
}

/// A `pluginassembly` row as read from the Web API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginAssembly {
    /// `pluginassemblyid`.
    #[serde(rename = "pluginassemblyid")]
    pub id: Uuid,
    /// `name`: the assembly name.
    #[serde(default)]
    pub name: Option<String>,
    /// `version`.
    #[serde(default)]
    pub version: Option<String>,
    /// `culture`.
    #[serde(default)]
    pub culture: Option<String>,
    /// `publickeytoken`.
    #[serde(rename = "publickeytoken", default)]
    pub public_key_token: Option<String>,
    /// `isolationmode`.
    #[serde(rename = "isolationmode", default)]
    pub isolation_mode: Option<IsolationMode>,
    /// `sourcetype`: where the assembly is stored (0 database, 1 disk, 2 normal, and newer values).
    #[serde(rename = "sourcetype", default)]
    pub source_type: Option<i32>,
    /// `_packageid_value`: the plug-in package the assembly belongs to, if any.
    #[serde(rename = "_packageid_value", default)]
    pub package_id: Option<Uuid>,
    /// `_managedidentityid_value`: the managed identity it is bound to, if any.
    #[serde(rename = "_managedidentityid_value", default)]
    pub managed_identity_id: Option<Uuid>,
    /// Every other column and annotation, as it came.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A `pluginpackage` row as read from the Web API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginPackage {
    /// `pluginpackageid`.
    #[serde(rename = "pluginpackageid")]
    pub id: Uuid,
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `uniquename`.
    #[serde(rename = "uniquename", default)]
    pub unique_name: Option<String>,
    /// `version`.
    #[serde(default)]
    pub version: Option<String>,
    /// `_managedidentityid_value`: the managed identity it is bound to, if any.
    #[serde(rename = "_managedidentityid_value", default)]
    pub managed_identity_id: Option<Uuid>,
    /// Every other column and annotation, as it came.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bound_and_unbound_assemblies() {
        let a: PluginAssembly = serde_json::from_value(serde_json::json!({
            "pluginassemblyid": "11111111-1111-1111-1111-111111111111",
            "name": "Contoso.Plugins",
            "version": "1.0.0.0",
            "culture": "neutral",
            "publickeytoken": "abcdef0123456789",
            "isolationmode": 2,
            "sourcetype": 0,
            "_packageid_value": null,
            "_managedidentityid_value": "22222222-2222-2222-2222-222222222222",
            "_managedidentityid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "managedidentity"
        }))
        .unwrap();
        assert_eq!(a.isolation_mode, Some(IsolationMode::Sandbox));
        assert_eq!(a.managed_identity_id, Some(Uuid::from_u128(0x22222222_2222_2222_2222_222222222222)));
        assert_eq!(a.package_id, None);
        assert_eq!(a.extra.len(), 1);

        let p: PluginPackage = serde_json::from_value(serde_json::json!({
            "pluginpackageid": "33333333-3333-3333-3333-333333333333",
            "name": "contoso_Plugins",
            "uniquename": "contoso_Plugins",
            "version": "1.0.0"
        }))
        .unwrap();
        assert_eq!(p.managed_identity_id, None);
        assert_eq!(p.unique_name.as_deref(), Some("contoso_Plugins"));
    }
}
