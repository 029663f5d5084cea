//! The subject parser and explainer: never panic, and a subject that parses displays back to itself.
#![no_main]

use dataverse_mi::subject::{SubjectIdentifier, explain_subject};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = explain_subject(text).to_string();
        if let Ok(s) = text.parse::<SubjectIdentifier>() {
            assert_eq!(s.to_string(), text.trim());
        }
    }
});
