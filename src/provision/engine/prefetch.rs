//! Plan's reads of one environment, fetched in batches ahead of the code that asks for them one by one: the
//! planning code stays as it is, and each answer it asks for comes from the batch when the batch has it.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::clients::{ComponentManagedIdentityFic, DataverseAnswer, DataverseRead};
use crate::entities::{OrganizationDetail, PluginAssembly, PluginPackage, PluginTraceLog, PluginTraceLogSetting};

/// A Dataverse client whose answers to some reads were fetched ahead, in batches; everything else goes to the
/// client it wraps. Each prefetched answer is used once.
#[derive(Debug)]
pub(super) struct Prefetched {
    inner: Arc<dyn DataverseApi>,
    answers: Mutex<HashMap<DataverseRead, Result<DataverseAnswer, ApiError>>>,
}

impl Prefetched {
    pub(super) fn new(inner: Arc<dyn DataverseApi>) -> Self {
        Prefetched { inner, answers: Mutex::new(HashMap::new()) }
    }

    /// Fetches `reads` in one batch (one round trip), for the calls that follow.
    pub(super) async fn fetch(&self, reads: Vec<DataverseRead>) {
        if reads.is_empty() {
            return;
        }
        let answers = self.inner.read_batch(&reads).await;
        let mut map = self.answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (read, answer) in reads.into_iter().zip(answers) {
            map.insert(read, answer);
        }
    }

    fn take(&self, read: &DataverseRead) -> Option<Result<DataverseAnswer, ApiError>> {
        self.answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(read)
    }
}

/// The reads plan makes for an environment's organization, rows and named components (the same queries
/// `read_components` sends, chunk for chunk).
pub(super) fn environment_reads(
    env_spec: &crate::provision::spec::EnvironmentSpec,
    application_id: Option<Uuid>,
) -> Vec<DataverseRead> {
    let mut reads = vec![DataverseRead::Organization];
    if let Some(a) = application_id {
        reads.push(DataverseRead::ManagedIdentities(format!("applicationid eq {a}")));
    }
    for (package, wanted) in [(false, &env_spec.plugin_assemblies), (true, &env_spec.plugin_packages)] {
        let names: Vec<String> = wanted
            .iter()
            .filter(|w| crate::guid::parse_guid(w).is_err() && !crate::provision::spec::is_pattern(w))
            .cloned()
            .collect();
        for chunk in names.chunks(NAMES_PER_QUERY) {
            reads.push(if package {
                DataverseRead::PackagesByName(chunk.to_vec())
            } else {
                DataverseRead::AssembliesByName(chunk.to_vec())
            });
        }
        for id in wanted.iter().filter_map(|w| crate::guid::parse_guid(w).ok()) {
            reads.push(if package { DataverseRead::Package(id) } else { DataverseRead::Assembly(id) });
        }
        if wanted.iter().any(|w| crate::provision::spec::is_pattern(w)) {
            reads.push(if package { DataverseRead::AllPackages } else { DataverseRead::AllAssemblies });
        }
    }
    reads
}

/// Takes the prefetched answer of `$read` if it is the `$variant`, else asks the wrapped client with `$call`.
macro_rules! prefetched {
    ($self:ident, $read:expr, $variant:ident, $call:expr) => {
        match $self.take(&$read) {
            Some(Ok(DataverseAnswer::$variant(v))) => Ok(v),
            Some(Err(e)) => Err(e),
            _ => $call.await,
        }
    };
}

