//! Seeding and reading the fake's Dataverse side: environments, plug-in assemblies and packages, their
//! registered bytes and bindings, `managedidentity` rows, application users, trace logs, running a plug-in.

use std::collections::BTreeMap;
use std::time::SystemTime;

use uuid::Uuid;

use crate::cert::Certificate;
use crate::cloud::CloudProfile;
use crate::entities::ManagedIdentity;
use crate::environment::EnvironmentId;
use crate::fic::FederatedIdentityCredential;

use super::access;
use super::model;
use super::{Component, Environment, FakePlatform, Presentation, ids};

impl FakePlatform {
    /// Adds an environment at `host` (e.g. `contoso.crm.dynamics.com`) in `tenant`; returns its environment id
    /// (a random GUID).
    pub fn add_environment(&self, host: &str, tenant: Uuid) -> EnvironmentId {
        let id = {
            let mut s = self.lock();
            EnvironmentId::Guid(ids(&mut s.rng))
        };
        self.add_environment_with_id(host, tenant, id)
    }

    /// Adds `tenant`'s Default environment at `host`: its `RetrieveCurrentOrganization` answers
    /// `"EnvironmentId": "Default-{tenant}"`, as the platform does.
    pub fn add_default_environment(&self, host: &str, tenant: Uuid) -> EnvironmentId {
        self.add_environment_with_id(host, tenant, EnvironmentId::Default { tenant })
    }

    /// Adds an environment with the given id.
    pub fn add_environment_with_id(&self, host: &str, tenant: Uuid, environment_id: EnvironmentId) -> EnvironmentId {
        let mut s = self.lock();
        let organization_id = ids(&mut s.rng);
        s.environments.insert(
            host.to_ascii_lowercase(),
            Environment {
                trace_setting: 0,
                trace_logs: Vec::new(),
                organization_id,
                environment_id,
                tenant_id: tenant,
                presentation: Presentation::default(),
                managed_identities: BTreeMap::new(),
                assemblies: BTreeMap::new(),
                packages: BTreeMap::new(),
                friendly_name: None,
                disabled: false,
                security: access::Security::for_organization(organization_id),
            },
        );
        environment_id
    }

    /// Runs a plug-in of `component` as the platform would: it asks for a token with the component's managed
    /// identity, and the fake answers as Entra would (the subject the platform presents against the identity's
    /// FICs). Writes a `plugintracelog` row as the environment's trace setting says (Off: none, Exception: only
    /// failures, All: every run). Returns whether the token request succeeded.
    pub fn run_plugin(&self, host: &str, component: Uuid, type_name: &str) -> bool {
        let mut s = self.lock();
        let cloud = CloudProfile::from(s.options.cloud);
        let presented = model::presented_subject(&s, &host.to_ascii_lowercase(), component, &cloud);
        let (ok, text) = match presented {
            Err(why) => (false, format!("Microsoft.Xrm.Sdk.InvalidPluginExecutionException: {why}")),
            Ok((subject, application_id, tenant)) => {
                let issuer = cloud.fic_issuer(tenant);
                let fics: Vec<FederatedIdentityCredential> = s
                    .apps
                    .get(&application_id)
                    .map(|a| a.fics.iter().map(|(_, f)| f.clone()).collect())
                    .or_else(|| s.uamis.values().find(|u| u.client_id == application_id).map(|u| u.fics.clone()))
                    .unwrap_or_default();
                let matched = fics
                    .iter()
                    .find(|f| f.subject == subject && f.issuer == issuer && f.audiences == [cloud.audience.clone()]);
                // A FIC younger than the propagation time is not known to every Entra instance yet.
                let propagating =
                    matched.and_then(|f| s.fic_created.get(&(application_id, f.name.clone()))).is_some_and(|made| {
                        SystemTime::now().duration_since(*made).unwrap_or_default() < s.fic_propagation
                    });
                if propagating {
                    let trace = ids(&mut s.rng);
                    let at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string().replace('T', " ");
                    (
                        false,
                        format!(
                            "Microsoft.Identity.Client.MsalServiceException: AADSTS70021: No matching federated identity record found for presented assertion. \
                             Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{}'. \
                             Trace ID: {trace} Correlation ID: {trace} Timestamp: {at}",
                            cloud.audience
                        ),
                    )
                } else if matched.is_some() {
                    (true, "Token acquired for https://vault.azure.net/.default".to_owned())
                } else {
                    let trace = ids(&mut s.rng);
                    (
                        false,
                        format!(
                            "Microsoft.Identity.Client.MsalServiceException: A configuration issue is preventing authentication - check the error message from the server for details. \
                         Original exception: AADSTS700213: No matching federated identity record found for presented assertion subject '{subject}'. \
                         Check your federated identity credential Subject, Audience and Issuer against the presented assertion. \
                         Trace ID: {trace} Correlation ID: {trace} Timestamp: 2026-11-22 10:00:00Z"
                        ),
                    )
                }
            }
        };
        let id = ids(&mut s.rng);
        let now = der::DateTime::from_system_time(SystemTime::now()).map(|d| d.to_string()).unwrap_or_default();
        if let Some(env) = s.environments.get_mut(&host.to_ascii_lowercase()) {
            let write = env.trace_setting == 2 || (env.trace_setting == 1 && !ok);
            if write {
                let (message, exception) =
                    if ok { (Some(text), None) } else { (Some("Requesting token...".to_owned()), Some(text)) };
                env.trace_logs.push(crate::entities::PluginTraceLog {
                    id,
                    type_name: Some(type_name.to_owned()),
                    message_block: message,
                    exception_details: exception,
                    created_on: Some(now),
                    correlation_id: Some(id),
                    extra: serde_json::Map::new(),
                });
            }
        }
        ok
    }

