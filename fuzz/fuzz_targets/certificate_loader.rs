//! Every certificate form (DER, PEM, PKCS#12, signed PE, signed zip) through the sniffing loader.
#![no_main]

use dataverse_mi::cert::Certificate;
use dataverse_mi::secret::Secret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Certificate::from_bytes(data);
    let _ = Certificate::from_der(data);
    let _ = Certificate::from_signed_assembly(data);
    let _ = Certificate::from_signed_package(data);
    let _ = Certificate::from_pkcs12(data, &Secret::new("fixture"));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Certificate::from_pem(text);
    }
    if let Ok(c) = Certificate::from_der(data) {
        let _ = (c.issuer_hash(), c.subject_hash(), c.sha1_thumbprint(), c.validity());
    }
});
