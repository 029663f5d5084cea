//! Subject identifiers: published vectors, every cloud, round trips, and each hand-made mistake recognised.

use dataverse_mi::cert::{Certificate, CertificateHash, NameHash};
use dataverse_mi::cloud::{Cloud, CloudProfile};
use dataverse_mi::environment::EnvironmentId;
use dataverse_mi::guid::{POWER_PLATFORM_MI_APP_ID, encode_guid, encode_guid_big_endian};
use dataverse_mi::subject::{
    CertificateBinding, CertificateKind, LegacyV0, Severity, SubjectError, SubjectFormatVersion, SubjectIdentifier,
    SubjectProblem, explain_subject,
};
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
// A real-world shape: environment ids are not always version 4 GUIDs.
const ENV: Uuid = Uuid::from_u128(0x7efcc31a_c410_e20e_9b3c_3ea55e7f9c56);

fn fixture(name: &str) -> Certificate {
    Certificate::from_file(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap().certificate
}

fn ids(s: &str) -> Vec<&'static str> {
    explain_subject(s).problems.iter().map(SubjectProblem::id).collect()
}

#[test]
fn self_signed_subject_is_exact() {
    let cert = fixture("self-signed-comma.cer");
    let binding = CertificateBinding::for_certificate(&cert, SubjectFormatVersion::V2, CertificateKind::Auto).unwrap();
    let s = SubjectIdentifier::new(&Cloud::Public.into(), TENANT, ENV, binding).unwrap();
    assert_eq!(
        s.to_string(),
        format!(
            "/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/7efcc31a-c410-e20e-9b3c-3ea55e7f9c56/h/{}",
            "a9f605f46541a0aa9a71a0be9c69960abc6cfa3ff1cffaa02321581ff218ac91"
        )
    );
}

#[test]
fn trusted_v2_subject_hashes_the_dotnet_names() {
    let cert = fixture("leaf.cer");
    let binding = CertificateBinding::for_certificate(&cert, SubjectFormatVersion::V2, CertificateKind::Auto).unwrap();
    let s = SubjectIdentifier::new(&Cloud::Public.into(), TENANT, ENV, binding).unwrap();
    let i = NameHash::of_name("CN=Contoso Root CA, O=Contoso, C=US");
    let sub = NameHash::of_name("CN=Contoso Plug-in Signing, OU=Dataverse, O=Contoso, C=US");
    assert_eq!(
        s.to_string(),
        format!(
            "/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/7efcc31a-c410-e20e-9b3c-3ea55e7f9c56/i/{i}/s/{sub}"
        )
    );
    assert_eq!(i.to_string().len(), 43);
}