    /// How the Global Discovery Service lists an environment: its display name, and whether it is disabled.
    pub fn set_discovery(&self, host: &str, friendly_name: &str, disabled: bool) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            env.friendly_name = Some(friendly_name.to_owned());
            env.disabled = disabled;
        }
    }

    /// Sets an environment's plug-in trace log setting (0 Off, 1 Exception, 2 All).
    pub fn set_trace_setting(&self, host: &str, setting: i32) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            env.trace_setting = setting;
        }
    }

    /// The plug-in trace log rows of an environment.
    pub fn trace_logs(&self, host: &str) -> Vec<crate::entities::PluginTraceLog> {
        self.lock().environments.get(&host.to_ascii_lowercase()).map(|e| e.trace_logs.clone()).unwrap_or_default()
    }

    /// The organization id of an environment (a different GUID from its environment id).
    pub fn organization_id(&self, host: &str) -> Option<Uuid> {
        self.lock().environments.get(&host.to_ascii_lowercase()).map(|e| e.organization_id)
    }

    /// The environment id of the environment at `host`.
    pub fn environment_id(&self, host: &str) -> Option<EnvironmentId> {
        self.lock().environments.get(&host.to_ascii_lowercase()).map(|e| e.environment_id)
    }

    fn add_component(
        &self,
        host: &str,
        name: &str,
        certificate: Option<Certificate>,
        package: bool,
        in_package: Option<Uuid>,
    ) -> Uuid {
        let mut s = self.lock();
        let id = ids(&mut s.rng);
        if let Some(env) = s.environments.get_mut(&host.to_ascii_lowercase()) {
            let c = Component {
                name: name.to_owned(),
                binding: None,
                certificate,
                package: in_package,
                presented: None,
                content: None,
            };
            if package {
                env.packages.insert(id, c)
            } else {
                env.assemblies.insert(id, c)
            };
        }
        id
    }

    /// Adds a plug-in assembly that belongs to the plug-in package `package` (its `_packageid_value`). As on the
    /// platform, its token requests use the package's binding and the package's signature.
    pub fn add_packaged_assembly(&self, host: &str, package: Uuid, name: &str) -> Uuid {
        self.add_component(host, name, None, false, Some(package))
    }

    /// Makes the platform present exactly `subject` for a component (its `GetComponentManagedIdentityFIC` and its
    /// token requests), whatever the crate would compute; `None` goes back to computing it.
    pub fn set_presented_subject(&self, host: &str, component: Uuid, subject: Option<&str>) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            for c in [env.assemblies.get_mut(&component), env.packages.get_mut(&component)].into_iter().flatten() {
                c.presented = subject.map(str::to_owned);
            }
        }
    }

    /// Changes how the platform writes the subjects of an environment's components (see [`Presentation`]).
    pub fn set_presentation(&self, host: &str, presentation: Presentation) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            env.presentation = presentation;
        }
    }

    /// Adds a plug-in assembly signed with `certificate` (used to answer `GetComponentManagedIdentityFIC`).
    pub fn add_plugin_assembly(&self, host: &str, name: &str, certificate: Option<Certificate>) -> Uuid {
        self.add_component(host, name, certificate, false, None)
    }

    /// Adds a plug-in assembly registered with these bytes (a `.dll`), as the Plug-in Registration Tool or `pac
    /// plugin push` would: the platform keeps them (`content`) and takes the signer from their Authenticode
    /// signature (none when unsigned).
    pub fn add_registered_assembly(&self, host: &str, name: &str, dll: &[u8]) -> Uuid {
        let id = self.add_component(host, name, None, false, None);
        self.register_content(host, id, dll);
        id
    }

    /// Adds a plug-in package registered with these bytes (a `.nupkg`); the signer is its NuGet author signature.
    pub fn add_registered_package(&self, host: &str, unique_name: &str, nupkg: &[u8]) -> Uuid {
        let id = self.add_component(host, unique_name, None, true, None);
        self.register_content(host, id, nupkg);
        id
    }

    /// Registers new bytes for a component (after re-signing it): from now on the platform presents the subject
    /// of their signer, and `content` answers them.
    pub fn register_content(&self, host: &str, component: Uuid, bytes: &[u8]) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            let found = match env.assemblies.get_mut(&component) {
                Some(c) => Some((crate::clients::ComponentKind::PluginAssembly, c)),
                None => env.packages.get_mut(&component).map(|c| (crate::clients::ComponentKind::PluginPackage, c)),
            };
            if let Some((kind, c)) = found {
                c.certificate = kind.signer(bytes).ok().map(|l| l.certificate);
                c.content = Some(bytes.to_vec());
            }
        }
    }

    /// Adds a plug-in package (matched by unique name) signed with `certificate`.
    pub fn add_plugin_package(&self, host: &str, unique_name: &str, certificate: Option<Certificate>) -> Uuid {
        self.add_component(host, unique_name, certificate, true, None)
    }

    /// The id of the plug-in assembly or package named `name` (a package's unique name) in the environment at
    /// `host`.
    pub fn component_named(&self, host: &str, name: &str) -> Option<Uuid> {
        let s = self.lock();
        let env = s.environments.get(&host.to_ascii_lowercase())?;
        env.assemblies.iter().chain(env.packages.iter()).find(|(_, c)| c.name == name).map(|(id, _)| *id)
    }

    /// The subject the platform presents for a component (what `GetComponentManagedIdentityFIC` answers), or why
    /// it presents none.
    pub fn presented_subject(&self, host: &str, component: Uuid) -> Result<String, String> {
        let s = self.lock();
        let cloud = CloudProfile::from(s.options.cloud);
        model::presented_subject(&s, &host.to_ascii_lowercase(), component, &cloud).map(|(subject, ..)| subject)
    }

    /// Adds a managed identity row directly (seeding an existing setup).
    pub fn seed_managed_identity(&self, host: &str, row: ManagedIdentity) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            env.managed_identities.insert(row.id, row);
        }
    }

    /// Binds a component directly (seeding an existing setup).
    pub fn seed_binding(&self, host: &str, component: Uuid, managed_identity: Option<Uuid>) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            for c in [env.assemblies.get_mut(&component), env.packages.get_mut(&component)].into_iter().flatten() {
                c.binding = managed_identity;
            }
        }
    }

    /// The managed identity rows of an environment.
    pub fn managed_identities(&self, host: &str) -> Vec<ManagedIdentity> {
        self.lock()
            .environments
            .get(&host.to_ascii_lowercase())
            .map(|e| e.managed_identities.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The managed identity a component is bound to.
    pub fn binding(&self, host: &str, component: Uuid) -> Option<Uuid> {
        let s = self.lock();
        let env = s.environments.get(&host.to_ascii_lowercase())?;
        env.assemblies.get(&component).or_else(|| env.packages.get(&component)).and_then(|c| c.binding)
    }

    /// Writes a trace log row in the environment at `host` whatever its trace setting: a plug-in of `type_name`
    /// that failed with `exception` (what a plug-in's own failure looks like, e.g. a call it made being refused).
    pub fn add_trace_log(&self, host: &str, type_name: &str, exception: &str) {
        let mut s = self.lock();
        let id = ids(&mut s.rng);
        let now = der::DateTime::from_system_time(SystemTime::now()).map(|d| d.to_string()).unwrap_or_default();
        if let Some(env) = s.environments.get_mut(&host.to_ascii_lowercase()) {
            env.trace_logs.push(crate::entities::PluginTraceLog {
                id,
                type_name: Some(type_name.to_owned()),
                message_block: None,
                exception_details: Some(exception.to_owned()),
                created_on: Some(now),
                correlation_id: Some(id),
                extra: serde_json::Map::new(),
            });
        }
    }

    /// The application user of `application_id` in the environment at `host`: its id and the names of its
    /// security roles (sorted).
    pub fn application_user(&self, host: &str, application_id: Uuid) -> Option<(Uuid, Vec<String>)> {
        let s = self.lock();
        let security = &s.environments.get(&host.to_ascii_lowercase())?.security;
        let (id, user) = security.application_user(application_id)?;
        let mut roles: Vec<String> =
            user.roles.iter().filter_map(|r| security.roles.get(r).map(|(name, _)| name.clone())).collect();
        roles.sort();
        Some((id, roles))
    }

    /// Makes `application_id` an application user of the environment at `host` in its root business unit with
    /// the root's roles named (as an administrator would in the admin center); returns the user's id.
    pub fn seed_application_user(&self, host: &str, application_id: Uuid, roles: &[&str]) -> Option<Uuid> {
        let mut s = self.lock();
        let env = s.environments.get_mut(&host.to_ascii_lowercase())?;
        let security = &mut env.security;
        let root = security.root_business_unit;
        let ids = security
            .roles
            .iter()
            .filter(|(_, (name, bu))| *bu == root && roles.iter().any(|r| r.eq_ignore_ascii_case(name)))
            .map(|(id, _)| *id)
            .collect();
        let id = Uuid::new_v5(&env.organization_id, application_id.as_bytes());
        security
            .users
            .insert(id, access::SystemUser { application_id: Some(application_id), business_unit: root, roles: ids });
        Some(id)
    }
}
