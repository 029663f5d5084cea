//! Where the audit finds an identity's kind and its FICs: Graph and ARM through the platform, or a directory
//! of the caller's.

use std::fmt;

use async_trait::async_trait;
use uuid::Uuid;

use super::EstateIdentity;
use super::model::uami_ref;
use crate::clients::{ApiError, AppRef, ArmClient, GraphClient};
use crate::fic::FederatedIdentityCredential;

/// The directory reads an audit needs: who a client id is, and its FICs.
#[async_trait]
pub trait EstateDirectory: Send + Sync + fmt::Debug {
    /// The identity with this client id; `None` when the tenant has none.
    async fn identity(&self, client_id: Uuid) -> Result<Option<EstateIdentity>, ApiError>;
    /// Its FICs.
    async fn fics(&self, identity: &EstateIdentity) -> Result<Vec<FederatedIdentityCredential>, ApiError>;
}

/// The production directory: Microsoft Graph for who a client id is and an application's FICs, ARM for a
/// user-assigned identity's.
#[derive(Debug, Clone)]
pub struct PlatformDirectory {
    graph: GraphClient,
    arm: ArmClient,
}

impl PlatformDirectory {
    /// Over these clients.
    pub fn new(graph: GraphClient, arm: ArmClient) -> Self {
        PlatformDirectory { graph, arm }
    }
}

#[async_trait]
impl EstateDirectory for PlatformDirectory {
    async fn identity(&self, client_id: Uuid) -> Result<Option<EstateIdentity>, ApiError> {
        let principal = match self.graph.send(crate::clients::graph::requests::directory_principal(client_id)).await {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(match principal.user_assigned_resource_id() {
            Some(resource_id) => EstateIdentity::UserAssigned { client_id, resource_id: resource_id.to_owned() },
            None => EstateIdentity::AppRegistration { app_id: client_id },
        }))
    }

    async fn fics(&self, identity: &EstateIdentity) -> Result<Vec<FederatedIdentityCredential>, ApiError> {
        match identity {
            EstateIdentity::AppRegistration { app_id } => {
                Ok(self.graph.list_fics(AppRef::AppId(*app_id)).await?.into_iter().map(|f| f.credential).collect())
            }
            EstateIdentity::UserAssigned { resource_id, .. } => {
                let r = uami_ref(resource_id)
                    .ok_or_else(|| ApiError::invalid("identity", format!("'{resource_id}' is no identity's id")))?;
                Ok(self.arm.list_fics(&r).await?.into_iter().map(|f| f.credential).collect())
            }
        }
    }
}
