//! The Entra error parser and the explainer: never panic on any text.
#![no_main]

use dataverse_mi::diagnose::{ConfiguredFic, DiagnosisInputs, explain, parse_error};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(error) = parse_error(text) {
        // Split on a character boundary (the first fuzzing run found the harness splitting inside one).
        let mid = (0..=text.len() / 2).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let (a, b) = text.split_at(mid);
        let inputs = DiagnosisInputs {
            configured: vec![ConfiguredFic::from(a), ConfiguredFic::from(b)],
            ..DiagnosisInputs::default()
        };
        let _ = explain(&error, &inputs).to_string();
    }
});
