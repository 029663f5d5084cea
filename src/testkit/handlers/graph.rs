//! Microsoft Graph as the fake serves it: applications, service principals and applications' federated identity
//! credentials.

use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Answer, Incoming, error, page};
use crate::fic::FederatedIdentityCredential;
use crate::testkit::State;

type Handled = Result<Answer, Answer>;

/// `GET applications`, found by `displayName` or `appId`.
pub(in crate::testkit) fn applications(s: &mut State, i: &Incoming<'_>) -> Handled {
    let terms = i.filter("Request_UnsupportedQuery")?.unwrap_or_default();
    let rows = s
        .apps
        .iter()
        .filter(|(app_id, a)| {
            terms.iter().any(|(field, value)| match field.as_str() {
                "displayName" => a.display_name == *value,
                "appId" => app_id.to_string() == *value,
                _ => false,
            })
        })
        .map(|(app_id, a)| json!({"id": a.object_id, "appId": app_id, "displayName": a.display_name}))
        .collect();
    Ok((StatusCode::OK, page(i.request, rows, s.options.page_size)))
}

/// `POST applications`.
pub(in crate::testkit) fn create_application(s: &mut State, i: &Incoming<'_>) -> Handled {
    let name = i
        .body
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| error(400, "Request_BadRequest", "displayName is required."))?;
    let (app_id, object_id) = (crate::testkit::ids(&mut s.rng), crate::testkit::ids(&mut s.rng));
    let tags = tags(i.body);
    s.apps.insert(
        app_id,
        crate::testkit::App { object_id, display_name: name.to_owned(), tags: tags.clone(), fics: Vec::new() },
    );
    Ok((StatusCode::CREATED, json!({"id": object_id, "appId": app_id, "displayName": name, "tags": tags})))
}