#[test]
fn trusted_v1_carries_the_cn_values_and_refuses_documented_failures() {
    // Microsoft's own published version 1 subject (Dynamics 365 Contact Center docs, a Microsoft-signed plug-in):
    // the issuer's and the subject's CN values, no `CN=`, spaces kept. The names are those of Microsoft's code
    // signing certificates as .NET prints them.
    let published = "/eid1/c/pub/t/urwIj5vn7Eq6VeRuc0PF9Q/a/CQSGf3JJtEi27nY2ePL7UQ/n/plugin/e/137c15c0-84b4-ec8f-9666-012432c11550/i/Microsoft Code Signing PCA 2011/s/Microsoft Corporation";
    let v1 = CertificateBinding::from_names(
        "CN=Microsoft Code Signing PCA 2011, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        "CN=Microsoft Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        SubjectFormatVersion::V1,
    )
    .unwrap();
    assert!(published.ends_with(&format!("/{v1}")), "{v1}");
    let explained = explain_subject(published);
    assert_eq!(explained.parts.binding, Some(v1));
    // Microsoft's internal cluster's app segment is a suspicion only; nothing about the names is wrong.
    assert!(explained.problems.iter().all(|p| p.severity() == Severity::Suspicion), "{explained}");

    let v1 = CertificateBinding::from_names("CN=Contoso Root CA", "CN=Plugins", SubjectFormatVersion::V1).unwrap();
    let s = SubjectIdentifier::new(&Cloud::Public.into(), TENANT, ENV, v1).unwrap();
    assert!(s.to_string().ends_with("/e/7efcc31a-c410-e20e-9b3c-3ea55e7f9c56/i/Contoso Root CA/s/Plugins"));
    assert_eq!(s.to_string().parse::<SubjectIdentifier>().unwrap(), s);

    // An ordinary CA-issued certificate (tests/fixtures/make-certs.sh: issuer CN "Contoso Root CA", subject CN
    // "Contoso Plug-in Signing"): the CN values, not the whole names.
    let leaf = fixture("leaf.cer");
    let v1 = CertificateBinding::for_certificate(&leaf, SubjectFormatVersion::V1, CertificateKind::Trusted).unwrap();
    let s = SubjectIdentifier::new(&Cloud::Public.into(), TENANT, ENV, v1).unwrap();
    assert!(s.to_string().ends_with("/i/Contoso Root CA/s/Contoso Plug-in Signing"), "{s}");
    assert_eq!(s.to_string().parse::<SubjectIdentifier>().unwrap(), s);
    assert!(explain_subject(s.as_str()).is_ok());

    // What Microsoft documents as failing: a comma inside the CN ("CN=Contoso, Inc."), here in a real
    // certificate whose CN is "Strings, All" (issuer and subject: it is self-signed).
    let comma = fixture("string-types.cer");
    let err =
        CertificateBinding::for_certificate(&comma, SubjectFormatVersion::V1, CertificateKind::Trusted).unwrap_err();
    match &err {
        SubjectError::V1NameHasComma { which: "issuer", cn, .. } => assert_eq!(cn, "Strings, All"),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("AADSTS700213"));
    assert!(err.to_string().contains("the CN 'Strings, All'"), "{err}");
    let err = CertificateBinding::from_names(r#"CN="Contoso, Inc.", O=Contoso"#, "CN=x", SubjectFormatVersion::V1)
        .unwrap_err();
    assert!(matches!(&err, SubjectError::V1NameHasComma { cn, .. } if cn == "Contoso, Inc."), "{err:?}");
    // Non-ASCII inside the CN (the subject's here), in a real certificate and as text.
    let err =
        CertificateBinding::for_certificate(&fixture("utf8.cer"), SubjectFormatVersion::V1, CertificateKind::Trusted)
            .unwrap_err();
    assert!(matches!(&err, SubjectError::V1NameNotAscii { cn, .. } if cn == "日本語 Plug-in"), "{err:?}");
    let err = CertificateBinding::from_names("CN=Zoë", "CN=x", SubjectFormatVersion::V1).unwrap_err();
    assert!(matches!(err, SubjectError::V1NameNotAscii { .. }));
    assert!(err.to_string().contains("AADSTS70050"));
    // Outside the CN, neither matters: only the CN goes into the subject.
    let ok =
        CertificateBinding::from_names("CN=Root, O=Zoë", "CN=Plugins, O=\"Contoso, Ltd\"", SubjectFormatVersion::V1)
            .unwrap();
    assert_eq!(ok.to_string(), "i/Root/s/Plugins");
    // A multi-valued RDN and a CN that is not first are read too.
    let err = CertificateBinding::from_names("O=Contoso + CN=\"a,b\"", "CN=x", SubjectFormatVersion::V1).unwrap_err();
    assert!(matches!(&err, SubjectError::V1NameHasComma { cn, .. } if cn == "a,b"), "{err:?}");
    // The CN values given directly are checked the same way, and a whole name there is named.
    assert!(CertificateBinding::v1_from_common_names("Contoso Root CA", "Plugins").is_ok());
    let err = CertificateBinding::v1_from_common_names("CN=Contoso Root CA, O=Contoso", "Plugins").unwrap_err();
    assert!(matches!(&err, SubjectError::V1WholeName { cn, .. } if cn == "Contoso Root CA"), "{err:?}");
}

#[test]
fn v1_names_without_a_cn_or_with_several_follow_the_dotnet_simple_name_rule() {
    // dotnet/runtime's GetSimpleNameInfo (X509NameType.SimpleName): most specific first, the first CN; else OU,
    // O, E; else the first other attribute. Documented in docs/platform.md; the platform's answer wins.
    for (name, simple) in [
        ("CN=Leaf, OU=Team, O=Contoso, C=US", "Leaf"),
        ("CN=Leaf, CN=Outer, O=Contoso", "Leaf"),
        ("OU=Signing, O=Contoso, C=US", "Signing"),
        ("O=Contoso, C=US", "Contoso"),
        ("E=pki@contoso.com, C=US", "pki@contoso.com"),
        ("C=US", "US"),
        ("SERIALNUMBER=42, L=Redmond", "42"),
        ("O=Contoso + CN=Plug-ins", "Plug-ins"),
    ] {
        assert_eq!(dataverse_mi::cert::v1_simple_name(name).as_deref(), Some(simple), "{name}");
    }
    assert_eq!(dataverse_mi::cert::v1_simple_name(""), None);
    let err = CertificateBinding::from_names("", "CN=x", SubjectFormatVersion::V1).unwrap_err();
    assert!(matches!(err, SubjectError::V1NameUnusable { which: "issuer", .. }), "{err:?}");
}

#[test]
fn a_version_1_subject_with_whole_names_is_a_named_mistake_with_its_correction() {
    // What Microsoft's migration scripts (and earlier versions of this crate) wrote.
    let whole =
        good("i/CN=Contoso Root CA, O=Contoso, C=US/s/CN=Contoso Plug-in Signing, OU=Dataverse, O=Contoso, C=US");
    let e = explain_subject(&whole);
    let ids: Vec<_> = e.problems.iter().map(SubjectProblem::id).collect();
    assert_eq!(ids, ["v1_whole_name", "v1_whole_name"], "{e}");
    assert_eq!(e.corrected_subject.as_deref(), Some(good("i/Contoso Root CA/s/Contoso Plug-in Signing").as_str()));
    assert!(e.to_string().contains("corrected:"), "{e}");
    assert!(whole.parse::<SubjectIdentifier>().is_err());
    // A single-RDN whole name too.
    assert_eq!(ids_of(&good("i/CN=Root/s/Plugins")), ["v1_whole_name"]);
}

fn ids_of(subject: &str) -> Vec<&'static str> {
    explain_subject(subject).problems.iter().map(SubjectProblem::id).collect()
}

