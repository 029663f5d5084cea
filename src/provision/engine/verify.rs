//! Checking the result against the platform's own answer and the identity's FICs.

use super::*;

impl Provisioner {
    /// Checks that the identity exists, that every grant is assigned, and every component: bound to the row,
    /// the row's version, and a FIC matching the subject the platform presents (`GetComponentManagedIdentityFIC`,
    /// where the platform offers it) and the one computed here.
    pub async fn verify(&self, spec: &ProvisionSpec) -> Result<VerifyReport, ProvisionError> {
        self.verify_with(spec, VerifyOptions::default()).await
    }

    /// [`verify`](Self::verify), judging certificates at `options.now` and warning `options.expiry_warning`
    /// before they expire. Three subjects are compared per component: the one from its registered signature,
    /// the platform's own (`GetComponentManagedIdentityFIC`), and the identity's FICs.
    pub async fn verify_with(
        &self,
        spec: &ProvisionSpec,
        options: VerifyOptions,
    ) -> Result<VerifyReport, ProvisionError> {
        self.counted(self.verify_in_call(spec, options)).await
    }

    async fn verify_in_call(
        &self,
        spec: &ProvisionSpec,
        options: VerifyOptions,
    ) -> Result<VerifyReport, ProvisionError> {
        let plan = self.plan_reading(spec, true).await?;
        let fics = &plan.existing_fics;
        let mut components = Vec::new();
        for e in &plan.environments {
            let has_fic = |subject: &str| {
                fics.iter().any(|f| f.subject == subject && f.issuer == e.fic.issuer && f.audiences == e.fic.audiences)
            };
            for c in &e.components {
                // The platform's answer was read by plan, for exactly the components it can answer for.
                let platform = e.platform_subjects.iter().find(|p| p.component == c.id);
                let bound_assembly = c.named_assemblies.iter().find(|a| a.bound_to.is_some());
                // Every problem, most important first: the binding, the row, the FIC.
                let mut problems = Vec::new();
                match c.bound_to {
                    None => problems.push(match bound_assembly {
                        Some(a) => ComponentStatus::AssemblyBoundNotPackage {
                            assembly: a.name.clone(),
                            package: c.name.clone(),
                        },
                        None => ComponentStatus::NotBound,
                    }),
                    Some(other) if Some(other) != e.managed_identity_id => {
                        problems.push(ComponentStatus::BoundToOther { managed_identity: other })
                    }
                    Some(_) => {}
                }
                match &e.existing_row {
                    None => problems.push(ComponentStatus::MissingRow),
                    Some(row) if row.version != Some(spec.version.number()) => problems
                        .push(ComponentStatus::WrongVersion { found: row.version, expected: spec.version.number() }),
                    Some(_) => {}
                }
                // The subject this component presents, by what is known of it: the platform's answer, else its
                // registered signature's, else the first computed one.
                let registered_subject = c.registered.as_ref().and_then(RegisteredSignature::subject);
                let own = registered_subject.unwrap_or(&e.subject);
                if let Some(RegisteredSignature::Unsigned { reason }) = &c.registered {
                    problems.push(ComponentStatus::Unsigned { reason: reason.clone() });
                }
                match platform.and_then(|p| Some((&p.subject, p.difference.as_ref()?))) {
                    Some((server, difference)) if !has_fic(server) => problems.push(ComponentStatus::SubjectMismatch {
                        server: server.clone(),
                        local: own.to_owned(),
                        difference: difference.clone(),
                    }),
                    Some(_) => {}
                    None if platform.is_some_and(|p| !has_fic(&p.subject)) => {
                        problems.push(ComponentStatus::MissingFic { subject: own.to_owned() })
                    }
                    None if platform.is_none() && !has_fic(own) => {
                        problems.push(ComponentStatus::MissingFic { subject: own.to_owned() })
                    }
                    None => {}
                }
                let certificate = c.registered.as_ref().and_then(RegisteredSignature::certificate).cloned();
                let days_left = certificate.as_ref().map(|c| c.days_left(options.now));
                let mut warnings = Vec::new();
                if let Some((cert, days)) = certificate.as_ref().zip(days_left) {
                    let seconds_left = cert.seconds_left(options.now);
                    let window = i64::try_from(options.expiry_warning.as_secs()).unwrap_or(i64::MAX);
                    if seconds_left < 0 {
                        problems.push(ComponentStatus::CertificateExpired {
                            certificate: cert.subject.clone(),
                            not_after: cert.not_after.clone(),
                        });
                    } else if seconds_left < window {
                        warnings.push(ComponentWarning::CertificateExpiresSoon {
                            certificate: cert.subject.clone(),
                            not_after: cert.not_after.clone(),
                            days_left: days,
                        });
                    }
                }
                let status = problems.first().cloned().unwrap_or(ComponentStatus::Ok);
                components.push(ComponentReport {
                    org_url: e.org_url.clone(),
                    component: c.clone(),
                    server_checked: platform.is_some(),
                    computed_subject: own.to_owned(),
                    platform_subject: platform.filter(|p| p.difference.is_some()).map(|p| p.subject.clone()),
                    status,
                    problems,
                    registered_subject: registered_subject.map(str::to_owned),
                    certificate,
                    days_left,
                    warnings,
                });
            }
        }
        Ok(VerifyReport {
            identity: plan.identity.clone(),
            identity_exists: plan.found.is_some_and(|f| !spec.needs_principal() || f.principal_id.is_some()),
            components,
            grants: plan
                .grants
                .iter()
                .map(|g| GrantReport { role: g.role.clone(), scope: g.scope.clone(), assigned: g.existing.is_some() })
                .collect(),
            application_users: plan.application_users.clone(),
            api_permissions: plan.api_permissions.clone(),
            counts: CallCounts::default(),
        })
    }
}
