//! A `$batch` answer, request and content type of any shape: never a panic, never more parts than the limit, and
//! what the server side writes reads back the same.
#![no_main]

use dataverse_mi::testkit::batch::{BatchResponse, boundary, build_response, parse_request, parse_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is the content type, the rest the body.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let content_type = String::from_utf8_lossy(&data[..split]);
    let body = data.get(split + 1..).unwrap_or_default();
    let _ = parse_request(&content_type, body);
    if let Ok(responses) = parse_response(&content_type, body) {
        assert!(responses.len() <= 4097);
        // Written back by the server side, each as its own part, under a fresh random boundary (as a writer must
        // pick one that no part contains): as many responses come back.
        let answers: Vec<Result<Vec<BatchResponse>, BatchResponse>> =
            responses.iter().map(|r| Err(BatchResponse { content_id: None, ..r.clone() })).collect();
        let b = boundary("b_fuzz");
        let again = parse_response(&format!("multipart/mixed; boundary={b}"), &build_response(&b, &answers));
        if let Ok(again) = again {
            assert_eq!(again.len(), responses.len());
        }
    }
});
