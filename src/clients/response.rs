//! Reading answers: a JSON body decoded with the path of what failed, a created row's id, a page of a list.

use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{ApiError, Service};

/// What a create returned: the row as stored, or only its id (from `OData-EntityId`) when the service answered
/// `204 No Content` although the representation was asked for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Created<T> {
    /// The id from `OData-EntityId`, when the answer had no body.
    pub id: Option<Uuid>,
    /// The row as stored, when the answer had a body.
    pub row: Option<T>,
}

/// The answer of a create (`Prefer: return=representation`): the created row, or, where the service answers 204
/// anyway, the new row's id from the `OData-EntityId` header.
pub(crate) fn created<T: DeserializeOwned>(
    service: Service,
    operation: &'static str,
    response: &http::Response<Bytes>,
) -> Result<Created<T>, ApiError> {
    if !response.body().is_empty() {
        let row: T = decode(service, operation, response.body())?;
        return Ok(Created { id: None, row: Some(row) });
    }
    let header = response.headers().get("odata-entityid").and_then(|v| v.to_str().ok());
    let id = header.and_then(entity_id_of).ok_or_else(|| ApiError::Decode {
        service,
        operation,
        path: "OData-EntityId".into(),
        message: match header {
            Some(h) => {
                format!("the answer has no body and its OData-EntityId '{}' names no row id", crate::guid::clip(h))
            }
            None => "the answer has neither a body nor an OData-EntityId header".into(),
        },
        source: None,
    })?;
    Ok(Created { id: Some(id), row: None })
}

/// The row id at the end of an `OData-EntityId` URL: `.../managedidentities(4b037f42-...)`.
fn entity_id_of(url: &str) -> Option<Uuid> {
    let inner = url.trim_end().strip_suffix(')')?;
    let start = inner.rfind('(')?;
    crate::guid::parse_guid(&inner[start + 1..]).ok()
}

pub(crate) fn decode<T: DeserializeOwned>(
    service: Service,
    operation: &'static str,
    body: &[u8],
) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| ApiError::Decode {
        service,
        operation,
        path: e.path().to_string(),
        message: e.inner().to_string(),
        source: Some(Arc::new(e.into_inner())),
    })
}

/// A page of an OData collection.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Page<T> {
    pub(crate) value: Vec<T>,
    #[serde(rename = "@odata.nextLink", alias = "nextLink", default)]
    pub(crate) next_link: Option<String>,
}
