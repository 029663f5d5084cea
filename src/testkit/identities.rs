//! Seeding and reading the fake's identity side: app registrations and service principals (Graph), user-assigned
//! identities and role assignments (ARM), their FICs and API permissions.

use std::time::Duration;

use uuid::Uuid;

use crate::fic::FederatedIdentityCredential;

use super::model;
use super::{App, FakePlatform, Uami, ids};

impl FakePlatform {
    /// Adds an app registration and its service principal (as registering an app in the portal does); returns
    /// the application's object id.
    pub fn add_application(&self, app_id: Uuid, display_name: &str) -> Uuid {
        let object_id = self.add_application_without_service_principal(app_id, display_name);
        let mut s = self.lock();
        let principal = ids(&mut s.rng);
        s.service_principals.insert(app_id, principal);
        object_id
    }

    /// Adds an app registration with no service principal in the tenant (as creating it through Graph does);
    /// returns its object id.
    pub fn add_application_without_service_principal(&self, app_id: Uuid, display_name: &str) -> Uuid {
        let mut s = self.lock();
        let object_id = ids(&mut s.rng);
        s.apps.insert(
            app_id,
            App { object_id, display_name: display_name.to_owned(), tags: Vec::new(), fics: Vec::new() },
        );
        object_id
    }

    /// The application ids of the app registrations named `display_name`.
    pub fn applications_named(&self, display_name: &str) -> Vec<Uuid> {
        self.lock().apps.iter().filter(|(_, a)| a.display_name == display_name).map(|(id, _)| *id).collect()
    }

    /// The object id of an application's service principal.
    pub fn service_principal(&self, app_id: Uuid) -> Option<Uuid> {
        self.lock().service_principals.get(&app_id).copied()
    }

    /// A user-assigned identity's client id and principal id, if it exists.
    pub fn user_assigned_identity(&self, subscription: &str, resource_group: &str, name: &str) -> Option<(Uuid, Uuid)> {
        let key = model::uami_key(subscription, resource_group, name);
        self.lock().uamis.get(&key).map(|u| (u.client_id, u.principal_id))
    }

    /// Principals created from now on (service principals, user-assigned identities) answer
    /// `PrincipalNotFound` to their first `attempts` role assignments, as ARM does until Entra has replicated
    /// a new principal.
    pub fn set_principal_replication_lag(&self, attempts: u32) {
        self.lock().replication_lag = attempts;
    }

    /// Every role assignment.
    pub fn role_assignments(&self) -> Vec<crate::clients::RoleAssignment> {
        self.lock().role_assignments.clone()
    }

    /// Removes a role assignment by its ARM id (as the portal would); whether there was one.
    pub fn remove_role_assignment(&self, id: &str) -> bool {
        let mut s = self.lock();
        let before = s.role_assignments.len();
        s.role_assignments.retain(|a| !a.id.eq_ignore_ascii_case(id));
        s.role_assignments.len() != before
    }

    /// Adds a role assignment under a random name (as the portal makes them); returns its name, or `None`
    /// when the fake knows no role of that name.
    pub fn seed_role_assignment(&self, scope: &str, role_name: &str, principal_id: Uuid) -> Option<Uuid> {
        let definition = model::role_definition_id(scope, role_name)?;
        let mut s = self.lock();
        let name = ids(&mut s.rng);
        let scope = scope.trim_end_matches('/').to_owned();
        s.role_assignments.push(crate::clients::RoleAssignment {
            id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            name: name.to_string(),
            role_definition_id: definition,
            principal_id,
            scope,
        });
        Some(name)
    }

    /// Adds a user-assigned managed identity; returns its client id and principal id.
    pub fn add_user_assigned_identity(
        &self,
        subscription: &str,
        resource_group: &str,
        name: &str,
        tenant: Uuid,
    ) -> (Uuid, Uuid) {
        let mut s = self.lock();
        let (client_id, principal_id) = (ids(&mut s.rng), ids(&mut s.rng));
        let id = format!(
            "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        );
        s.uamis.insert(
            id.to_ascii_lowercase(),
            Uami {
                id,
                name: name.to_owned(),
                location: "westeurope".to_owned(),
                tags: serde_json::json!({}),
                client_id,
                principal_id,
                tenant_id: tenant,
                fics: Vec::new(),
                fic_write_until: None,
            },
        );
        (client_id, principal_id)
    }

    /// Puts a FIC on a user-assigned identity of the fake, as if it had been there before (no creation time).
    pub fn seed_uami_fic(
        &self,
        subscription: &str,
        resource_group: &str,
        name: &str,
        fic: FederatedIdentityCredential,
    ) {
        let key = model::uami_key(subscription, resource_group, name);
        if let Some(u) = self.lock().uamis.get_mut(&key) {
            u.fics.push(fic);
        }
    }

    /// Adds a FIC directly (seeding an existing setup).
    pub fn seed_graph_fic(&self, app_id: Uuid, fic: FederatedIdentityCredential) {
        let mut s = self.lock();
        let id = ids(&mut s.rng).to_string();
        if let Some(app) = s.apps.get_mut(&app_id) {
            app.fics.push((id, fic));
        }
    }

    /// Removes an app registration's FIC by name (breaking a setup on purpose); returns whether it existed.
    pub fn remove_graph_fic(&self, app_id: Uuid, name: &str) -> bool {
        let mut s = self.lock();
        let Some(app) = s.apps.get_mut(&app_id) else { return false };
        let before = app.fics.len();
        app.fics.retain(|(_, f)| f.name != name);
        app.fics.len() != before
    }

    /// The FICs of an app registration.
    pub fn graph_fics(&self, app_id: Uuid) -> Vec<FederatedIdentityCredential> {
        self.lock().apps.get(&app_id).map(|a| a.fics.iter().map(|(_, f)| f.clone()).collect()).unwrap_or_default()
    }

    /// The FICs of a user-assigned identity.
    pub fn uami_fics(&self, subscription: &str, resource_group: &str, name: &str) -> Vec<FederatedIdentityCredential> {
        let id = format!(
            "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        );
        self.lock().uamis.get(&id.to_ascii_lowercase()).map(|u| u.fics.clone()).unwrap_or_default()
    }

    /// How long a FIC made through the fake takes to propagate: until then, a plug-in's token request with it
    /// fails with AADSTS70021 as Entra's does (by the system clock: FIC creation times are wall-clock times).
    pub fn set_fic_propagation(&self, propagation: Duration) {
        self.lock().fic_propagation = propagation;
    }

    /// The names of the Microsoft Graph (or other API) application permissions given to `principal`, sorted.
    pub fn api_permissions(&self, principal: Uuid) -> Vec<String> {
        let s = self.lock();
        let mut out: Vec<String> = s
            .app_role_grants
            .iter()
            .filter(|g| g.principal == principal)
            .filter_map(|g| {
                let api = s.resource_apis.values().find(|r| r.object_id == g.resource)?;
                api.app_roles.iter().find(|(id, _)| *id == g.app_role).map(|(_, v)| (*v).to_owned())
            })
            .collect();
        out.sort();
        out
    }
}
