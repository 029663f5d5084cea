//! `Retry-After` and friends, in every form a server may send: never a panic, and a wait that can be added to a
//! time without overflowing once the clients cap it.
#![no_main]

use std::time::{Duration, SystemTime};

use dataverse_mi::http::{MAX_RETRY_WAIT, server_retry_after};
use dataverse_mi::reexports::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for (i, part) in data.split(|c| *c == 0).enumerate().take(4) {
        let name = ["retry-after", "retry-after-ms", "x-ms-retry-after-ms", "date"][i];
        if let Ok(value) = HeaderValue::from_bytes(part) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    if let Some(wait) = server_retry_after(&headers, now) {
        let _ = tokio::time::Instant::now().checked_add(wait.min(MAX_RETRY_WAIT)).expect("a capped wait always fits");
    }
});
