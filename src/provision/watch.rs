//! Watching the plug-ins' token requests: the plug-in trace log read, token failures found and explained
//! against the spec (step 6 of the walkthrough).

use serde::Serialize;

use super::ProvisionError;
use super::engine::Provisioner;
use super::spec::ProvisionSpec;
use crate::cloud::CloudProfile;
use crate::diagnose::{ConfiguredFic, Diagnosis, DiagnosisInputs, explain, token_failure};
use crate::entities::{PluginTraceLog, PluginTraceLogSetting};

/// A token failure found in a trace log, explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenFailure {
    /// The environment.
    pub org_url: String,
    /// The trace log row.
    pub log: PluginTraceLog,
    /// What went wrong and how to fix it.
    pub diagnosis: Diagnosis,
}

/// One environment's trace log, as read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentWatch {
    /// The environment.
    pub org_url: String,
    /// Its trace log setting (Off means nothing is recorded: turn it on to see failures).
    pub setting: PluginTraceLogSetting,
    /// Rows read.
    pub rows: usize,
    /// The newest row's `createdon`, to continue from.
    pub newest: Option<String>,
}

/// What a watch pass found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchReport {
    /// Each environment.
    pub environments: Vec<EnvironmentWatch>,
    /// The token failures, oldest first per environment.
    pub failures: Vec<TokenFailure>,
}

impl Provisioner {
    /// Reads each environment's plug-in trace log since `since` (ISO 8601), finds the token failures and explains
    /// each against the identity's FICs and the spec. With `enable_tracing`, an environment whose setting is Off
    /// is switched to Exception first.
    pub async fn watch(
        &self,
        spec: &ProvisionSpec,
        since: &str,
        enable_tracing: bool,
    ) -> Result<WatchReport, ProvisionError> {
        // The lookup first: an app registration named in the spec by display name is only known after it.
        let application_id =
            self.identity().lookup(false).await.map_err(ProvisionError::identity)?.map(|found| found.client_id);
        let fics = match application_id {
            Some(_) => self.identity().list_fics().await.map_err(ProvisionError::identity)?,
            None => Vec::new(),
        };
        let configured: Vec<ConfiguredFic> = fics
            .into_iter()
            .map(|f| ConfiguredFic {
                subject: f.subject,
                issuer: Some(f.issuer),
                audience: f.audiences.into_iter().next(),
            })
            .collect();
        let mut report = WatchReport { environments: Vec::new(), failures: Vec::new() };
        for env in &spec.environments {
            let org = env.org_url.as_str();
            let api = |source| ProvisionError::api(org, source);
            let dv = self.connector().connect(org).map_err(api)?;
            let (organization, mut setting) = dv.plugin_trace_log_setting().await.map_err(api)?;
            if enable_tracing && setting == PluginTraceLogSetting::Off {
                dv.set_plugin_trace_log_setting(organization, PluginTraceLogSetting::Exception).await.map_err(api)?;
                setting = PluginTraceLogSetting::Exception;
            }
            let logs = dv.plugin_trace_logs(since).await.map_err(api)?;
            let detail = dv.retrieve_current_organization().await.map_err(api)?;
            // Only a help for the diagnosis: a certificate that cannot be read is left out, not an error.
            let certificate = env.certificate.certificate(&spec.base_dir).ok().flatten();
            let inputs = DiagnosisInputs {
                tenant_id: detail.tenant_id,
                environment_id: detail.environment_id,
                organization_id: Some(detail.organization_id),
                application_id,
                certificate,
                cloud: Some(CloudProfile::from(spec.cloud)),
                version: Some(spec.version),
                configured: configured.clone(),
                fics_known: true,
                ..DiagnosisInputs::default()
            };
            report.environments.push(EnvironmentWatch {
                org_url: env.org_url.clone(),
                setting,
                rows: logs.len(),
                newest: logs.iter().filter_map(|l| l.created_on.clone()).max(),
            });
            for log in logs {
                if let Some(error) = token_failure(&log) {
                    let diagnosis = explain(&error, &inputs);
                    report.failures.push(TokenFailure { org_url: env.org_url.clone(), log, diagnosis });
                }
            }
        }
        Ok(report)
    }
}
