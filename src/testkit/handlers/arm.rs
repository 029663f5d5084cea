//! Azure Resource Manager as the fake serves it: user-assigned identities, their federated identity credentials,
//! and role definitions and assignments at any scope.

use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Answer, Incoming, error};
use crate::fic::{FederatedIdentityCredential, validate_name};
use crate::testkit::model::{fic_problem, role_assignment_json, role_definition_id, uami_json, uami_key};
use crate::testkit::{State, Uami};

type Handled = Result<Answer, Answer>;

/// The identity's resource id as the path gives it, and the fake's key for it.
fn identity_id(i: &Incoming<'_>) -> (String, String) {
    let (sub, group, name) = (i.param("s"), i.param("g"), i.param("n"));
    (
        format!(
            "/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        ),
        uami_key(sub, group, name),
    )
}

fn uami<'s>(s: &'s mut State, i: &Incoming<'_>) -> Result<&'s mut Uami, Answer> {
    let (id, key) = identity_id(i);
    s.uamis.get_mut(&key).ok_or_else(|| error(404, "ResourceNotFound", &format!("The Resource '{id}' was not found.")))
}

/// `GET` of a user-assigned identity.
pub(in crate::testkit) fn identity(s: &mut State, i: &Incoming<'_>) -> Handled {
    Ok((StatusCode::OK, uami_json(uami(s, i)?)))
}

/// `PUT` of a user-assigned identity: created (201) or its tags replaced (200).
pub(in crate::testkit) fn put_identity(s: &mut State, i: &Incoming<'_>) -> Handled {
    let (id, key) = identity_id(i);
    let location = i
        .body
        .get("location")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| error(400, "LocationRequired", "The location property is required for this definition."))?;
    let tags = i.body.get("tags").cloned().unwrap_or_else(|| json!({}));
    if let Some(u) = s.uamis.get_mut(&key) {
        u.tags = tags;
        return Ok((StatusCode::OK, uami_json(u)));
    }
    let (client_id, principal_id) = (crate::testkit::ids(&mut s.rng), crate::testkit::ids(&mut s.rng));
    let tenant_id = s.environments.values().next().map(|e| e.tenant_id).unwrap_or_default();
    if s.replication_lag > 0 {
        s.unreplicated.insert(principal_id, s.replication_lag);
    }
    let u = Uami {
        id,
        name: i.param("n").to_owned(),
        location: location.to_owned(),
        tags,
        client_id,
        principal_id,
        tenant_id,
        fics: Vec::new(),
        fic_write_until: None,
    };
    let v = uami_json(&u);
    s.uamis.insert(key, u);
    Ok((StatusCode::CREATED, v))
}

/// `DELETE` of a user-assigned identity (its FICs go with it): 200, or 204 when there was none.
pub(in crate::testkit) fn delete_identity(s: &mut State, i: &Incoming<'_>) -> Handled {
    let (_, key) = identity_id(i);
    Ok(match s.uamis.remove(&key) {
        Some(_) => (StatusCode::OK, Value::Null),
        None => (StatusCode::NO_CONTENT, Value::Null),
    })
}

/// A FIC as ARM answers with it, with `systemData.createdAt` when the fake made it.
fn fic_json(s: &State, u: &Uami, f: &FederatedIdentityCredential) -> Value {
    let mut v = json!({"id": format!("{}/federatedIdentityCredentials/{}", u.id, f.name), "name": f.name,
           "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
           "properties": {"issuer": f.issuer, "subject": f.subject, "audiences": f.audiences}});
    if let Some(made) = s.fic_created.get(&(u.client_id, f.name.clone())) {
        let at = humantime::format_rfc3339_millis(*made).to_string();
        v["systemData"] = json!({"createdBy": "fake", "createdByType": "Application", "createdAt": at,
                                 "lastModifiedBy": "fake", "lastModifiedByType": "Application", "lastModifiedAt": at});
    }
    v
}

/// `GET …/federatedIdentityCredentials`.
pub(in crate::testkit) fn fics(s: &mut State, i: &Incoming<'_>) -> Handled {
    let u = uami(s, i)?.clone();
    Ok((StatusCode::OK, json!({"value": u.fics.iter().map(|f| fic_json(s, &u, f)).collect::<Vec<_>>()})))
}

