//! Auditing an estate against the fake: every kind of finding, each with its evidence and fix; the specs `--fix`
//! writes, applied, clear the fixable ones; an environment that cannot be read is reported, not dropped.
#![cfg(feature = "testkit")]

use std::time::{Duration, SystemTime};

use dataverse_mi::audit::{AuditOptions, AuditReport, Auditor, FindingKind, Severity};
use dataverse_mi::cloud::{Cloud, CloudProfile};
use dataverse_mi::http::RetryOptions;
use dataverse_mi::provision::ProvisionOptions;
use dataverse_mi::testkit::{FakeOptions, FakePlatform, Seed};

fn at(text: &str) -> SystemTime {
    humantime::parse_rfc3339(text).unwrap()
}

fn retry() -> RetryOptions {
    RetryOptions { jitter: 0.0, ..RetryOptions::default() }
}

fn estate() -> (FakePlatform, Vec<String>) {
    let seed = Seed::estate(9);
    let urls = seed.environments.iter().map(|e| format!("https://{}", e.host)).collect();
    (seed.build(FakeOptions::default()).unwrap(), urls)
}

async fn audit(fake: &FakePlatform, urls: &[String], options: &AuditOptions) -> AuditReport {
    let platform = fake.client_platform(8, retry()).unwrap();
    let auditor = Auditor::on_platform(&platform, &CloudProfile::from(Cloud::Public)).unwrap();
    auditor.audit(urls, options).await
}

