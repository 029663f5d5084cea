//! Offline core: GUID encoding, certificate loading, subject building and parsing.
//!
//! The target: building a subject from a certificate's DER costs at most 3x a bare SHA-256 over the
//! same bytes. Both are measured in the same run and the ratio is printed at the end.

use std::hint::black_box;

use criterion::Criterion;

mod support;
use dataverse_mi::cert::Certificate;
use dataverse_mi::cloud::{Cloud, CloudProfile};
use dataverse_mi::guid::encode_guid;
use dataverse_mi::subject::{CertificateBinding, CertificateKind, SubjectFormatVersion, SubjectIdentifier};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const SELF_SIGNED: &[u8] = include_bytes!("../examples/contoso-plugins.cer");
const LEAF: &[u8] = include_bytes!("../tests/fixtures/leaf.cer");

fn subject_from_der(der: &[u8], cloud: &CloudProfile, tenant: Uuid, env: Uuid) -> String {
    let cert = Certificate::from_der(der).expect("fixture is valid");
    let binding = CertificateBinding::for_certificate(&cert, SubjectFormatVersion::V2, CertificateKind::Auto)
        .expect("v2 never fails");
    SubjectIdentifier::new(cloud, tenant, env, binding).expect("valid inputs").to_string()
}

fn benches(c: &mut Criterion) {
    let tenant = Uuid::parse_str("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
    let env = Uuid::parse_str("7efcc31a-c410-e20e-9b3c-3ea55e7f9c56").unwrap();
    let cloud = CloudProfile::from(Cloud::Public);

    c.bench_function("guid_encode", |b| b.iter(|| encode_guid(black_box(tenant))));
    c.bench_function("sha256_bare/self_signed", |b| b.iter(|| Sha256::digest(black_box(SELF_SIGNED))));
    c.bench_function("cert_load/self_signed", |b| b.iter(|| Certificate::from_der(black_box(SELF_SIGNED))));
    c.bench_function("subject_from_der/self_signed", |b| {
        b.iter(|| subject_from_der(black_box(SELF_SIGNED), &cloud, tenant, env))
    });
    c.bench_function("sha256_bare/ca_issued", |b| b.iter(|| Sha256::digest(black_box(LEAF))));
    c.bench_function("subject_from_der/ca_issued", |b| {
        b.iter(|| subject_from_der(black_box(LEAF), &cloud, tenant, env))
    });
    let text = subject_from_der(LEAF, &cloud, tenant, env);
    c.bench_function("subject_parse", |b| b.iter(|| black_box(&text).parse::<SubjectIdentifier>()));
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    for case in ["self_signed", "ca_issued"] {
        if let (Some(sha), Some(subject)) = (
            support::estimate_ns(&format!("sha256_bare/{case}")),
            support::estimate_ns(&format!("subject_from_der/{case}")),
        ) {
            println!(
                "ratio {case}: subject_from_der {subject:.0} ns / bare sha256 {sha:.0} ns = {:.2} (target <= 3)",
                subject / sha
            );
        }
    }
}
