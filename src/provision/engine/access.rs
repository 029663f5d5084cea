//! Access beyond Azure roles: the identity as an application user of Dataverse environments (with security roles
//! of the root business unit), and application permissions of Microsoft Graph or another API (app role
//! assignments on the identity's service principal). Read in observe, decided in `decide`, given in apply, checked
//! by verify, taken away by destroy when asked.

use super::*;
use crate::clients::dataverse::requests as dv_requests;
use crate::clients::{Batch, ResourceServicePrincipal};
use crate::provision::spec::ApiPermissionSpec;

/// The namespace of application user ids this crate makes (a v5 UUID of the client id and the environment).
const APPLICATION_USER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d1e3b7a_41c2_4f0e_9a53_0c7b2f4e8d19);

/// The id this crate gives the application user it makes for `application_id` in `org_url`: derived, so that an
/// apply run again (or retried after a lost answer) finds the user it made instead of making a second one.
pub fn application_user_id(application_id: Uuid, org_url: &str) -> Uuid {
    let host = org_url.trim_end_matches('/').to_ascii_lowercase();
    Uuid::new_v5(&APPLICATION_USER_ID_NAMESPACE, format!("{}|{host}", application_id.hyphenated()).as_bytes())
}

/// The environments a spec's application users are in, each with the roles named for it (in order, once each).
pub(super) fn application_user_targets(spec: &ProvisionSpec) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for u in &spec.application_users {
        let environments: Vec<String> = match &u.environment {
            Some(url) => vec![url.trim_end_matches('/').to_owned()],
            None => spec.environments.iter().map(|e| e.org_url.trim_end_matches('/').to_owned()).collect(),
        };
        for env in environments {
            let at = match out.iter().position(|(url, _)| url.eq_ignore_ascii_case(&env)) {
                Some(at) => at,
                None => {
                    out.push((env, Vec::new()));
                    out.len() - 1
                }
            };
            for role in &u.roles {
                if !out[at].1.iter().any(|r| r.eq_ignore_ascii_case(role)) {
                    out[at].1.push(role.clone());
                }
            }
        }
    }
    out
}

impl Provisioner {
    /// Each application user the spec asks for, as found: one read batch per environment (the root business unit,
    /// the roles by name, the identity's application user with its roles). No request when the spec asks for none.
    pub(super) async fn observe_application_users(
        &self,
        spec: &ProvisionSpec,
        application_id: Option<Uuid>,
    ) -> Result<Vec<AppUserPlan>, ProvisionError> {
        let targets = application_user_targets(spec);
        let reads = targets.iter().map(|(org_url, roles)| async move {
            let api = |e| ProvisionError::api(org_url, e);
            let dv = self.connector.connect(org_url).map_err(api)?;
            let mut batch = Batch::new();
            let units = batch.add(dv_requests::root_business_units());
            let names: Vec<&str> = roles.iter().map(String::as_str).collect();
            let found_roles = batch.add(dv_requests::security_roles_named(&names));
            let users = application_id.map(|a| batch.add(dv_requests::application_users(a)));
            let mut answers = self.send_reads(dv.as_ref(), &batch).await;
            let business_unit = answers
                .take(units)
                .map_err(api)?
                .first()
                .map(|u| u.id)
                .ok_or_else(|| ProvisionError::NoRootBusinessUnit { org_url: org_url.clone() })?;
            let found_roles = answers.take(found_roles).map_err(api)?;
            let user = match users {
                Some(slot) => answers.take(slot).map_err(api)?.into_iter().next(),
                None => None,
            };
            let mut grants = Vec::new();
            for name in roles {
                // Each business unit has its own copy of a role: the root's is the one given.
                let role = found_roles
                    .iter()
                    .find(|r| r.name.eq_ignore_ascii_case(name) && r.business_unit == Some(business_unit))
                    .ok_or_else(|| ProvisionError::SecurityRoleNotFound {
                        org_url: org_url.clone(),
                        role: name.clone(),
                    })?;
                let given = user.as_ref().is_some_and(|u| {
                    u.roles.iter().any(|r| {
                        r.id == role.id || (r.name.eq_ignore_ascii_case(name) && r.business_unit == Some(business_unit))
                    })
                });
                grants.push(RoleGrant { name: role.name.clone(), role_id: role.id, given });
            }
            Ok(AppUserPlan { org_url: org_url.clone(), user: user.map(|u| u.id), business_unit, roles: grants })
        });
        futures_util::future::try_join_all(reads).await
    }

    /// Each API permission the spec asks for, as found: the API's service principal (its roles) once per API, and
    /// the identity's assignments once. A delegated permission or an unknown one is refused with the reason.
    pub(super) async fn observe_api_permissions(
        &self,
        spec: &ProvisionSpec,
        principal: Option<Uuid>,
    ) -> Result<Vec<ApiPermissionPlan>, ProvisionError> {
        if spec.api_permissions.is_empty() {
            return Ok(Vec::new());
        }
        let directory = self.directory.as_deref().ok_or(ProvisionError::NoDirectoryClient)?;
        let mut apis: Vec<Uuid> = Vec::new();
        for p in &spec.api_permissions {
            if !apis.contains(&p.api_app_id()) {
                apis.push(p.api_app_id());
            }
        }
        let resources = futures_util::future::try_join_all(apis.iter().map(|api| async move {
            directory
                .resource_service_principal(*api)
                .await
                .map_err(ProvisionError::identity)?
                .ok_or(ProvisionError::ApiNotFound { api: *api })
        }));
        let assignments = async {
            match principal {
                Some(p) => directory.app_role_assignments(p).await.map_err(ProvisionError::identity),
                None => Ok(Vec::new()),
            }
        };
        let (resources, assignments) = futures_util::try_join!(resources, assignments)?;
        let mut out = Vec::new();
        for p in &spec.api_permissions {
            let Some(resource) = resources.iter().find(|r| r.app_id == p.api_app_id()) else { continue };
            for name in &p.permissions {
                let role = application_permission(resource, p, name)?;
                if out.iter().any(|o: &ApiPermissionPlan| o.resource_id == resource.id && o.app_role_id == role) {
                    continue;
                }
                let existing = assignments
                    .iter()
                    .find(|a| a.resource_id == resource.id && a.app_role_id == role)
                    .map(|a| a.id.clone());
                out.push(ApiPermissionPlan {
                    api: resource.app_id,
                    api_name: resource.display_name.clone(),
                    resource_id: resource.id,
                    permission: name.clone(),
                    app_role_id: role,
                    existing,
                });
            }
        }
        Ok(out)
    }