/// The findings of `kind`, as (environment label, component) pairs.
fn where_(report: &AuditReport, kind: FindingKind) -> Vec<String> {
    report
        .of_kind(kind)
        .iter()
        .map(|f| {
            let env = f
                .org_url
                .as_deref()
                .unwrap_or("")
                .trim_start_matches("https://estate-")
                .split('.')
                .next()
                .unwrap_or("")
                .to_owned();
            format!("{env}{}", f.component.as_deref().map(|c| format!(" {c}")).unwrap_or_default())
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn every_kind_of_finding_in_the_estate_with_its_evidence_and_fix() {
    let (fake, urls) = estate();
    let report = audit(&fake, &urls, &AuditOptions::default().at(at("2026-12-20T00:00:00Z"))).await;
    assert!(report.environments.iter().all(|e| e.error.is_none()), "{report}");
    assert_eq!(where_(&report, FindingKind::Version1), ["001-version-1"]);
    assert_eq!(where_(&report, FindingKind::DeprecatedVersion), ["002-version-0"]);
    assert_eq!(where_(&report, FindingKind::RowOtherTenant), ["003-import"]);
    assert_eq!(where_(&report, FindingKind::UnknownApplication), ["004-unknown-app"]);
    assert_eq!(where_(&report, FindingKind::AssemblyBoundInPackage), ["005-package Estate.Plugins5"]);
    assert_eq!(where_(&report, FindingKind::ComponentUnsigned), ["006-unsigned Estate.Plugins6"]);
    assert_eq!(where_(&report, FindingKind::CertificateExpiring), ["007-expiring Estate.Plugins7"]);
    assert!(where_(&report, FindingKind::RowUnused).contains(&"008-unused".to_owned()));
    assert_eq!(where_(&report, FindingKind::FicStale), ["000-ok"]);
    assert_eq!(report.of_kind(FindingKind::FicBudget)[0].evidence, "17 of 20 FICs used");
    // The import's row has no FIC here, so its plug-in fails at token time now.
    assert!(where_(&report, FindingKind::NoFicForEnvironment).contains(&"003-import".to_owned()));
    assert_eq!(where_(&report, FindingKind::SubjectWithoutFic), ["003-import Estate.Plugins3"]);
    assert_eq!(report.worst(), Some(Severity::Error));
    // The well-kept environment has nothing against it but the stale FIC of its identity.
    let ok: Vec<_> =
        report.findings.iter().filter(|f| f.org_url.as_deref().is_some_and(|u| u.contains("000-ok"))).collect();
    assert!(ok.iter().all(|f| f.kind == FindingKind::FicStale), "{ok:?}");
    // Evidence and fix, in words.
    let unsigned = &report.of_kind(FindingKind::ComponentUnsigned)[0];
    assert!(unsigned.evidence.contains("Estate.Plugins6"), "{}", unsigned.evidence);
    assert!(unsigned.fix.contains("sign it"), "{}", unsigned.fix);
    let expiring = &report.of_kind(FindingKind::CertificateExpiring)[0];
    assert!(
        expiring.evidence.contains("2027-01-15") && expiring.evidence.contains("in 26 day(s)"),
        "{}",
        expiring.evidence
    );
    // Every kind the audit knows was found, but the expired certificate (next test).
    for kind in FindingKind::ALL.iter().filter(|k| **k != FindingKind::CertificateExpired) {
        assert!(!report.of_kind(*kind).is_empty(), "{} not found:\n{report}", kind.id());
    }
    // The three renderings.
    let text = report.to_string();
    assert!(text.contains("[subject_without_fic]") && text.contains("worst: error"), "{text}");
    let md = report.to_markdown();
    assert!(md.starts_with("# Plug-in managed identity audit") && md.contains("| `row_other_tenant` | 1 |"), "{md}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["findings"][0]["severity"], "error");
    assert!(json["findings"].as_array().unwrap().iter().any(|f| f["kind"] == "fic_budget"));
}

#[tokio::test(start_paused = true)]
async fn a_certificate_past_its_end_is_expired() {
    let (fake, urls) = estate();
    let report = audit(&fake, &urls, &AuditOptions::default().at(at("2027-02-01T00:00:00Z"))).await;
    assert_eq!(where_(&report, FindingKind::CertificateExpired), ["007-expiring Estate.Plugins7"]);
    assert!(report.of_kind(FindingKind::CertificateExpiring).is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_specs_fix_writes_applied_clear_the_fixable_findings_and_nothing_else() {
    let (fake, urls) = estate();
    let options = AuditOptions::default().at(at("2026-12-20T00:00:00Z"));
    let before = audit(&fake, &urls, &options).await;
    let fixable: Vec<&'static str> = before.findings.iter().filter(|f| f.fixable).map(|f| f.kind.id()).collect();
    assert!(
        fixable.contains(&"version_1")
            && fixable.contains(&"row_other_tenant")
            && fixable.contains(&"assembly_bound_in_package"),
        "{fixable:?}"
    );
    let writes_before = fake.writes();
    let specs = before.fix_specs();
    assert!(!specs.is_empty());
    assert_eq!(fake.writes(), writes_before, "the audit writes nothing");
    for (file, spec) in &specs {
        // What --fix writes reads back as the same spec.
        let text = spec.to_toml().unwrap();
        let read = dataverse_mi::provision::ProvisionSpec::from_toml(&text).unwrap();
        assert_eq!(&read, spec, "{file}");
        let engine = fake.provisioner(spec, 8, retry(), ProvisionOptions::default()).unwrap().provisioner;
        let plan = engine.plan(spec).await.unwrap_or_else(|e| panic!("{file}: {e}"));
        let report = engine.apply(&plan).await;
        assert!(report.is_success(), "{file}: {report}");
    }
    let after = audit(&fake, &urls, &options).await;
    let left: Vec<_> = after.findings.iter().filter(|f| f.fixable).collect();
    assert!(left.is_empty(), "still fixable after apply: {left:#?}");
    // What cannot be fixed by a spec is still there, as before.
    for kind in [
        FindingKind::UnknownApplication,
        FindingKind::ComponentUnsigned,
        FindingKind::CertificateExpiring,
        FindingKind::RowUnused,
    ] {
        assert_eq!(after.of_kind(kind).len(), before.of_kind(kind).len(), "{}", kind.id());
    }
}

#[tokio::test(start_paused = true)]
async fn an_environment_that_cannot_be_read_is_reported_and_the_others_audited() {
    let (fake, mut urls) = estate();
    urls.push("https://gone.crm.dynamics.com".into());
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    let options = AuditOptions::default().progress(move |_, total| {
        assert_eq!(total, 10);
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let report = audit(&fake, &urls, &options).await;
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 10, "progress after each environment");
    let gone = report.environments.last().unwrap();
    assert!(gone.error.is_some(), "{gone:?}");
    assert!(report.environments[..9].iter().all(|e| e.error.is_none()));
    assert!(report.to_string().contains("gone.crm.dynamics.com") && report.to_string().contains("not read"));
    let _ = Duration::ZERO;
}

#[tokio::test(start_paused = true)]
async fn a_component_whose_bytes_the_platform_does_not_keep_is_judged_by_the_platforms_answer() {
    let (fake, urls) = estate();
    // An assembly registered without bytes and without a signature, bound to the well-kept environment's row.
    let host = "estate-000-ok.crm.dynamics.com";
    let bare = fake.add_plugin_assembly(host, "Bare.Plugins", None);
    let row = fake.managed_identities(host)[0].id;
    fake.seed_binding(host, bare, Some(row));
    let report = audit(&fake, &urls, &AuditOptions::default().at(at("2026-12-20T00:00:00Z"))).await;
    let unsigned: Vec<_> = report.of_kind(FindingKind::ComponentUnsigned);
    let bare = unsigned.iter().find(|f| f.component.as_deref() == Some("Bare.Plugins")).expect("named");
    assert!(
        bare.evidence.contains("the platform answers") && bare.evidence.contains("must be signed"),
        "{}",
        bare.evidence
    );
}