#[test]
fn kinds_can_be_forced() {
    let leaf = fixture("leaf.cer");
    let forced =
        CertificateBinding::for_certificate(&leaf, SubjectFormatVersion::V2, CertificateKind::SelfSigned).unwrap();
    assert_eq!(forced, CertificateBinding::SelfSigned { sha256: leaf.sha256() });
    let ca = fixture("ca.cer");
    let trusted = CertificateBinding::for_certificate(&ca, SubjectFormatVersion::V2, CertificateKind::Trusted).unwrap();
    assert!(matches!(trusted, CertificateBinding::TrustedV2 { .. }));
    // Self-issued but not self-signed: auto picks the trusted form.
    let si = fixture("self-issued.cer");
    let auto = CertificateBinding::for_certificate(&si, SubjectFormatVersion::V2, CertificateKind::Auto).unwrap();
    assert!(matches!(auto, CertificateBinding::TrustedV2 { .. }));
}

#[test]
fn every_cloud_prefix_and_overrides() {
    let binding = CertificateBinding::SelfSigned { sha256: CertificateHash([0xab; 32]) };
    for (cloud, code) in [
        (Cloud::Public, "pub"),
        (Cloud::UsGov, "usg"),
        (Cloud::China, "chn"),
        (Cloud::UsNat, "uss"),
        (Cloud::UsSec, "usn"),
    ] {
        let s = SubjectIdentifier::new(&cloud.into(), TENANT, ENV, binding.clone()).unwrap();
        assert!(s.to_string().starts_with(&format!("/eid1/c/{code}/t/")), "{s}");
        let back: SubjectIdentifier = s.to_string().parse().unwrap();
        assert_eq!(back.cloud(), Some(cloud));
    }
    let mut custom = CloudProfile::from(Cloud::UsSec);
    custom.subject_prefix = "/eid1/c/xyz".into();
    let s = SubjectIdentifier::new(&custom, TENANT, ENV, binding.clone()).unwrap();
    assert!(s.to_string().starts_with("/eid1/c/xyz/t/"));
    assert_eq!(ids(&s.to_string()), ["prefix_mismatch"]);
    custom.subject_prefix = "eid1/pub".into();
    assert!(matches!(SubjectIdentifier::new(&custom, TENANT, ENV, binding), Err(SubjectError::BadPrefix { .. })));
}

fn good(binding_tail: &str) -> String {
    format!(
        "/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/7efcc31a-c410-e20e-9b3c-3ea55e7f9c56/{binding_tail}"
    )
}

