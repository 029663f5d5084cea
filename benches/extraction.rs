//! Certificate extraction from a 1 MiB signed plug-in assembly and from a signed NuGet package, next to the
//! baseline the issue sets: reading the same file (warm page cache) plus one SHA-256 over its bytes.

use std::hint::black_box;

use criterion::Criterion;

mod support;
use dataverse_mi::cert::Certificate;
use sha2::{Digest, Sha256};

fn path(name: &str) -> String {
    format!("{}/tests/fixtures/signed/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    for (case, file) in
        [("dll_1mib", "big-signed.dll"), ("nupkg_1mib", "big-signed.nupkg"), ("nupkg_3kib", "signed.nupkg")]
    {
        let p = path(file);
        c.bench_function(&format!("baseline_read_sha256/{case}"), |b| {
            b.iter(|| Sha256::digest(std::fs::read(black_box(&p)).unwrap()))
        });
        c.bench_function(&format!("extract/{case}"), |b| {
            b.iter(|| Certificate::from_file(black_box(&p)).unwrap().certificate)
        });
    }
    c.final_summary();
    for case in ["dll_1mib", "nupkg_1mib", "nupkg_3kib"] {
        if let (Some(base), Some(extract)) = (
            support::estimate_ns(&format!("baseline_read_sha256/{case}")),
            support::estimate_ns(&format!("extract/{case}")),
        ) {
            println!(
                "{case}: extract {:.1} µs vs read + SHA-256 {:.1} µs = {:.2}x (target < 1)",
                extract / 1000.0,
                base / 1000.0,
                extract / base
            );
        }
    }
}
