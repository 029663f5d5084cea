//! What the fake keeps of access beyond Azure roles: each environment's business units, security roles and
//! application users, and the APIs' service principals (Microsoft Graph's, with some of its real application and
//! delegated permissions) with the app roles given to principals.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// An environment's security: its root business unit and one child, the roles of each (every business unit has
/// its own copy of a role), and its users.
#[derive(Debug, Clone)]
pub(crate) struct Security {
    pub(crate) root_business_unit: Uuid,
    /// A child business unit, with copies of some roles: a role found by name alone may be the wrong copy.
    pub(crate) child_business_unit: Uuid,
    /// Role id to its name and business unit.
    pub(crate) roles: BTreeMap<Uuid, (String, Uuid)>,
    /// System user id to the user.
    pub(crate) users: BTreeMap<Uuid, SystemUser>,
}

/// A `systemuser` row: an application user when it has an application id.
#[derive(Debug, Clone)]
pub(crate) struct SystemUser {
    pub(crate) application_id: Option<Uuid>,
    pub(crate) business_unit: Uuid,
    pub(crate) roles: BTreeSet<Uuid>,
}

/// The roles every environment of the fake has in its root business unit (Dataverse's own role names).
pub(crate) const ROOT_ROLES: &[&str] =
    &["System Administrator", "System Customizer", "Basic User", "Environment Maker", "Delegate", "Support User"];

/// The roles the child business unit has copies of.
const CHILD_ROLES: &[&str] = &["System Administrator", "Basic User"];

impl Security {
    /// An environment's security, its ids derived from the organization id (no draw from the fake's random
    /// numbers, so that seeded runs stay as they were).
    pub(crate) fn for_organization(organization_id: Uuid) -> Self {
        let id = |what: &str| Uuid::new_v5(&organization_id, what.as_bytes());
        let (root, child) = (id("business unit: root"), id("business unit: child"));
        let mut roles = BTreeMap::new();
        for name in ROOT_ROLES {
            roles.insert(id(&format!("role: root: {name}")), ((*name).to_owned(), root));
        }
        for name in CHILD_ROLES {
            roles.insert(id(&format!("role: child: {name}")), ((*name).to_owned(), child));
        }
        Security { root_business_unit: root, child_business_unit: child, roles, users: BTreeMap::new() }
    }

    /// The application user of `application_id`, if any.
    pub(crate) fn application_user(&self, application_id: Uuid) -> Option<(Uuid, &SystemUser)> {
        self.users.iter().find(|(_, u)| u.application_id == Some(application_id)).map(|(id, u)| (*id, u))
    }
}

/// An API's service principal as the fake keeps it.
#[derive(Debug, Clone)]
pub(crate) struct ResourceApi {
    pub(crate) object_id: Uuid,
    pub(crate) display_name: String,
    /// Application permissions: id and value.
    pub(crate) app_roles: Vec<(Uuid, &'static str)>,
    /// Delegated permissions: id and value.
    pub(crate) scopes: Vec<(Uuid, &'static str)>,
}

/// An app role given to a principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppRoleGrant {
    pub(crate) id: String,
    pub(crate) principal: Uuid,
    pub(crate) resource: Uuid,
    pub(crate) app_role: Uuid,
}

/// Microsoft Graph's service principal, with some of its permissions under their real ids (Microsoft Graph
/// permissions reference).
pub(crate) fn microsoft_graph() -> ResourceApi {
    let id = |s: &str| Uuid::parse_str(s).unwrap_or_default();
    ResourceApi {
        object_id: Uuid::from_u128(0x9a4a2a6c_3b1e_4d0e_8f3a_6f2b8d1c0e01),
        display_name: "Microsoft Graph".into(),
        app_roles: vec![
            (id("b633e1c5-b582-4048-a93e-9f11b44c7e96"), "Mail.Send"),
            (id("df021288-bdef-4463-88db-98f22de89214"), "User.Read.All"),
            (id("332a536c-c7ef-4017-ab91-336970924f0d"), "Sites.Read.All"),
            (id("01d4889c-1287-42c6-ac1f-5d1e02578ef6"), "Files.Read.All"),
            (id("7ab1d382-f21e-4acd-a863-ba3e13f7da61"), "Directory.Read.All"),
        ],
        scopes: vec![
            (id("e1fe6dd8-ba31-4d61-89e7-88639da4683d"), "User.Read"),
            (id("570282fd-fa5c-430d-a7fd-fc8dc98a9dca"), "Mail.Read"),
        ],
    }
}
