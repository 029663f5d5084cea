//! The platform's rules the handlers and the seeding methods share: the subject the platform presents for a
//! component, Graph's and ARM's FIC rules, role definitions, and the JSON shapes of ARM's answers.

use crate::fic::MAX_FICS_PER_IDENTITY;

use uuid::Uuid;

use crate::cloud::CloudProfile;
use crate::fic::FederatedIdentityCredential;
use serde_json::{Value, json};

use super::handlers::{Answer, error};
use super::{Component, Environment, State};
use crate::subject::{CertificateBinding, CertificateKind, SubjectFormatVersion, SubjectIdentifier};

/// The subject the platform presents for a component, with the row's application and tenant ids: the one place
/// the fake decides it, for `GetComponentManagedIdentityFIC` and for token requests alike. An assembly inside a
/// plug-in package uses the package's binding and signature, as the platform does.
pub(super) fn presented_subject(
    s: &State,
    host: &str,
    component: Uuid,
    cloud: &CloudProfile,
) -> Result<(String, Uuid, Uuid), String> {
    let env = s.environments.get(host).ok_or("no such environment")?;
    let c = env.assemblies.get(&component).or_else(|| env.packages.get(&component)).ok_or("no such component")?;
    platform_subject(env, c, cloud)
}

pub(super) fn platform_subject(
    env: &Environment,
    c: &Component,
    cloud: &CloudProfile,
) -> Result<(String, Uuid, Uuid), String> {
    // A packaged assembly's identity and certificate are its package's.
    let (c, package) = match c.package.and_then(|p| Some((p, env.packages.get(&p)?))) {
        Some((id, package)) => (package, Some(id)),
        None => (c, None),
    };
    // The platform's words (field reports, DOMAIN.md "Other failures users meet after the FIC is right").
    let row = c.binding.and_then(|mi| env.managed_identities.get(&mi)).ok_or_else(|| match package {
        Some(id) => format!("PluginPackage {id} is not associated to a Managed identity"),
        None => "The plug-in assembly is not associated with a managed identity.".to_owned(),
    })?;
    let ids = (row.application_id.unwrap_or_default(), row.tenant_id.unwrap_or(env.tenant_id));
    if let Some(subject) = &c.presented {
        return Ok((subject.clone(), ids.0, ids.1));
    }
    let version = row
        .version
        .and_then(SubjectFormatVersion::from_number)
        .ok_or("The managed identity has no subject format version.")?;
    let cert = c
        .certificate
        .as_ref()
        .ok_or("Plugin assembly must be signed with a valid certificate to use Managed Identity")?;
    // Version 1 carries the CN values, as the platform writes them.
    let binding =
        CertificateBinding::for_certificate(cert, version, CertificateKind::Auto).map_err(|e| e.to_string())?;
    let subject =
        SubjectIdentifier::new(cloud, env.tenant_id, env.environment_id, binding).map_err(|e| e.to_string())?;
    let mut text = subject.to_string();
    if let Some(segment) = &env.presentation.environment_segment {
        text = text.replacen(&format!("/e/{}/", env.environment_id), &format!("/e/{segment}/"), 1);
    }
    Ok((text, ids.0, ids.1))
}

pub(super) fn fic_problem(
    list: &[&FederatedIdentityCredential],
    fic: &FederatedIdentityCredential,
    replacing: Option<&str>,
) -> Option<Answer> {
    if let Err(e) = fic.validate() {
        return Some(error(400, "Request_BadRequest", &e.to_string()));
    }
    let others: Vec<&&FederatedIdentityCredential> =
        list.iter().filter(|f| Some(f.name.as_str()) != replacing).collect();
    if replacing.is_none() && others.iter().any(|f| f.name == fic.name) {
        return Some(error(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            &format!("FederatedIdentityCredential with name {} already exists.", fic.name),
        ));
    }
    if others.iter().any(|f| f.issuer == fic.issuer && f.subject == fic.subject) {
        return Some(error(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            "A federated identity credential with the same issuer and subject already exists.",
        ));
    }
    if replacing.is_none() && others.len() >= MAX_FICS_PER_IDENTITY {
        return Some(error(
            400,
            "Request_BadRequest",
            "The application has reached the maximum of 20 federated identity credentials.",
        ));
    }
    None
}

pub(super) fn uami_key(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
    .to_ascii_lowercase()
}

/// The built-in roles the fake knows: name and definition GUID (Azure's own).
const ROLES: &[(&str, &str)] = &[
    ("Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6"),
    ("Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"),
    ("Key Vault Crypto User", "12338af0-0e69-4776-bea7-57ae8d297424"),
    ("Storage Blob Data Reader", "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"),
    ("Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"),
    ("Azure Service Bus Data Sender", "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"),
    ("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
    ("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
];

/// A role definition's id as ARM names it at `scope`: under the scope's subscription.
pub(super) fn role_definition_id(scope: &str, role_name: &str) -> Option<String> {
    let (_, guid) = ROLES.iter().find(|(name, _)| *name == role_name)?;
    let subscription = scope.trim_start_matches('/').strip_prefix("subscriptions/").and_then(|r| r.split('/').next());
    Some(match subscription {
        Some(sub) => format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
        None => format!("/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
    })
}

pub(super) fn role_assignment_json(a: &crate::clients::RoleAssignment) -> Value {
    json!({"id": a.id, "name": a.name, "type": "Microsoft.Authorization/roleAssignments",
           "properties": {"roleDefinitionId": a.role_definition_id, "principalId": a.principal_id,
                          "principalType": "ServicePrincipal", "scope": a.scope}})
}

pub(super) fn uami_json(u: &super::Uami) -> Value {
    json!({"id": u.id, "name": u.name, "location": u.location, "tags": u.tags,
           "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
           "properties": {"tenantId": u.tenant_id, "principalId": u.principal_id, "clientId": u.client_id}})
}