#[async_trait]
impl DataverseApi for Prefetched {
    async fn retrieve_current_organization(&self) -> Result<OrganizationDetail, ApiError> {
        prefetched!(self, DataverseRead::Organization, Organization, self.inner.retrieve_current_organization())
    }
    async fn list_managed_identities(&self, filter: &str) -> Result<Vec<ManagedIdentity>, ApiError> {
        prefetched!(
            self,
            DataverseRead::ManagedIdentities(filter.to_owned()),
            ManagedIdentities,
            self.inner.list_managed_identities(filter)
        )
    }
    async fn get_managed_identity(&self, id: Uuid) -> Result<ManagedIdentity, ApiError> {
        self.inner.get_managed_identity(id).await
    }
    async fn create_managed_identity(&self, row: &NewManagedIdentity) -> Result<(), ApiError> {
        self.inner.create_managed_identity(row).await
    }
    async fn update_managed_identity(&self, id: Uuid, update: &ManagedIdentityUpdate) -> Result<(), ApiError> {
        self.inner.update_managed_identity(id, update).await
    }
    async fn find_plugin_assemblies(&self, names: &[&str]) -> Result<Vec<PluginAssembly>, ApiError> {
        let key = DataverseRead::AssembliesByName(names.iter().map(|n| (*n).to_owned()).collect());
        prefetched!(self, key, Assemblies, self.inner.find_plugin_assemblies(names))
    }
    async fn find_plugin_packages(&self, names: &[&str]) -> Result<Vec<PluginPackage>, ApiError> {
        let key = DataverseRead::PackagesByName(names.iter().map(|n| (*n).to_owned()).collect());
        prefetched!(self, key, Packages, self.inner.find_plugin_packages(names))
    }
    async fn get_plugin_assembly(&self, id: Uuid) -> Result<PluginAssembly, ApiError> {
        prefetched!(self, DataverseRead::Assembly(id), Assembly, self.inner.get_plugin_assembly(id))
    }
    async fn get_plugin_package(&self, id: Uuid) -> Result<PluginPackage, ApiError> {
        prefetched!(self, DataverseRead::Package(id), Package, self.inner.get_plugin_package(id))
    }
    async fn bind(&self, kind: ComponentKind, component: Uuid, managed_identity: Uuid) -> Result<(), ApiError> {
        self.inner.bind(kind, component, managed_identity).await
    }
    async fn unbind(&self, kind: ComponentKind, component: Uuid) -> Result<(), ApiError> {
        self.inner.unbind(kind, component).await
    }
    async fn delete_managed_identity(&self, id: Uuid) -> Result<(), ApiError> {
        self.inner.delete_managed_identity(id).await
    }
    async fn list_plugin_assemblies(&self) -> Result<Vec<PluginAssembly>, ApiError> {
        prefetched!(self, DataverseRead::AllAssemblies, Assemblies, self.inner.list_plugin_assemblies())
    }
    async fn list_plugin_packages(&self) -> Result<Vec<PluginPackage>, ApiError> {
        prefetched!(self, DataverseRead::AllPackages, Packages, self.inner.list_plugin_packages())
    }
    async fn registered_content(&self, kind: ComponentKind, component: Uuid) -> Result<Option<Vec<u8>>, ApiError> {
        prefetched!(
            self,
            DataverseRead::RegisteredContent(kind, component),
            RegisteredContent,
            self.inner.registered_content(kind, component)
        )
    }
    async fn component_fic(
        &self,
        kind: ComponentKind,
        component: Uuid,
    ) -> Result<ComponentManagedIdentityFic, ApiError> {
        prefetched!(
            self,
            DataverseRead::ComponentFic(kind, component),
            ComponentFic,
            self.inner.component_fic(kind, component)
        )
    }
    async fn plugin_trace_logs(&self, since: &str, type_prefix: Option<&str>) -> Result<Vec<PluginTraceLog>, ApiError> {
        self.inner.plugin_trace_logs(since, type_prefix).await
    }
    async fn plugin_trace_log_setting(&self) -> Result<(Uuid, PluginTraceLogSetting), ApiError> {
        self.inner.plugin_trace_log_setting().await
    }
    async fn set_plugin_trace_log_setting(
        &self,
        organization: Uuid,
        setting: PluginTraceLogSetting,
    ) -> Result<(), ApiError> {
        self.inner.set_plugin_trace_log_setting(organization, setting).await
    }
    async fn read_batch(&self, reads: &[DataverseRead]) -> Vec<Result<DataverseAnswer, ApiError>> {
        self.inner.read_batch(reads).await
    }
    async fn write_change_set(&self, writes: &[crate::clients::DataverseWrite]) -> Result<(), ApiError> {
        self.inner.write_change_set(writes).await
    }
}