const HASH: &str = "a9f605f46541a0aa9a71a0be9c69960abc6cfa3ff1cffaa02321581ff218ac91";

#[test]
fn explain_recognises_each_classic_mistake() {
    assert!(explain_subject(&good(&format!("h/{HASH}"))).is_ok());

    // Tenant encoded big-endian.
    let be = good(&format!("h/{HASH}")).replace("v4j5cvGGr0GRqy180BHbRw", &encode_guid_big_endian(TENANT));
    let e = explain_subject(&be);
    assert_eq!(
        e.problems,
        vec![SubjectProblem::TenantBigEndian { tenant: TENANT, expected: "v4j5cvGGr0GRqy180BHbRw".into() }]
    );
    assert_eq!(e.problems[0].severity(), Severity::Suspicion);
    // Well-formed, so it parses; only explain raises the suspicion.
    assert!(be.parse::<SubjectIdentifier>().is_ok());
    // Tenant written as plain text.
    let plain = good(&format!("h/{HASH}")).replace("v4j5cvGGr0GRqy180BHbRw", &TENANT.to_string());
    assert_eq!(ids(&plain), ["tenant_not_encoded"]);
    // The user's own app id in /a/ (encoded, or as text).
    let app = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
    let own = good(&format!("h/{HASH}")).replace("qzXoWDkuqUa3l6zM5mM0Rw", &encode_guid(app));
    let e = explain_subject(&own);
    assert_eq!(
        e.problems,
        vec![SubjectProblem::AppSegmentNotPowerPlatform { found: encode_guid(app), decoded: Some(app) }]
    );
    let own_text = good(&format!("h/{HASH}")).replace("qzXoWDkuqUa3l6zM5mM0Rw", &app.to_string());
    assert_eq!(ids(&own_text), ["app_segment_not_platform"]);
    // Upper-case hash.
    assert_eq!(ids(&good(&format!("h/{}", HASH.to_uppercase()))), ["hash_uppercase"]);
    // SHA-1 thumbprint instead of SHA-256.
    assert_eq!(ids(&good("h/A1D6CB1AC6FFE59274165AFFEB0D9B86C92E2BF3")), ["hash_is_sha1_thumbprint"]);
    assert_eq!(ids(&good("h/xyz")), ["hash_not_hex"]);
    // Environment id upper case, with braces, or not a GUID.
    assert_eq!(
        ids(&good(&format!("h/{HASH}"))
            .replace("7efcc31a-c410-e20e-9b3c-3ea55e7f9c56", "7EFCC31A-C410-E20E-9B3C-3EA55E7F9C56")),
        ["environment_not_canonical"]
    );
    assert_eq!(
        ids(&good(&format!("h/{HASH}"))
            .replace("7efcc31a-c410-e20e-9b3c-3ea55e7f9c56", "{7efcc31a-c410-e20e-9b3c-3ea55e7f9c56}")),
        ["environment_not_canonical"]
    );
    assert_eq!(
        ids(&good(&format!("h/{HASH}")).replace("7efcc31a-c410-e20e-9b3c-3ea55e7f9c56", "contoso")),
        ["environment_mismatch"]
    );
    // Component, cloud, white space, a missing segment, a bad binding.
    assert_eq!(ids(&good(&format!("h/{HASH}")).replace("/n/plugin/", "/n/plugins/")), ["component_mismatch"]);
    assert_eq!(ids(&good(&format!("h/{HASH}")).replace("/c/pub/", "/c/gov/")), ["prefix_mismatch"]);
    assert_eq!(ids(&format!(" {}\n", good(&format!("h/{HASH}")))), ["surrounding_whitespace"]);
    assert_eq!(ids("/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/n/plugin"), ["missing_segment"]);
    assert_eq!(ids(&good("x/y")), ["binding_malformed"]);
    assert_eq!(ids(&good("i/only-issuer")), ["binding_malformed"]);
    // Version 2 hashes that are not.
    let i = NameHash::of_name("CN=a").to_string();
    assert_eq!(ids(&good(&format!("i/{i}/s/{}", &i[..42]))), ["name_hash_encoding"]);
    // Version 1 CN values that Microsoft documents as failing.
    assert_eq!(ids(&good("i/Contoso, Inc./s/Plugins")), ["v1_name_has_comma"]);
    assert_eq!(ids(&good("i/Root/s/Zoë")), ["v1_name_not_ascii"]);
    // Whole .NET names where the platform writes the CN values.
    assert_eq!(
        ids(&good("i/CN=Root, O=Contoso, C=US/s/CN=Plugins, OU=Dataverse, O=Contoso, C=US")),
        ["v1_whole_name", "v1_whole_name"]
    );
    assert_eq!(ids(&good("i/Root/s/Plugins")), [] as [&str; 0]);
    // Not a subject at all.
    assert_eq!(ids("https://login.microsoftonline.com/x/v2.0"), ["not_a_subject"]);
    assert_eq!(ids(""), ["not_a_subject"]);
}

