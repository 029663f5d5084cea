//! The response path: whatever a server answers (status, headers, body), the clients end with a value or a typed
//! error, never a panic or a hang: `Retry-After` and friends, error bodies, OData pages and their next links,
//! creates answered without a body. The input is `status byte, header lines, "\n\n", body`; the same answer comes
//! back to every request, so paging links loop and retries repeat (on a paused clock).
#![no_main]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dataverse_mi::auth::{Secret, StaticToken};
use dataverse_mi::clients::{ClientOptions, ComponentKind, DataverseClient, OrgUrl};
use dataverse_mi::entities::NewManagedIdentity;
use dataverse_mi::http::{RetryOptions, Transport, TransportError};
use dataverse_mi::reexports::{async_trait, bytes::Bytes, http};
use dataverse_mi::subject::SubjectFormatVersion;
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

const STATUSES: [u16; 14] = [200, 201, 204, 301, 400, 401, 403, 404, 409, 412, 429, 500, 502, 503];

#[derive(Debug)]
struct Answer(http::Response<Bytes>);

#[async_trait]
impl Transport for Answer {
    async fn send(&self, _: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
        let mut out = http::Response::new(self.0.body().clone());
        *out.status_mut() = self.0.status();
        *out.headers_mut() = self.0.headers().clone();
        Ok(out)
    }
}

fn answer(data: &[u8]) -> Option<http::Response<Bytes>> {
    let (&first, rest) = data.split_first()?;
    let split = rest.windows(2).position(|w| w == b"\n\n").unwrap_or(rest.len());
    let (head, body) = (&rest[..split], rest.get(split + 2..).unwrap_or(&[]));
    let mut b = http::Response::builder().status(STATUSES[usize::from(first) % STATUSES.len()]);
    for line in head.split(|c| *c == b'\n') {
        let Some(colon) = line.iter().position(|c| *c == b':') else { continue };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(name), http::HeaderValue::from_bytes(value)) {
            b = b.header(name, value);
        }
    }
    b.body(Bytes::copy_from_slice(body)).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(response) = answer(data) else { return };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build() else {
        return;
    };
    let token = Arc::new(StaticToken::new(Secret::new("t"), SystemTime::now() + Duration::from_secs(3600)));
    let options = ClientOptions {
        retry: RetryOptions { max_attempts: 3, ..RetryOptions::default() },
        transport: Some(Arc::new(Answer(response))),
        max_pages: 50,
        ..ClientOptions::default()
    };
    let Ok(org) = OrgUrl::parse("https://contoso.crm.dynamics.com") else { return };
    let Ok(client) = DataverseClient::new(org, token, options) else { return };
    let row = NewManagedIdentity::for_plugins(
        Uuid::from_u128(1),
        Uuid::from_u128(2),
        Uuid::from_u128(3),
        SubjectFormatVersion::V2,
    );
    rt.block_on(async {
        let _ = client.who_am_i().await.map_err(|e| e.to_string());
        let _ = client.retrieve_current_organization().await.map_err(|e| e.to_string());
        let _ = client.list_managed_identities(None).await.map_err(|e| e.to_string());
        let _ = client.create_managed_identity(&row).await.map_err(|e| e.to_string());
        let _ = client.get_component_managed_identity_fic(ComponentKind::PluginAssembly, Uuid::from_u128(4)).await;
        let _ = client.list_plugin_trace_logs("2026-11-22T10:00:00Z", Some("Contoso")).await;
    });
});
