//! Specs derived from a spec: with a certificate added or a rotation finished, at another version, storable
//! (secrets left out), and what a diagnosis can learn from it.

use super::{CertificateSpec, EnvironmentSpec, IdentitySpec, ProvisionSpec};
use crate::secret::Secret;
use crate::subject::SubjectFormatVersion;

impl ProvisionSpec {
    /// Fills what a diagnosis can learn from the spec, where `inputs` has nothing yet: the cloud, the subject
    /// format version, the app registration's id, and the first environment's certificate (read as the spec says:
    /// a file with its password, a PFX with a password in memory, or the certificate itself; with its chain and
    /// the file's own hash). Returns what the user should know about how the certificate was picked.
    pub fn fill_diagnosis_inputs(
        &self,
        inputs: &mut crate::diagnose::DiagnosisInputs,
    ) -> Result<Vec<crate::cert::LoadWarning>, crate::provision::ProvisionError> {
        inputs.cloud.get_or_insert_with(|| crate::cloud::CloudProfile::from(self.cloud));
        inputs.version.get_or_insert(self.version);
        if let IdentitySpec::AppRegistration { app_id: Some(app_id), .. } = &self.identity {
            inputs.application_id.get_or_insert(*app_id);
        }
        if inputs.certificate.is_some() {
            return Ok(Vec::new());
        }
        let first = self.environments.first().and_then(|e| e.certificate_specs().iter().find(|c| !c.is_registered()));
        let (path, password) = match first {
            Some(CertificateSpec::Loaded { certificate }) => {
                inputs.certificate = Some(certificate.clone());
                return Ok(Vec::new());
            }
            Some(CertificateSpec::Pkcs12 { path, password }) => (path, Some(password.clone())),
            Some(CertificateSpec::File { path, password_env }) => {
                let password = match password_env {
                    Some(var) => {
                        Some(Secret::new(std::env::var(var).map_err(|_| crate::provision::ProvisionError::Input {
                            message: format!("the environment variable {var} (the PFX password) is not set"),
                        })?))
                    }
                    None => None,
                };
                (path, password)
            }
            _ => return Ok(Vec::new()),
        };
        let path = self.base_dir.join(path);
        let bytes = crate::files::read_bounded(&path, crate::files::MAX_CERTIFICATE_FILE, "certificate file")
            .map_err(|e| crate::provision::ProvisionError::from(crate::cert::CertificateError::from(e)))?;
        Ok(inputs.set_certificate_file(&bytes, password.as_ref())?)
    }

    /// The spec as a plan stores it: a PFX given with its password in memory is replaced by the certificate read
    /// from it, so that no secret is written and the stored plan can still be checked later.
    pub fn storable(&self) -> Result<ProvisionSpec, crate::provision::ProvisionError> {
        let mut out = self.clone();
        for e in &mut out.environments {
            for c in std::iter::once(&mut e.certificate).chain(e.certificates.iter_mut()) {
                if matches!(c, CertificateSpec::Pkcs12 { .. })
                    && let Some(certificate) = c.certificate(&self.base_dir)?
                {
                    *c = CertificateSpec::Loaded { certificate };
                }
            }
        }
        Ok(out)
    }

    /// The first step of a rotation: every environment keeps its certificates and gains `new`, so that plan adds
    /// the new certificate's FICs and keeps the old ones (the plug-ins keep working before and after they are
    /// re-signed and registered again). Pruning is off for this step.
    ///
    /// ```
    /// use dataverse_mi::provision::{CertificateSpec, EnvironmentSpec, IdentitySpec, ProvisionSpec};
    /// let spec = ProvisionSpec::new(
    ///     IdentitySpec::app_registration_named("Contoso plug-ins", false),
    ///     vec![EnvironmentSpec::new("https://contoso.crm.dynamics.com").with_assemblies(["Contoso.Plugins"])],
    /// );
    /// let rotating = spec.adding_certificate(CertificateSpec::File { path: "new.cer".into(), password_env: None });
    /// // The registered certificate (the old one, until re-registration) and the new one.
    /// assert_eq!(rotating.environments[0].certificate_specs().len(), 2);
    /// assert!(rotating.environments[0].certificate_specs()[0].is_registered());
    /// ```
    pub fn adding_certificate(&self, new: CertificateSpec) -> ProvisionSpec {
        self.adding_certificate_in(new, &[])
    }

    /// [`adding_certificate`](Self::adding_certificate) in the environments whose org URL is one of `org_urls` (all
    /// of them when it is empty); the others keep their certificate. During a rotation each environment holds two
    /// FICs, so an identity serving more than 10 environments rotates a few at a time (it holds at most 20 FICs).
    /// URLs are compared as [`OrgUrl`](crate::clients::OrgUrl)s are (case and a trailing slash aside).
    pub fn adding_certificate_in(&self, new: CertificateSpec, org_urls: &[&str]) -> ProvisionSpec {
        let mut out = self.clone();
        out.prune = false;
        for e in out.environments.iter_mut().filter(|e| selected(e, org_urls)) {
            let mut all = e.certificate_specs().to_vec();
            if !all.contains(&new) {
                all.push(new.clone());
            }
            e.certificate = CertificateSpec::Registered;
            e.certificates = all;
        }
        out
    }

    /// The last step of a rotation: every environment's FICs are made for the new certificate `to` alone, and
    /// the spec's own FICs for any other certificate are pruned, except those a plug-in still presents: plan keeps
    /// them and says who uses them ([`PlanNote::FicKept`](crate::provision::PlanNote::FicKept), [`Plan::kept_fics`](
    /// crate::provision::Plan::kept_fics)) until every plug-in is re-signed. `CertificateSpec::Registered` keeps whatever the
    /// components carry now:
    /// only after every one of them is registered again with the new certificate (before that, it would remove
    /// the new certificate's FIC, and the next registration would break).
    pub fn finishing_rotation(&self, to: CertificateSpec) -> ProvisionSpec {
        self.finishing_rotation_in(to, &[])
    }

    /// [`finishing_rotation`](Self::finishing_rotation) in the environments whose org URL is one of `org_urls` (all
    /// of them when it is empty); only those environments' FICs are pruned.
    pub fn finishing_rotation_in(&self, to: CertificateSpec, org_urls: &[&str]) -> ProvisionSpec {
        let mut out = self.clone();
        out.prune = true;
        if !org_urls.is_empty() {
            out.environments.retain(|e| selected(e, org_urls));
        }
        for e in &mut out.environments {
            e.certificate = to.clone();
            e.certificates.clear();
        }
        out
    }

    /// The same spec at another subject format version (a version 1 to 2 upgrade, or its revert), without
    /// pruning: the previous version's FICs stay until [`finishing_rotation`](Self::finishing_rotation)-style
    /// pruning (`prune = true`) removes them once verify is clean.
    pub fn at_version(&self, version: SubjectFormatVersion) -> ProvisionSpec {
        let mut out = self.clone();
        out.version = version;
        out.prune = false;
        // Whatever version the rows have, this spec means to put them at `version` (a revert from a spec whose
        // file still says 1 included).
        out.allow_version_downgrade = true;
        out
    }
}

/// Whether an environment is one of `org_urls` (every one when it is empty).
fn selected(e: &EnvironmentSpec, org_urls: &[&str]) -> bool {
    org_urls.is_empty() || org_urls.iter().any(|u| e.is_at(u))
}