/// `GET …/federatedIdentityCredentials/{name}`.
pub(in crate::testkit) fn fic(s: &mut State, i: &Incoming<'_>) -> Handled {
    let name = i.param("f");
    let u = uami(s, i)?.clone();
    let f = u
        .fics
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| error(404, "NotFound", "The federated identity credential was not found."))?;
    Ok((StatusCode::OK, fic_json(s, &u, f)))
}

/// The identity a FIC write is for, once ARM takes the write: a valid name, and no other FIC write under way on
/// the identity (ARM refuses concurrent ones with its 409, code and message as ARM sends them).
fn fic_write<'s>(s: &'s mut State, i: &Incoming<'_>) -> Result<&'s mut Uami, Answer> {
    let write_time = s.options.latency;
    let (_, key) = identity_id(i);
    let u = uami(s, i)?;
    if validate_name(i.param("f")).is_err() {
        return Err(error(400, "InvalidResourceName", "The resource name is invalid."));
    }
    let now = tokio::time::Instant::now();
    if u.fic_write_until.is_some_and(|until| now < until) {
        return Err(error(
            409,
            crate::clients::CONCURRENT_FIC_WRITES,
            &format!(
                "Too many Federated Identity Credentials are written concurrently for the managed identity '{key}'. Concurrent Federated Identity Credentials writes under the same managed identity are not supported."
            ),
        ));
    }
    u.fic_write_until = Some(now + write_time);
    Ok(u)
}

/// `PUT …/federatedIdentityCredentials/{name}`: created (201) or replaced (200), under Graph's FIC rules.
pub(in crate::testkit) fn put_fic(s: &mut State, i: &Incoming<'_>) -> Handled {
    let name = i.param("f");
    let u = fic_write(s, i)?;
    let props = &i.body["properties"];
    let fic = FederatedIdentityCredential {
        name: name.to_owned(),
        issuer: props["issuer"].as_str().unwrap_or_default().to_owned(),
        subject: props["subject"].as_str().unwrap_or_default().to_owned(),
        audiences: serde_json::from_value(props["audiences"].clone()).unwrap_or_default(),
        description: None,
    };
    let existing = u.fics.iter().position(|f| f.name == name);
    let list: Vec<&FederatedIdentityCredential> = u.fics.iter().collect();
    if let Some(problem) = fic_problem(&list, &fic, existing.map(|_| name)) {
        return Err(problem);
    }
    let status = match existing {
        Some(at) => {
            u.fics[at] = fic.clone();
            StatusCode::OK
        }
        None => {
            u.fics.push(fic.clone());
            StatusCode::CREATED
        }
    };
    let u = u.clone();
    if status == StatusCode::CREATED {
        s.fic_created.insert((u.client_id, name.to_owned()), std::time::SystemTime::now());
    }
    Ok((status, fic_json(s, &u, &fic)))
}

/// `DELETE …/federatedIdentityCredentials/{name}`: 200, or 204 when there was none.
pub(in crate::testkit) fn delete_fic(s: &mut State, i: &Incoming<'_>) -> Handled {
    let name = i.param("f");
    let u = fic_write(s, i)?;
    Ok(match u.fics.iter().position(|f| f.name == name) {
        Some(at) => {
            u.fics.remove(at);
            (StatusCode::OK, Value::Null)
        }
        None => (StatusCode::NO_CONTENT, Value::Null),
    })
}

/// The scope an authorization path is under, as ARM writes it (`/subscriptions/…`).
fn scope(i: &Incoming<'_>) -> String {
    let at = i.path.find("/providers/Microsoft.Authorization/").unwrap_or(i.path.len());
    format!("/{}", i.path[..at].trim_matches('/'))
}

/// `GET {scope}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName eq '…'`.
pub(in crate::testkit) fn role_definitions(_: &mut State, i: &Incoming<'_>) -> Handled {
    let terms = i.filter("InvalidFilter")?.unwrap_or_default();
    let found = terms.iter().find(|(f, _)| f == "roleName").and_then(|(_, name)| {
        let id = role_definition_id(&scope(i), name)?;
        let guid = id.rsplit('/').next().unwrap_or_default().to_owned();
        Some(json!({"id": id, "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
                    "properties": {"roleName": name, "type": "BuiltInRole"}}))
    });
    Ok((StatusCode::OK, json!({"value": found.into_iter().collect::<Vec<_>>()})))
}

