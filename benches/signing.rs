//! Signing a 5 MB plug-in assembly (Authenticode: the image hash, the signature, the table, the checksum) against a
//! bare SHA-256 of the same bytes. The target: within 2x. Both are measured in the same run and the ratio
//! is printed at the end.

use std::hint::black_box;

use criterion::Criterion;

mod support;
use dataverse_mi::cert::{DevCertificateOptions, SigningIdentity, new_code_signing_certificate, sign_pe};
use dataverse_mi::secret::Secret;
use sha2::{Digest, Sha256};

const UNSIGNED: &[u8] = include_bytes!("../tests/fixtures/signed/unsigned.dll");

/// A 5 MB assembly: the fixture with 5 MB of data after its last section (an overlay, hashed like the rest).
fn five_megabytes() -> Vec<u8> {
    let mut pe = UNSIGNED.to_vec();
    pe.extend((0..5 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    pe
}

fn main() {
    let mut c = Criterion::default().configure_from_args().sample_size(20);
    let made = new_code_signing_certificate(&DevCertificateOptions::new("CN=Bench")).expect("a certificate");
    let password = Secret::new("bench");
    let identity =
        SigningIdentity::from_pkcs12(&made.to_pfx(&password).expect("a PFX"), &password).expect("its identity");
    let pe = five_megabytes();
    c.bench_function("sha256_bare/5mb", |b| b.iter(|| Sha256::digest(black_box(&pe))));
    c.bench_function("sign_pe/5mb", |b| b.iter(|| sign_pe(black_box(&pe), &identity, false).expect("signed")));
    c.final_summary();
    if let (Some(sha), Some(sign)) = (support::estimate_ns("sha256_bare/5mb"), support::estimate_ns("sign_pe/5mb")) {
        println!(
            "ratio: sign_pe {:.2} ms / bare sha256 {:.2} ms = {:.2} (target <= 2)",
            sign / 1e6,
            sha / 1e6,
            sign / sha
        );
    }
}