#[test]
fn parse_refuses_with_all_problems() {
    let bad =
        good(&format!("h/{}", HASH.to_uppercase())).replace("qzXoWDkuqUa3l6zM5mM0Rw", &encode_guid(Uuid::from_u128(5)));
    let err = bad.parse::<SubjectIdentifier>().unwrap_err();
    let got: Vec<_> = err.problems.iter().map(SubjectProblem::id).collect();
    assert_eq!(got, ["app_segment_not_platform", "hash_uppercase"]);
    assert!(err.to_string().contains("qzXoWDkuqUa3l6zM5mM0Rw"), "{err}");
}

#[test]
fn explanation_reads_well() {
    let text = explain_subject(&good(&format!("h/{HASH}"))).to_string();
    assert!(text.contains("tenant:      v4j5cvGGr0GRqy180BHbRw = 72f988bf-86f1-41af-91ab-2d7cd011db47"), "{text}");
    assert!(text.contains(&format!("{POWER_PLATFORM_MI_APP_ID} (Power Platform Managed Identity)")), "{text}");
    assert!(text.ends_with("well-formed"), "{text}");
    let json = serde_json::to_value(explain_subject(&good("h/ABC"))).unwrap();
    assert_eq!(json["problems"][0]["id"], "hash_not_hex");
    assert_eq!(json["parts"]["tenant_id"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
}

#[test]
fn default_environments_in_subjects() {
    let default = EnvironmentId::Default { tenant: TENANT };
    let s = SubjectIdentifier::new(
        &Cloud::Public.into(),
        TENANT,
        default,
        CertificateBinding::SelfSigned { sha256: HASH.parse().unwrap() },
    )
    .unwrap();
    let text = s.to_string();
    assert!(text.contains("/e/Default-72f988bf-86f1-41af-91ab-2d7cd011db47/h/"), "{text}");
    assert!(explain_subject(&text).is_ok(), "{}", explain_subject(&text));
    assert_eq!(explain_subject(&text).parts.environment_id, Some(default));
    assert_eq!(text.parse::<SubjectIdentifier>().unwrap().environment_id(), default);
    // Written another way: lowercase `default-`, or upper-case GUID.
    let lower = text.replace("/e/Default-", "/e/default-");
    assert_eq!(ids(&lower), ["environment_not_canonical"]);
    assert!(explain_subject(&lower).to_string().contains("Default-72f988bf-86f1-41af-91ab-2d7cd011db47"));
    // A Default environment of another tenant than the subject's: a suspicion, the subject still parses.
    let other = text.replace("Default-72f988bf", "Default-72f988bb");
    assert_eq!(ids(&other), ["default_environment_other_tenant"]);
    assert!(other.parse::<SubjectIdentifier>().is_ok());
    // Not an environment id at all.
    assert_eq!(ids(&text.replace("/e/Default-", "/e/Sandbox-")), ["environment_mismatch"]);
    // Version 0 names the Default environment too; its issuer host is written `default{tenant}` without hyphens.
    let v0 = LegacyV0::compute(default, fixture("self-signed-comma.cer").sha1_thumbprint());
    assert_eq!(v0.issuer, "https://default72f988bf86f141af91ab2d7cd011db.47.environment.api.powerplatform.com/sts");
    assert!(v0.subject.ends_with(",environment:Default-72f988bf-86f1-41af-91ab-2d7cd011db47"));
    assert_eq!(LegacyV0::parse_subject(&v0.subject).map(|(e, _)| e), Some(default));
}

#[test]
fn other_clusters_app_segments_are_named_not_called_your_app_id() {
    use dataverse_mi::guid::{AppSegmentOwner, PREPROD_APP_SEGMENT, TEST_APP_SEGMENT};
    for (segment, owner, words) in [
        (PREPROD_APP_SEGMENT, AppSegmentOwner::MicrosoftPreProduction, "a Microsoft pre-production cluster's app"),
        (TEST_APP_SEGMENT, AppSegmentOwner::MicrosoftTest, "a Microsoft test cluster's app"),
    ] {
        let text = good(&format!("h/{HASH}")).replace("/a/qzXoWDkuqUa3l6zM5mM0Rw/", &format!("/a/{segment}/"));
        let e = explain_subject(&text);
        assert_eq!(ids(&text), ["app_segment_not_platform"]);
        assert_eq!(e.parts.app_owner, Some(owner));
        let words_out = e.to_string();
        assert!(words_out.contains(words), "{words_out}");
        assert!(!words_out.contains("your own app"), "{words_out}");
        // Well-formed for the cluster that uses it: a profile that overrides the segment builds the same text.
        let mut profile = CloudProfile::from(Cloud::Public);
        profile.app_segment = segment.to_owned();
        let built = SubjectIdentifier::new(
            &profile,
            TENANT,
            ENV,
            CertificateBinding::SelfSigned { sha256: HASH.parse().unwrap() },
        )
        .unwrap();
        assert_eq!(built.to_string(), text);
        assert_eq!(built.app_segment(), segment);
        assert_eq!(text.parse::<SubjectIdentifier>().unwrap(), built);
    }
    // Any other value is still the classic mistake.
    let mine = good(&format!("h/{HASH}")).replace("/a/qzXoWDkuqUa3l6zM5mM0Rw/", &format!("/a/{}/", encode_guid(ENV)));
    assert_eq!(ids(&mine), ["app_segment_not_platform"]);
    // An override that is not an encoded GUID is refused.
    let mut bad = CloudProfile::from(Cloud::Public);
    bad.app_segment = "not-a-segment".into();
    let err =
        SubjectIdentifier::new(&bad, TENANT, ENV, CertificateBinding::SelfSigned { sha256: HASH.parse().unwrap() })
            .unwrap_err();
    assert!(err.to_string().contains("not-a-segment"), "{err}");
}

#[test]
fn legacy_v0_is_computed_and_recognised() {
    let thumb = fixture("self-signed-comma.cer").sha1_thumbprint();
    let v0 = LegacyV0::compute(ENV, thumb);
    assert_eq!(v0.issuer, "https://7efcc31ac410e20e9b3c3ea55e7f9c.56.environment.api.powerplatform.com/sts");
    assert_eq!(
        v0.subject,
        "component:pluginassembly,thumbprint:A1D6CB1AC6FFE59274165AFFEB0D9B86C92E2BF3,environment:7efcc31a-c410-e20e-9b3c-3ea55e7f9c56"
    );
    assert_eq!(v0.audience, "api://azureadtokenexchange");
    assert!(LegacyV0::is_v0_issuer(&v0.issuer));
    assert_eq!(LegacyV0::parse_subject(&v0.subject), Some((ENV.into(), thumb)));
    assert_eq!(ids(&v0.subject), ["legacy_v0"]);
    assert!(v0.subject.parse::<SubjectIdentifier>().is_err());
}

#[test]
fn versions_and_kinds_parse() {
    assert_eq!("2".parse::<SubjectFormatVersion>().unwrap(), SubjectFormatVersion::V2);
    assert_eq!("v1".parse::<SubjectFormatVersion>().unwrap(), SubjectFormatVersion::V1);
    assert!("3".parse::<SubjectFormatVersion>().is_err());
    assert!(serde_json::from_str::<SubjectFormatVersion>("0").is_err());
    assert_eq!("self-signed".parse::<CertificateKind>().unwrap(), CertificateKind::SelfSigned);
    assert!("maybe".parse::<CertificateKind>().is_err());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn arb_uuid() -> impl Strategy<Value = Uuid> {
        any::<u128>().prop_map(Uuid::from_u128)
    }

    fn arb_cloud() -> impl Strategy<Value = Cloud> {
        prop::sample::select(Cloud::ALL.to_vec())
    }

    /// Any environment id: a GUID of any version, or a Default environment's `Default-{tenant}`.
    fn arb_environment() -> impl Strategy<Value = EnvironmentId> {
        prop_oneof![
            arb_uuid().prop_map(EnvironmentId::Guid),
            arb_uuid().prop_map(|tenant| EnvironmentId::Default { tenant }),
        ]
    }

    fn arb_binding() -> impl Strategy<Value = CertificateBinding> {
        prop_oneof![
            any::<[u8; 32]>().prop_map(|h| CertificateBinding::SelfSigned { sha256: CertificateHash(h) }),
            (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(i, s)| {
                CertificateBinding::TrustedV2 { issuer_hash: NameHash(i), subject_hash: NameHash(s) }
            }),
            ("CN=[A-Za-z0-9 .-]{1,30}", "CN=[A-Za-z0-9 .=-]{1,30}(, O=[a-z]{1,5})?")
                .prop_filter_map("v1 names", |(i, s)| {
                    CertificateBinding::from_names(&i, &s, SubjectFormatVersion::V1).ok()
                }),
            ("[A-Za-z0-9][A-Za-z0-9 .-]{0,28}[A-Za-z0-9]", "[A-Za-z0-9][A-Za-z0-9 .=-]{0,28}[A-Za-z0-9]")
                .prop_filter_map("v1 CN values", |(i, s)| CertificateBinding::v1_from_common_names(&i, &s).ok()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn environment_ids_round_trip(env in arb_environment(), upper in any::<bool>()) {
            let text = env.to_string();
            prop_assert_eq!(text.parse::<EnvironmentId>().unwrap(), env);
            // Pasted in upper case (and `DEFAULT-`), it is still the same id, printed canonically.
            let pasted = if upper { text.to_uppercase() } else { text.clone() };
            prop_assert_eq!(pasted.parse::<EnvironmentId>().unwrap().to_string(), text.clone());
            let json = serde_json::to_string(&env).unwrap();
            prop_assert_eq!(serde_json::from_str::<EnvironmentId>(&json).unwrap(), env);
            // Every FIC name made for it is valid.
            prop_assert!(dataverse_mi::fic::validate_name(&dataverse_mi::fic::default_name(env, &text)).is_ok());
        }

        #[test]
        fn display_then_parse_is_identity(cloud in arb_cloud(), tenant in arb_uuid(), env in arb_environment(), binding in arb_binding()) {
            let s = SubjectIdentifier::new(&cloud.into(), tenant, env, binding).unwrap();
            let text = s.to_string();
            let back: SubjectIdentifier = text.parse().unwrap();
            prop_assert_eq!(&back, &s);
            prop_assert_eq!(back.to_string(), text);
        }

        #[test]
        fn guid_round_trip(id in arb_uuid()) {
            let enc = encode_guid(id);
            prop_assert_eq!(enc.len(), 22);
            prop_assert_eq!(dataverse_mi::guid::decode_guid(&enc).unwrap(), id);
            prop_assert_eq!(dataverse_mi::guid::parse_guid(&id.to_string()).unwrap(), id);
            prop_assert_eq!(dataverse_mi::guid::parse_guid(&format!("{{{}}}", id.to_string().to_uppercase())).unwrap(), id);
        }

        #[test]
        fn v4_tenants_encoded_big_endian_are_caught(bytes in any::<[u8; 16]>()) {
            let tenant = uuid::Builder::from_random_bytes(bytes).into_uuid();
            let be = good(&format!("h/{HASH}")).replace("v4j5cvGGr0GRqy180BHbRw", &encode_guid_big_endian(tenant));
            let e = explain_subject(&be);
            // Unless the byte-swapped value happens to be a plausible v4 GUID itself (about 1 in 64), the mistake is named.
            let swapped = Uuid::from_bytes_le(*tenant.as_bytes());
            let swapped_plausible = swapped.get_version_num() == 4 && swapped.get_variant() == uuid::Variant::RFC4122;
            if !swapped_plausible {
                let found = e.problems.contains(&SubjectProblem::TenantBigEndian { tenant, expected: encode_guid(tenant) });
                prop_assert!(found, "{:?}", e.problems);
            }
            // The right encoding is never flagged.
            let right = good(&format!("h/{HASH}")).replace("v4j5cvGGr0GRqy180BHbRw", &encode_guid(tenant));
            prop_assert!(explain_subject(&right).is_ok());
        }

        #[test]
        fn random_strings_never_panic(s in ".{0,300}") {
            let _ = explain_subject(&s);
            let _ = s.parse::<SubjectIdentifier>();
            let _ = explain_subject(&format!("/eid1/c/pub/t/{s}"));
            let _ = explain_subject(&good(&s));
        }
    }
}