    /// Makes the application user when there is none (under its derived id; a duplicate key on a retry is
    /// success once the user is found) and gives it the roles it lacks, one by one (an association that exists is
    /// success).
    pub(super) async fn grant_dataverse_access(
        &self,
        action: &Action,
        identity: IdentityInfo,
    ) -> Result<ActionStatus, ApiError> {
        let Action::GrantDataverseAccess { org_url, user, business_unit, roles } = action else {
            return Ok(ActionStatus::Skipped { reason: "not an application user".into() });
        };
        let dv = self.connector.connect(org_url)?;
        let user = match user {
            Some(user) => *user,
            None => {
                let id = application_user_id(identity.client_id, org_url);
                let mut create = Batch::new();
                let made = create.add(dv_requests::create_application_user(id, identity.client_id, *business_unit));
                match dv.send_each(&create).await.take(made) {
                    Ok(()) => id,
                    Err(e) if e.is_conflict() || e.service_code() == Some(crate::clients::DATAVERSE_DUPLICATE_KEY) => {
                        id
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let mut gives = Batch::new();
        let slots: Vec<_> =
            roles.iter().map(|(_, role)| gives.add(dv_requests::add_security_role(org_url, user, *role))).collect();
        let mut answers = dv.send_each(&gives).await;
        for slot in slots {
            match answers.take(slot) {
                Ok(()) => {}
                // The association is there already (a concurrent run, a retried request).
                Err(e) if e.service_code() == Some(crate::clients::DATAVERSE_DUPLICATE_KEY) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ActionStatus::Done)
    }

    /// Gives the identity's service principal an application permission. A refusal because it is given already
    /// (a concurrent run, a lost answer) is success once the assignment is found.
    ///
    /// A service principal the apply has just made may not be in the directory yet: Graph answers that it does not
    /// exist, and the assignment is tried again as ARM's role assignments are (`ProvisionOptions::principal_retry`,
    /// counted in the report's `principal_retries`).
    pub(super) async fn grant_api_permission(
        &self,
        action: &Action,
        identity: IdentityInfo,
        principal_retries: &std::sync::atomic::AtomicU32,
    ) -> Result<ActionStatus, ApiError> {
        let Action::GrantApiPermission { resource_id, app_role_id, .. } = action else {
            return Ok(ActionStatus::Skipped { reason: "not an API permission".into() });
        };
        let (Some(directory), Some(principal)) = (self.directory.as_deref(), identity.principal_id) else {
            return Err(ApiError::invalid("API permission", "no Microsoft Graph client, or no service principal"));
        };
        let assign = || directory.assign_app_role(principal, *resource_id, *app_role_id);
        match self.while_replicating("app role assignment", principal_retries, ApiError::is_not_found, assign).await {
            Ok(()) => Ok(ActionStatus::Done),
            Err(e) if e.status() == Some(http::StatusCode::BAD_REQUEST) || e.is_conflict() => {
                let now = directory.app_role_assignments(principal).await?;
                if now.iter().any(|a| a.resource_id == *resource_id && a.app_role_id == *app_role_id) {
                    Ok(ActionStatus::AlreadyDone)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// The app role of `resource` that is the application permission `name`; a delegated permission of that name, or
/// none, is refused with what the API has.
fn application_permission(
    resource: &ResourceServicePrincipal,
    spec: &ApiPermissionSpec,
    name: &str,
) -> Result<Uuid, ProvisionError> {
    let same = |v: &Option<String>| v.as_deref().is_some_and(|v| v == name);
    if let Some(role) = resource.app_roles.iter().find(|r| same(&r.value) && r.is_application_permission()) {
        return Ok(role.id);
    }
    let api = resource.display_name.clone().unwrap_or_else(|| spec.api_app_id().to_string());
    let delegated_only = resource.oauth2_permission_scopes.iter().any(|s| same(&s.value));
    // The closest names first: those sharing the longest prefix with the one asked.
    let prefix = |v: &str| v.chars().zip(name.chars()).take_while(|(a, b)| a == b).count();
    let mut known: Vec<&str> = resource
        .app_roles
        .iter()
        .filter(|r| r.is_application_permission())
        .filter_map(|r| r.value.as_deref())
        .collect();
    known.sort_by_key(|v| std::cmp::Reverse(prefix(v)));
    Err(ProvisionError::PermissionNotFound {
        api,
        permission: name.to_owned(),
        delegated_only,
        known: known.into_iter().take(5).map(str::to_owned).collect(),
    })
}