fn tags(body: &Value) -> Vec<String> {
    body.get("tags")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The application a path names: `applications(appId='…')`, `applications({object id})` or
/// `applications/{object id}`; its app id.
fn application_of(s: &State, i: &Incoming<'_>) -> Result<Uuid, Answer> {
    let by_object = |object: &str| s.apps.iter().find(|(_, a)| a.object_id.to_string() == object).map(|(id, _)| *id);
    let found = if i.path.starts_with("applications(") {
        match i.quoted(0) {
            Some(app_id) => Uuid::parse_str(&app_id).ok(),
            None => by_object(i.key(0)),
        }
    } else {
        by_object(i.param("id"))
    };
    found.filter(|id| s.apps.contains_key(id)).ok_or_else(|| {
        error(
            404,
            "Request_ResourceNotFound",
            "Resource does not exist or one of its queried reference-property objects are not present.",
        )
    })
}

/// `GET applications(…)`.
pub(in crate::testkit) fn application(s: &mut State, i: &Incoming<'_>) -> Handled {
    let app_id = application_of(s, i)?;
    let app = &s.apps[&app_id];
    Ok((
        StatusCode::OK,
        json!({"id": app.object_id, "appId": app_id, "displayName": app.display_name, "tags": app.tags}),
    ))
}

/// `PATCH applications(…)`: its display name and tags.
pub(in crate::testkit) fn update_application(s: &mut State, i: &Incoming<'_>) -> Handled {
    let app_id = application_of(s, i)?;
    let Some(app) = s.apps.get_mut(&app_id) else { return Err(error(404, "Request_ResourceNotFound", "no app")) };
    if let Some(name) = i.body.get("displayName").and_then(Value::as_str) {
        app.display_name = name.to_owned();
    }
    if i.body.get("tags").is_some() {
        app.tags = tags(i.body);
    }
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

/// `DELETE applications(…)`: its service principal goes with it.
pub(in crate::testkit) fn delete_application(s: &mut State, i: &Incoming<'_>) -> Handled {
    let app_id = application_of(s, i)?;
    s.apps.remove(&app_id);
    s.service_principals.remove(&app_id);
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

/// `GET servicePrincipals(appId='…')`, `servicePrincipals/{id}` or `servicePrincipals?$filter=appId eq '…'`.
pub(in crate::testkit) fn service_principal(s: &mut State, i: &Incoming<'_>) -> Handled {
    let json = |(app_id, id): (Uuid, Uuid)| json!({"id": id, "appId": app_id, "servicePrincipalType": "Application", "alternativeNames": []});
    if i.path == "servicePrincipals" {
        let terms = i.filter("Request_UnsupportedQuery")?.unwrap_or_default();
        let rows = s
            .service_principals
            .iter()
            .filter(|(app_id, id)| {
                terms.iter().any(|(field, value)| match field.as_str() {
                    "appId" => app_id.to_string() == *value,
                    "id" => id.to_string() == *value,
                    _ => false,
                })
            })
            .map(|(app_id, id)| json((*app_id, *id)))
            .collect();
        return Ok((StatusCode::OK, page(i.request, rows, s.options.page_size)));
    }
    let key = i.quoted(0).unwrap_or_else(|| i.param("id").to_owned());
    // An API's service principal (Microsoft Graph's), with the permissions it defines, in Graph's shape.
    let api = s.resource_apis.iter().find(|(app_id, r)| app_id.to_string() == key || r.object_id.to_string() == key);
    if let Some((app_id, r)) = api {
        let roles: Vec<Value> = r
            .app_roles
            .iter()
            .map(|(id, value)| json!({"allowedMemberTypes": ["Application"], "description": format!("{value} (application)"),
                                      "displayName": value, "id": id, "isEnabled": true, "origin": "Application", "value": value}))
            .collect();
        let scopes: Vec<Value> = r
            .scopes
            .iter()
            .map(|(id, value)| {
                json!({"adminConsentDescription": format!("{value} (delegated)"), "adminConsentDisplayName": value,
                                      "id": id, "isEnabled": true, "type": "User", "value": value})
            })
            .collect();
        return Ok((
            StatusCode::OK,
            json!({"id": r.object_id, "appId": app_id, "displayName": r.display_name, "appRoles": roles,
                   "oauth2PermissionScopes": scopes}),
        ));
    }
    // A user-assigned identity's service principal: its type and its resource id among the alternative names.
    if let Some(u) = s.uamis.values().find(|u| u.client_id.to_string() == key || u.principal_id.to_string() == key) {
        return Ok((
            StatusCode::OK,
            json!({"id": u.principal_id, "appId": u.client_id, "displayName": u.name,
                   "servicePrincipalType": "ManagedIdentity", "alternativeNames": ["isExplicit=True", u.id]}),
        ));
    }
    let found = if i.path.starts_with("servicePrincipals(") {
        Uuid::parse_str(&key).ok().and_then(|app_id| Some((app_id, *s.service_principals.get(&app_id)?)))
    } else {
        s.service_principals.iter().find(|(_, id)| id.to_string() == key).map(|(a, id)| (*a, *id))
    };
    let found =
        found.ok_or_else(|| error(404, "Request_ResourceNotFound", &format!("Resource '{key}' does not exist.")))?;
    Ok((StatusCode::OK, json(found)))
}

/// `POST servicePrincipals`: for an application of the fake, once; a principal made under a replication lag is
/// not yet known to role assignments.
pub(in crate::testkit) fn create_service_principal(s: &mut State, i: &Incoming<'_>) -> Handled {
    let app_id = i
        .body
        .get("appId")
        .and_then(Value::as_str)
        .and_then(|v| Uuid::parse_str(v).ok())
        .ok_or_else(|| error(400, "Request_BadRequest", "appId is required."))?;
    if !s.apps.contains_key(&app_id) {
        return Err(error(
            400,
            "Request_BadRequest",
            &format!("The appId '{app_id}' of the service principal does not reference a valid application object."),
        ));
    }
    if s.service_principals.contains_key(&app_id) {
        return Err(error(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            "The service principal cannot be created, updated, or restored because the service principal name is already in use.",
        ));
    }
    let id = crate::testkit::ids(&mut s.rng);
    s.service_principals.insert(app_id, id);
    if s.replication_lag > 0 {
        s.unreplicated.insert(id, s.replication_lag);
    }
    Ok((StatusCode::CREATED, json!({"id": id, "appId": app_id})))
}

/// A FIC as Graph answers with it.
fn fic_json(id: &str, f: &FederatedIdentityCredential) -> Value {
    let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
    v["id"] = json!(id);
    if v.get("description").is_none() {
        v["description"] = Value::Null;
    }
    v
}

/// `GET applications(…)/federatedIdentityCredentials`.
pub(in crate::testkit) fn fics(s: &mut State, i: &Incoming<'_>) -> Handled {
    let app = &s.apps[&application_of(s, i)?];
    let rows = app.fics.iter().map(|(id, f)| fic_json(id, f)).collect();
    Ok((StatusCode::OK, page(i.request, rows, s.options.page_size)))
}

fn new_id(s: &mut State) -> String {
    uuid::Builder::from_random_bytes(s.rng.u128(..).to_le_bytes()).into_uuid().to_string()
}

/// `POST applications(…)/federatedIdentityCredentials`: Graph's rules ([`super::super::model::fic_problem`]).
pub(in crate::testkit) fn create_fic(s: &mut State, i: &Incoming<'_>) -> Handled {
    let app_id = application_of(s, i)?;
    let fic = serde_json::from_value::<FederatedIdentityCredential>(i.body.clone())
        .map_err(|_| error(400, "Request_BadRequest", "Invalid request body."))?;
    let id = new_id(s);
    let app = s.apps.get_mut(&app_id).ok_or_else(|| error(404, "Request_ResourceNotFound", "no app"))?;
    let list: Vec<&FederatedIdentityCredential> = app.fics.iter().map(|(_, f)| f).collect();
    if let Some(problem) = crate::testkit::model::fic_problem(&list, &fic, None) {
        return Err(problem);
    }
    let v = fic_json(&id, &fic);
    s.fic_created.insert((app_id, fic.name.clone()), std::time::SystemTime::now());
    app.fics.push((id, fic));
    Ok((StatusCode::CREATED, v))
}

/// The FIC a path names: `federatedIdentityCredentials/{id or name}` or `federatedIdentityCredentials(name='…')`.
fn fic_key(i: &Incoming<'_>) -> String {
    match i.param("f") {
        "" => i.quoted(i.keys.len().saturating_sub(1)).unwrap_or_default(),
        f => f.to_owned(),
    }
}

fn fic_index(s: &State, i: &Incoming<'_>) -> Result<(Uuid, usize), Answer> {
    let app_id = application_of(s, i)?;
    let key = fic_key(i);
    let index = s.apps[&app_id]
        .fics
        .iter()
        .position(|(id, f)| *id == key || f.name == key)
        .ok_or_else(|| error(404, "Request_ResourceNotFound", &format!("Resource '{key}' does not exist.")))?;
    Ok((app_id, index))
}

/// `GET …/federatedIdentityCredentials/{id}` or `(name='…')`.
pub(in crate::testkit) fn fic(s: &mut State, i: &Incoming<'_>) -> Handled {
    let (app_id, index) = fic_index(s, i)?;
    let (id, f) = &s.apps[&app_id].fics[index];
    Ok((StatusCode::OK, fic_json(id, f)))
}

/// `DELETE …/federatedIdentityCredentials/{id}` or `(name='…')`.
pub(in crate::testkit) fn delete_fic(s: &mut State, i: &Incoming<'_>) -> Handled {
    let (app_id, index) = fic_index(s, i)?;
    if let Some(app) = s.apps.get_mut(&app_id) {
        app.fics.remove(index);
    }
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

/// `PATCH …/federatedIdentityCredentials/{id}`: issuer, subject and audiences.
pub(in crate::testkit) fn update_fic(s: &mut State, i: &Incoming<'_>) -> Handled {
    let (app_id, index) = fic_index(s, i)?;
    let Some(app) = s.apps.get_mut(&app_id) else { return Err(error(404, "Request_ResourceNotFound", "no app")) };
    let f = &mut app.fics[index].1;
    for (field, slot) in [("issuer", &mut f.issuer), ("subject", &mut f.subject)] {
        if let Some(v) = i.body.get(field).and_then(Value::as_str) {
            *slot = v.to_owned();
        }
    }
    if let Some(a) = i.body.get("audiences").and_then(|a| serde_json::from_value(a.clone()).ok()) {
        f.audiences = a;
    }
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

/// `PATCH …/federatedIdentityCredentials(name='…')`: an update, or with `Prefer: create-if-missing` an upsert
/// (201 when it created, 204 when it replaced).
pub(in crate::testkit) fn upsert_fic(s: &mut State, i: &Incoming<'_>) -> Handled {
    let app_id = application_of(s, i)?;
    let name = fic_key(i);
    // The name is the URL's; the body may leave it out.
    let mut body = i.body.clone();
    if let Some(fields) = body.as_object_mut() {
        fields.entry("name").or_insert_with(|| json!(name));
    }
    let mut fic = serde_json::from_value::<FederatedIdentityCredential>(body)
        .map_err(|_| error(400, "Request_BadRequest", "Invalid request body."))?;
    fic.name.clone_from(&name);
    let id = new_id(s);
    let app = s.apps.get_mut(&app_id).ok_or_else(|| error(404, "Request_ResourceNotFound", "no app"))?;
    let exists = app.fics.iter().any(|(_, f)| f.name == name);
    // Graph creates only with `Prefer: create-if-missing`; otherwise the PATCH is an update of nothing.
    let create_if_missing =
        i.request.headers().get_all("prefer").iter().any(|v| {
            v.to_str().is_ok_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("create-if-missing")))
        });
    if !exists && !create_if_missing {
        return Err(error(
            404,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{name}' does not exist or one of its queried reference-property objects are not present."
            ),
        ));
    }
    let list: Vec<&FederatedIdentityCredential> = app.fics.iter().map(|(_, f)| f).collect();
    if let Some(problem) = crate::testkit::model::fic_problem(&list, &fic, exists.then_some(name.as_str())) {
        return Err(problem);
    }
    if let Some(slot) = app.fics.iter_mut().find(|(_, f)| f.name == name) {
        slot.1 = fic;
        return Ok((StatusCode::NO_CONTENT, Value::Null));
    }
    let v = fic_json(&id, &fic);
    let name = fic.name.clone();
    app.fics.push((id, fic));
    s.fic_created.insert((app_id, name), std::time::SystemTime::now());
    Ok((StatusCode::CREATED, v))
}

/// The principal a path's `{id}` names: an application's service principal or a user-assigned identity's. One
/// made under a replication lag is not found until it replicates, in Graph's words for a missing object.
fn principal_of(s: &mut State, i: &Incoming<'_>) -> Result<Uuid, Answer> {
    let missing = || {
        error(
            404,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{}' does not exist or one of its queried reference-property objects are not present.",
                i.param("id")
            ),
        )
    };
    let id = Uuid::parse_str(i.param("id")).ok();
    let id = id
        .filter(|p| s.service_principals.values().any(|sp| sp == p) || s.uamis.values().any(|u| u.principal_id == *p))
        .ok_or_else(missing)?;
    if let Some(n) = s.unreplicated.get_mut(&id).filter(|n| **n > 0) {
        *n -= 1;
        return Err(missing());
    }
    Ok(id)
}

fn assignment_json(s: &State, g: &crate::testkit::access::AppRoleGrant) -> Value {
    let name = s.resource_apis.values().find(|r| r.object_id == g.resource).map(|r| r.display_name.clone());
    json!({"id": g.id, "appRoleId": g.app_role, "principalId": g.principal, "principalType": "ServicePrincipal",
           "resourceId": g.resource, "resourceDisplayName": name, "createdDateTime": "2026-12-01T10:00:00Z",
           "deletedDateTime": null})
}

/// `GET servicePrincipals/{id}/appRoleAssignments`.
pub(in crate::testkit) fn app_role_assignments(s: &mut State, i: &Incoming<'_>) -> Handled {
    let principal = principal_of(s, i)?;
    let rows = s.app_role_grants.iter().filter(|g| g.principal == principal).map(|g| assignment_json(s, g)).collect();
    Ok((StatusCode::OK, page(i.request, rows, s.options.page_size)))
}

/// `POST servicePrincipals/{id}/appRoleAssignments`: an app role the API defines for applications, once.
pub(in crate::testkit) fn assign_app_role(s: &mut State, i: &Incoming<'_>) -> Handled {
    let principal = principal_of(s, i)?;
    let uuid = |field: &str| i.body.get(field).and_then(Value::as_str).and_then(|v| Uuid::parse_str(v).ok());
    let (Some(body_principal), Some(resource), Some(app_role)) =
        (uuid("principalId"), uuid("resourceId"), uuid("appRoleId"))
    else {
        return Err(error(400, "Request_BadRequest", "principalId, resourceId and appRoleId are required."));
    };
    if body_principal != principal {
        return Err(error(400, "Request_BadRequest", "The principalId must be the service principal in the URL."));
    }
    let api = s
        .resource_apis
        .values()
        .find(|r| r.object_id == resource)
        .ok_or_else(|| error(404, "Request_ResourceNotFound", &format!("Resource '{resource}' does not exist.")))?;
    if !api.app_roles.iter().any(|(id, _)| *id == app_role) {
        return Err(error(400, "Request_BadRequest", "Permission being assigned was not found on application"));
    }
    if s.app_role_grants.iter().any(|g| g.principal == principal && g.resource == resource && g.app_role == app_role) {
        return Err(error(400, "Request_BadRequest", "Permission being assigned already exists on the object"));
    }
    let grant = crate::testkit::access::AppRoleGrant { id: new_id(s), principal, resource, app_role };
    let v = assignment_json(s, &grant);
    s.app_role_grants.push(grant);
    Ok((StatusCode::CREATED, v))
}

/// `DELETE servicePrincipals/{id}/appRoleAssignments/{a}`.
pub(in crate::testkit) fn remove_app_role_assignment(s: &mut State, i: &Incoming<'_>) -> Handled {
    let principal = principal_of(s, i)?;
    let before = s.app_role_grants.len();
    let id = i.param("a").to_owned();
    s.app_role_grants.retain(|g| !(g.principal == principal && g.id == id));
    if s.app_role_grants.len() == before {
        return Err(error(404, "Request_ResourceNotFound", &format!("Resource '{id}' does not exist.")));
    }
    Ok((StatusCode::NO_CONTENT, Value::Null))
}