/// `GET {scope}/providers/Microsoft.Authorization/roleAssignments`: those at, above and below the scope, by
/// `principalId` with a filter.
pub(in crate::testkit) fn role_assignments(s: &mut State, i: &Incoming<'_>) -> Handled {
    let terms = i.filter("InvalidFilter")?.unwrap_or_default();
    let principal = terms.iter().find(|(f, _)| f == "principalId").and_then(|(_, p)| Uuid::parse_str(p).ok());
    let scope = scope(i).to_ascii_lowercase();
    let related = |other: &str| {
        let other = other.to_ascii_lowercase();
        other.starts_with(&scope) || scope.starts_with(&other)
    };
    let rows: Vec<Value> = s
        .role_assignments
        .iter()
        .filter(|a| principal.is_none_or(|p| a.principal_id == p) && related(&a.scope))
        .map(role_assignment_json)
        .collect();
    Ok((StatusCode::OK, json!({"value": rows})))
}

/// `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{name}`: a principal made under a replication lag
/// is `PrincipalNotFound` until it replicates; the same role for the same principal at the same scope is 409.
pub(in crate::testkit) fn put_role_assignment(s: &mut State, i: &Incoming<'_>) -> Handled {
    let (scope, name) = (scope(i), i.param("id"));
    let props = &i.body["properties"];
    let (Some(role_definition_id), Some(principal_id)) =
        (props["roleDefinitionId"].as_str(), props["principalId"].as_str().and_then(|p| Uuid::parse_str(p).ok()))
    else {
        return Err(error(400, "InvalidRoleAssignmentRequest", "roleDefinitionId and principalId are required."));
    };
    if Uuid::parse_str(name).is_err() {
        return Err(error(400, "InvalidRoleAssignmentId", &format!("The role assignment ID '{name}' is not valid.")));
    }
    let known = s.service_principals.values().any(|p| *p == principal_id)
        || s.uamis.values().any(|u| u.principal_id == principal_id);
    let waiting = s.unreplicated.get_mut(&principal_id).filter(|n| **n > 0);
    if !known || waiting.is_some() {
        if let Some(n) = waiting {
            *n -= 1;
        }
        return Err(error(
            400,
            "PrincipalNotFound",
            &format!(
                "Principal {} does not exist in the directory. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay.",
                principal_id.simple()
            ),
        ));
    }
    let guid = |id: &str| id.rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
    let same = s.role_assignments.iter().any(|a| {
        a.principal_id == principal_id
            && a.scope.eq_ignore_ascii_case(&scope)
            && guid(&a.role_definition_id) == guid(role_definition_id)
    });
    if same || s.role_assignments.iter().any(|a| a.name.eq_ignore_ascii_case(name)) {
        return Err(error(409, "RoleAssignmentExists", "The role assignment already exists."));
    }
    let assignment = crate::clients::RoleAssignment {
        id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
        name: name.to_owned(),
        role_definition_id: role_definition_id.to_owned(),
        principal_id,
        scope,
    };
    let v = role_assignment_json(&assignment);
    s.role_assignments.push(assignment);
    Ok((StatusCode::CREATED, v))
}

/// `DELETE {scope}/providers/Microsoft.Authorization/roleAssignments/{name}`: 200, or 204 when there was none.
pub(in crate::testkit) fn delete_role_assignment(s: &mut State, i: &Incoming<'_>) -> Handled {
    let (scope, name) = (scope(i), i.param("id"));
    let before = s.role_assignments.len();
    s.role_assignments.retain(|a| !(a.name.eq_ignore_ascii_case(name) && a.scope.eq_ignore_ascii_case(&scope)));
    Ok(if s.role_assignments.len() < before {
        (StatusCode::OK, Value::Null)
    } else {
        (StatusCode::NO_CONTENT, Value::Null)
    })
}
