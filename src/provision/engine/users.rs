//! Who still presents a subject: the one rule every deletion of a FIC goes through (prune, a rotation's or an
//! upgrade's finish, the replacement of whole-name version 1 FICs, destroy).
//!
//! A FIC's subject names the tenant, the platform's app, the environment and the certificate, never the
//! `managedidentity` row. So every plug-in of one application in one environment, signed with one certificate,
//! presents the same subject, whichever of the application's rows it is bound to and whether or not a spec names
//! it. Before a FIC goes, every plug-in assembly and package of that environment bound to any row of the same
//! application and tenant is asked what it presents: the platform's own answer (`GetComponentManagedIdentityFIC`)
//! where it gives one, else the subject of its registered signature at its row's version.

use std::collections::HashMap;

use futures_util::{StreamExt as _, stream};
use uuid::Uuid;

use super::evidence::registered_signature;
use super::reports::{RegisteredSignature, SubjectUser, UserEvidence};
use crate::clients::ComponentKind;
use crate::cloud::CloudProfile;
use crate::environment::EnvironmentId;
use crate::provision::api::DataverseApi;
use crate::provision::{ProvisionError, Provisioner};
use crate::subject::{CertificateBinding, CertificateKind, SubjectFormatVersion, SubjectIdentifier};

/// Where the users of one environment are looked for.
pub(super) struct UsersIn<'a> {
    pub(super) org_url: &'a str,
    pub(super) application_id: Uuid,
    pub(super) tenant_id: Uuid,
    pub(super) environment_id: EnvironmentId,
    /// The spec's own row in that environment, to say whether a user is bound to it.
    pub(super) spec_row: Option<Uuid>,
}

impl Provisioner {
    /// Every plug-in component of one environment bound to a row of the application (and tenant), with the subject
    /// it presents. Reads the application's rows and the environment's assemblies and packages at once, then asks
    /// the platform per bound component (its registered bytes where the platform does not answer).
    pub(super) async fn subject_users(
        &self,
        dv: &dyn DataverseApi,
        at: &UsersIn<'_>,
        cloud: &CloudProfile,
    ) -> Result<Vec<SubjectUser>, ProvisionError> {
        let org = at.org_url;
        let api = |e| ProvisionError::api(org, e);
        let (rows, assemblies, packages) = futures_util::try_join!(
            async { dv.list_managed_identities(&format!("applicationid eq {}", at.application_id)).await.map_err(api) },
            async { dv.list_plugin_assemblies().await.map_err(api) },
            async { dv.list_plugin_packages().await.map_err(api) },
        )?;
        // The application's rows of this tenant (a row without a tenant is the environment's own tenant's).
        let versions: HashMap<Uuid, Option<SubjectFormatVersion>> = rows
            .iter()
            .filter(|r| r.tenant_id.is_none_or(|t| t == at.tenant_id))
            .map(|r| (r.id, r.version.and_then(SubjectFormatVersion::from_number)))
            .collect();
        let bound = assemblies
            .iter()
            .filter_map(|a| {
                let row = a.managed_identity_id.filter(|r| versions.contains_key(r))?;
                let name = a.name.clone().unwrap_or_else(|| a.id.to_string());
                Some((ComponentKind::PluginAssembly, a.id, name, row))
            })
            .chain(packages.iter().filter_map(|p| {
                let row = p.managed_identity_id.filter(|r| versions.contains_key(r))?;
                let name = p.unique_name.clone().or_else(|| p.name.clone()).unwrap_or_else(|| p.id.to_string());
                Some((ComponentKind::PluginPackage, p.id, name, row))
            }));
        let asks: Vec<_> = bound
            .map(|(kind, id, name, row)| {
                let version = versions.get(&row).copied().flatten();
                async move {
                    let (subject, evidence) = match dv.component_fic(kind, id).await {
                        Ok(answer) => (Some(answer.fic_subject), UserEvidence::Platform),
                        Err(e) => {
                            tracing::debug!(org, component = %id, error = %e, "GetComponentManagedIdentityFIC failed; reading the registered signature");
                            match self.registered_subject(dv, kind, id, version, at, cloud).await? {
                                Some(Ok((subject, evidence))) => (Some(subject), evidence),
                                Some(Err(reason)) => (None, UserEvidence::Unknown { reason }),
                                // Unsigned: it presents nothing, and no FIC can serve it.
                                None => return Ok(None),
                            }
                        }
                    };
                    Ok::<_, ProvisionError>(Some(SubjectUser {
                        org_url: org.to_owned(),
                        kind,
                        id,
                        name,
                        row,
                        spec_row: Some(row) == at.spec_row,
                        subject,
                        evidence,
                    }))
                }
            })
            .collect();
        let answers = stream::iter(asks).buffered(8).collect::<Vec<_>>().await;
        let mut users = Vec::new();
        for answer in answers {
            users.extend(answer?);
        }
        Ok(users)
    }

    /// The subject a component's registered signature gives at its row's version: `None` when it is not signed
    /// (it presents nothing), the reason when that cannot be told.
    async fn registered_subject(
        &self,
        dv: &dyn DataverseApi,
        kind: ComponentKind,
        id: Uuid,
        version: Option<SubjectFormatVersion>,
        at: &UsersIn<'_>,
        cloud: &CloudProfile,
    ) -> Result<Option<Result<(String, UserEvidence), String>>, ProvisionError> {
        let Some(version) = version else {
            return Ok(Some(Err("its row has no subject format version".into())));
        };
        let bytes = dv.registered_content(kind, id).await.map_err(|e| ProvisionError::api(at.org_url, e))?;
        let subject_of = |certificate: &crate::cert::Certificate| -> Result<String, String> {
            let binding = CertificateBinding::for_certificate(certificate, version, CertificateKind::Auto)
                .map_err(|e| e.to_string())?;
            SubjectIdentifier::new(cloud, at.tenant_id, at.environment_id, binding)
                .map(|s| s.to_string())
                .map_err(|e| e.to_string())
        };
        let Some(bytes) = bytes else {
            return Ok(Some(Err("the platform did not answer, and no bytes are registered for it".into())));
        };
        Ok(match registered_signature(kind, &bytes, &subject_of) {
            RegisteredSignature::Signed { certificate, subject } => {
                Some(Ok((subject, UserEvidence::RegisteredSignature { certificate: certificate.subject })))
            }
            // Unsigned bytes present nothing: such a plug-in gets no token with any FIC.
            RegisteredSignature::Unsigned { .. } => None,
        })
    }
}
