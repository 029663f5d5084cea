//! The diagnosis corpus: the mistakes people make in a FIC, alone and combined, each with the cause ids `diagnose`
//! must name, segment by segment. Built from the certificates the project generates (tests/fixtures): a self-signed
//! certificate, a CA-issued leaf with its CA, the same leaf in a PEM file with its chain and in a PFX file.

use dataverse_mi::cert::{Certificate, NameHash};
use dataverse_mi::cloud::Cloud;
use dataverse_mi::diagnose::{ConfiguredFic, DiagnosisInputs, analyze, explain, parse_error};
use dataverse_mi::environment::EnvironmentId;
use dataverse_mi::guid::{encode_guid, encode_guid_big_endian};
use dataverse_mi::secret::Secret;
use dataverse_mi::subject::{
    CertificateBinding, CertificateKind, Segment, SubjectFormatVersion, SubjectIdentifier, SubjectSegments,
};
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const OTHER_TENANT: Uuid = Uuid::from_u128(0x1d5f3c2b_8a9e_4b7c_9d6e_5f4a3b2c1d0e);
const ENV: Uuid = Uuid::from_u128(0x7efcc31a_c410_e20e_9b3c_3ea55e7f9c56);
const OTHER_ENV: Uuid = Uuid::from_u128(0x11111111_2222_4333_8444_555555555555);
const ORG: Uuid = Uuid::from_u128(0x0b1d2a3c_4d5e_4f60_8a7b_9c0d1e2f3a4b);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);

fn path(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn cert(name: &str) -> Certificate {
    Certificate::from_file(path(name)).unwrap().certificate
}

fn subject_in(cert: &Certificate, version: SubjectFormatVersion, kind: CertificateKind, env: EnvironmentId) -> String {
    let binding = CertificateBinding::for_certificate(cert, version, kind).unwrap();
    SubjectIdentifier::new(&Cloud::Public.into(), TENANT, env, binding).unwrap().to_string()
}

fn subject(cert: &Certificate, version: SubjectFormatVersion) -> String {
    subject_in(cert, version, CertificateKind::Auto, ENV.into())
}

/// Replaces one segment of a subject by `value`.
fn with_segment(s: &str, segment: Segment, value: &str) -> String {
    let mut parts = SubjectSegments::split(s);
    match segment {
        Segment::Prefix => parts.prefix = value.to_owned(),
        Segment::Tenant => parts.tenant = Some(value.to_owned()),
        Segment::App => parts.app = Some(value.to_owned()),
        Segment::Component => parts.component = Some(value.to_owned()),
        Segment::Environment => parts.environment = Some(value.to_owned()),
        Segment::Binding => parts.binding = Some(value.to_owned()),
        _ => unreachable!(),
    }
    format!(
        "{}/t/{}/a/{}/n/{}/e/{}/{}",
        parts.prefix,
        parts.tenant.unwrap_or_default(),
        parts.app.unwrap_or_default(),
        parts.component.unwrap_or_default(),
        parts.environment.unwrap_or_default(),
        parts.binding.unwrap_or_default()
    )
}

fn segment(s: &str, segment: Segment) -> String {
    SubjectSegments::split(s).get(segment).unwrap_or_default().to_owned()
}

/// A `/i/../s/..` binding with one name hash replaced by the hash of `form`.
fn name_hash(s: &str, which: &str, form: &str) -> String {
    let b = segment(s, Segment::Binding);
    let (i, rest) = b.strip_prefix("i/").unwrap().split_once("/s/").unwrap();
    let h = NameHash::of_name(form).to_string();
    let binding = if which == "i" { format!("i/{h}/s/{rest}") } else { format!("i/{i}/s/{h}") };
    with_segment(s, Segment::Binding, &binding)
}

fn aadsts700213(presented: &str) -> String {
    format!(
        "Original exception: AADSTS700213: No matching federated identity record found for presented assertion subject '{presented}'. \
         Check your federated identity credential Subject, Audience and Issuer against the presented assertion. \
         Trace ID: 0b1c2d3e-0000-4000-8000-000000000001 Correlation ID: 5d6e7f80-0000-4000-8000-000000000002 Timestamp: 2026-11-22 10:00:00Z"
    )
}

fn aadsts700211() -> String {
    format!(
        "AADSTS700211: No matching federated identity record found for presented assertion issuer 'https://login.microsoftonline.com/{TENANT}/v2.0'. \
         Trace ID: 0b1c2d3e-0000-4000-8000-000000000003 Correlation ID: 5d6e7f80-0000-4000-8000-000000000004 Timestamp: 2026-11-22 10:00:00Z"
    )
}

fn aadsts700212() -> String {
    "AADSTS700212: No matching federated identity record found for presented assertion audience 'api://AzureADTokenExchange'. \
     Trace ID: 0b1c2d3e-0000-4000-8000-000000000005 Correlation ID: 5d6e7f80-0000-4000-8000-000000000006 Timestamp: 2026-11-22 10:00:00Z"
        .to_owned()
}

/// The user's natural inputs: what they have at hand, never the one flag that reveals the mistake.
fn basic() -> DiagnosisInputs {
    basic_in(ENV.into())
}

fn basic_in(environment: EnvironmentId) -> DiagnosisInputs {
    DiagnosisInputs { tenant_id: Some(TENANT), environment_id: Some(environment), ..Default::default() }
}

/// The inputs of a user who gives the certificate file they have (PEM with its chain, or PFX).
fn with_file(file: &str, password: Option<&str>) -> DiagnosisInputs {
    let mut inputs = basic();
    let bytes = std::fs::read(path(file)).unwrap();
    inputs.set_certificate_file(&bytes, password.map(|p| Secret::new(p.to_owned())).as_ref()).unwrap();
    inputs
}

struct Case {
    name: &'static str,
    error: String,
    presented: String,
    configured: ConfiguredFic,
    inputs: DiagnosisInputs,
    causes: &'static [&'static str],
    /// The segments the findings are in, in order (`None` for findings about the FIC as a whole).
    segments: &'static [Option<Segment>],
}

fn case(
    name: &'static str,
    presented: &str,
    configured: &str,
    inputs: DiagnosisInputs,
    causes: &'static [&'static str],
    segments: &'static [Option<Segment>],
) -> Case {
    Case {
        name,
        error: aadsts700213(presented),
        presented: presented.to_owned(),
        configured: configured.into(),
        inputs,
        causes,
        segments,
    }
}

use Segment::{App, Audience, Binding, Component, Environment, Issuer, Prefix, Tenant};
const NONE: Option<Segment> = None;

fn corpus() -> Vec<Case> {
    let ss_cert = cert("self-signed-comma.cer");
    let leaf = cert("leaf.cer");
    let ca = cert("ca.cer");
    let ss = subject(&ss_cert, SubjectFormatVersion::V2);
    let v2 = subject(&leaf, SubjectFormatVersion::V2);
    // Version 1 from the sources, not from our code: the CN values (Microsoft's version 1 page and its published
    // subject), the fixture's CNs from tests/fixtures/make-certs.sh.
    let v1 = format!(
        "/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/{ENV}/i/Contoso Root CA/s/Contoso Plug-in Signing"
    );
    assert_eq!(subject(&leaf, SubjectFormatVersion::V1), v1);
    let default_env = EnvironmentId::Default { tenant: TENANT };
    let ss_default = subject_in(&ss_cert, SubjectFormatVersion::V2, CertificateKind::Auto, default_env);
    let hash = ss_cert.sha256().to_string();
    let with_cert = |c: &Certificate| DiagnosisInputs { certificate: Some(c.clone()), ..basic() };
    let tenant_be = |s: &str| with_segment(s, Tenant, &encode_guid_big_endian(TENANT));
    let hash_upper = |s: &str| s.replace(&hash, &hash.to_uppercase());
    let env_org = |s: &str| with_segment(s, Environment, &ORG.to_string());
    let user_app = |s: &str| with_segment(s, App, &encode_guid(APP));
    let preprod = |s: &str| with_segment(s, App, "CQSGf3JJtEi27nY2ePL7UQ");
    let leaf_issuer = leaf.issuer().unwrap().to_owned();
    let leaf_subject = leaf.subject().unwrap().to_owned();
    let pem_hash = with_file("chain-with-key.pem", None).pfx_sha256.unwrap().to_string();
    let pfx_hash = with_file("leaf.pfx", Some("fixture")).pfx_sha256.unwrap().to_string();
    let leaf_hash = leaf.sha256().to_string();
    // A CA-issued certificate forced into the self-signed form, for the /h/ mistakes of a chain.
    let leaf_h = subject_in(&leaf, SubjectFormatVersion::V2, CertificateKind::SelfSigned, ENV.into());
    let oids = cert("oids.cer");
    let oids_v2 = subject_in(&oids, SubjectFormatVersion::V2, CertificateKind::Trusted, ENV.into());
    let b64 = |hex: &str, url: bool| {
        use base64::Engine as _;
        let bytes: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
        if url {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        } else {
            base64::engine::general_purpose::STANDARD.encode(bytes)
        }
    };
    let name_hex = |name: &str| {
        use sha2::Digest as _;
        sha2::Sha256::digest(name.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };

    let mut cases = vec![
        // --- prefix
        case(
            "another cloud's prefix",
            &ss,
            &with_segment(&ss, Prefix, "/eid1/c/usg"),
            basic(),
            &["wrong_cloud"],
            &[Some(Prefix)],
        ),
        case(
            "a typo in the prefix",
            &ss,
            &with_segment(&ss, Prefix, "/eid1/c/pbu"),
            basic(),
            &["prefix_mismatch"],
            &[Some(Prefix)],
        ),
        case(
            "the prefix without /eid1",
            &ss,
            &with_segment(&ss, Prefix, "/c/pub"),
            basic(),
            &["prefix_mismatch"],
            &[Some(Prefix)],
        ),
        // --- tenant
        case("tenant big-endian", &ss, &tenant_be(&ss), basic(), &["tenant_big_endian"], &[Some(Tenant)]),
        case(
            "tenant GUID as text",
            &ss,
            &with_segment(&ss, Tenant, &TENANT.to_string()),
            basic(),
            &["tenant_not_encoded"],
            &[Some(Tenant)],
        ),
        case(
            "tenant GUID URL-encoded in braces",
            &ss,
            &with_segment(&ss, Tenant, &format!("%7B{TENANT}%7D")),
            basic(),
            &["tenant_not_encoded"],
            &[Some(Tenant)],
        ),
        case(
            "tenant in standard Base64",
            &ss,
            &with_segment(&ss, Tenant, "v4j5cvGGr0GRqy180BHbRw=="),
            basic(),
            &["tenant_not_encoded"],
            &[Some(Tenant)],
        ),
        case(
            "tenant upper case",
            &ss,
            &with_segment(&ss, Tenant, &encode_guid(TENANT).to_uppercase()),
            basic(),
            &["tenant_case"],
            &[Some(Tenant)],
        ),
        case(
            "another tenant",
            &ss,
            &with_segment(&ss, Tenant, &encode_guid(OTHER_TENANT)),
            basic(),
            &["tenant_mismatch"],
            &[Some(Tenant)],
        ),
        // --- app
        case(
            "the user's own app id, with --app-id",
            &ss,
            &user_app(&ss),
            DiagnosisInputs { application_id: Some(APP), ..basic() },
            &["user_app_id_in_app_segment"],
            &[Some(App)],
        ),
        case(
            "the user's own app id, without --app-id",
            &ss,
            &user_app(&ss),
            basic(),
            &["app_segment_not_platform"],
            &[Some(App)],
        ),
        case(
            "a pre-production cluster's app",
            &ss,
            &preprod(&ss),
            basic(),
            &["app_segment_not_platform"],
            &[Some(App)],
        ),
        case(
            "a test cluster's app",
            &ss,
            &with_segment(&ss, App, "L5f3f5fVhEuUXYRgAT1Q4w"),
            basic(),
            &["app_segment_not_platform"],
            &[Some(App)],
        ),
        case(
            "the platform's app id big-endian",
            &ss,
            &with_segment(&ss, App, &encode_guid_big_endian(dataverse_mi::guid::POWER_PLATFORM_MI_APP_ID)),
            basic(),
            &["app_segment_not_platform"],
            &[Some(App)],
        ),
        // --- component
        case(
            "component plugins",
            &ss,
            &with_segment(&ss, Component, "plugins"),
            basic(),
            &["component_mismatch"],
            &[Some(Component)],
        ),
        case(
            "component segment left out",
            &ss,
            &ss.replace("/n/plugin/", "/"),
            basic(),
            &["missing_segment"],
            &[Some(Component)],
        ),
        // --- environment
        case(
            "organization id, with --organization-id",
            &ss,
            &env_org(&ss),
            DiagnosisInputs { organization_id: Some(ORG), ..basic() },
            &["organization_id_as_environment"],
            &[Some(Environment)],
        ),
        case(
            "organization id, without it",
            &ss,
            &env_org(&ss),
            basic(),
            &["environment_mismatch"],
            &[Some(Environment)],
        ),
        case(
            "another environment",
            &ss,
            &with_segment(&ss, Environment, &OTHER_ENV.to_string()),
            basic(),
            &["environment_mismatch"],
            &[Some(Environment)],
        ),
        case(
            "environment upper case",
            &ss,
            &with_segment(&ss, Environment, &ENV.to_string().to_uppercase()),
            basic(),
            &["environment_not_canonical"],
            &[Some(Environment)],
        ),
        case(
            "environment without hyphens",
            &ss,
            &with_segment(&ss, Environment, &ENV.simple().to_string()),
            basic(),
            &["environment_not_canonical"],
            &[Some(Environment)],
        ),
        case(
            "environment in braces",
            &ss,
            &with_segment(&ss, Environment, &format!("{{{ENV}}}")),
            basic(),
            &["environment_not_canonical"],
            &[Some(Environment)],
        ),
        case(
            "Default environment as the bare tenant GUID",
            &ss_default,
            &with_segment(&ss_default, Environment, &TENANT.to_string()),
            basic_in(default_env),
            &["environment_not_canonical"],
            &[Some(Environment)],
        ),
        case(
            "Default environment in lower case",
            &ss_default,
            &with_segment(&ss_default, Environment, &format!("default-{TENANT}")),
            basic_in(default_env),
            &["environment_not_canonical"],
            &[Some(Environment)],
        ),
        case(
            "Default environment as its API host writes it",
            &ss_default,
            &with_segment(&ss_default, Environment, &format!("default{}", TENANT.simple())),
            basic_in(default_env),
            &["environment_not_canonical"],
            &[Some(Environment)],
        ),
        // --- binding: the form and the version
        case(
            "CA form for a self-signed certificate",
            &ss,
            &v2.replace(&segment(&v2, Environment), &segment(&ss, Environment)),
            basic(),
            &["binding_kind_mismatch"],
            &[Some(Binding)],
        ),
        case(
            "self-signed form for a CA-issued certificate",
            &v2,
            &with_segment(&v2, Binding, &format!("h/{leaf_hash}")),
            with_cert(&leaf),
            &["binding_kind_mismatch"],
            &[Some(Binding)],
        ),
        case(
            "version 1 configured, version 2 presented",
            &v2,
            &v1,
            with_cert(&leaf),
            &["version_mismatch"],
            &[Some(Binding)],
        ),
        case(
            "version 2 configured, version 1 presented",
            &v1,
            &v2,
            with_cert(&leaf),
            &["version_mismatch"],
            &[Some(Binding)],
        ),
        // --- binding: the hash
        case("hash upper case", &ss, &hash_upper(&ss), basic(), &["hash_uppercase"], &[Some(Binding)]),
        case(
            "hash as Base64URL",
            &ss,
            &ss.replace(&hash, &b64(&hash, true)),
            basic(),
            &["hash_not_hex"],
            &[Some(Binding)],
        ),
        case(
            "hash as standard Base64",
            &ss,
            &ss.replace(&hash, &b64(&hash, false)),
            basic(),
            &["hash_not_hex"],
            &[Some(Binding)],
        ),
        case(
            "SHA-1 thumbprint",
            &ss,
            &ss.replace(&hash, &ss_cert.sha1_thumbprint().to_string()),
            with_cert(&ss_cert),
            &["hash_is_sha1_thumbprint"],
            &[Some(Binding)],
        ),
        case(
            "SHA-1 thumbprint, no certificate given",
            &ss,
            &ss.replace(&hash, &ss_cert.sha1_thumbprint().to_string().to_lowercase()),
            basic(),
            &["hash_is_sha1_thumbprint"],
            &[Some(Binding)],
        ),
        case(
            "hash of the .pfx file",
            &leaf_h,
            &leaf_h.replace(&leaf_hash, &pfx_hash),
            with_file("leaf.pfx", Some("fixture")),
            &["hash_of_container_file"],
            &[Some(Binding)],
        ),
        case(
            "hash of the .pem file",
            &leaf_h,
            &leaf_h.replace(&leaf_hash, &pem_hash),
            with_file("chain-with-key.pem", None),
            &["hash_of_container_file"],
            &[Some(Binding)],
        ),
        case(
            "hash of the CA certificate",
            &leaf_h,
            &leaf_h.replace(&leaf_hash, &ca.sha256().to_string()),
            with_file("chain-with-key.pem", None),
            &["hash_of_other_certificate"],
            &[Some(Binding)],
        ),
        case(
            "hash of another certificate",
            &ss,
            &ss.replace(&hash, &cert("quotes.cer").sha256().to_string()),
            with_cert(&ss_cert),
            &["different_value"],
            &[Some(Binding)],
        ),
        // --- binding: version 2 name hashes, each name on its own
        case(
            "issuer name RFC 4514",
            &v2,
            &name_hash(&v2, "i", "CN=Contoso Root CA,O=Contoso,C=US"),
            with_cert(&leaf),
            &["dn_not_dotnet_format"],
            &[Some(Binding)],
        ),
        case(
            "subject name OpenSSL one-line",
            &v2,
            &name_hash(&v2, "s", "/C=US/O=Contoso/OU=Dataverse/CN=Contoso Plug-in Signing"),
            with_cert(&leaf),
            &["dn_not_dotnet_format"],
            &[Some(Binding)],
        ),
        case(
            "subject name forward order",
            &v2,
            &name_hash(&v2, "s", "C=US, O=Contoso, OU=Dataverse, CN=Contoso Plug-in Signing"),
            with_cert(&leaf),
            &["dn_not_dotnet_format"],
            &[Some(Binding)],
        ),
        case(
            "subject name OpenSSL default",
            &v2,
            &name_hash(&v2, "s", "C = US, O = Contoso, OU = Dataverse, CN = Contoso Plug-in Signing"),
            with_cert(&leaf),
            &["dn_not_dotnet_format"],
            &[Some(Binding)],
        ),
        case(
            "subject name with long attribute names",
            &v2,
            &name_hash(
                &v2,
                "s",
                "commonName=Contoso Plug-in Signing, organizationalUnitName=Dataverse, organizationName=Contoso, countryName=US",
            ),
            with_cert(&leaf),
            &["dn_not_dotnet_format"],
            &[Some(Binding)],
        ),
        case(
            "subject name in a community tool's form",
            &v2,
            &name_hash(
                &v2,
                "s",
                "commonName=Contoso Plug-in Signing/organizationalUnitName=Dataverse/organizationName=Contoso/countryName=US",
            ),
            with_cert(&leaf),
            &["dn_not_dotnet_format"],
            &[Some(Binding)],
        ),
        case(
            "ST= for S=",
            &oids_v2,
            &name_hash(&oids_v2, "s", &oids.subject().unwrap().replace("S=Washington", "ST=Washington")),
            with_cert(&oids),
            &["dn_not_dotnet_format"],
            &[Some(Binding)],
        ),
        case(
            "issuer and subject swapped",
            &v2,
            &name_hash(&name_hash(&v2, "i", &leaf_subject), "s", &leaf_issuer),
            with_cert(&leaf),
            &["names_swapped", "names_swapped"],
            &[Some(Binding), Some(Binding)],
        ),
        case(
            "name hash in hex",
            &v2,
            &with_segment(
                &v2,
                Binding,
                &format!("i/{}/s/{}", name_hex(&leaf_issuer), NameHash::of_name(&leaf_subject)),
            ),
            with_cert(&leaf),
            &["name_hash_encoding"],
            &[Some(Binding)],
        ),
        case(
            "issuer name hash of the CA's issuer",
            &v2,
            &name_hash(&v2, "i", "CN=Some Other Root, O=Elsewhere"),
            with_cert(&leaf),
            &["different_value"],
            &[Some(Binding)],
        ),
        // --- version 1 names
        case(
            "version 1 issuer as the whole name written the RFC 4514 way",
            &v1,
            &v1.replace("/i/Contoso Root CA/", "/i/CN=Contoso Root CA,O=Contoso,C=US/"),
            with_cert(&leaf),
            &["v1_whole_name"],
            &[Some(Binding)],
        ),
        case(
            "version 1 subject CN in other letter case",
            &v1,
            &v1.replace("/s/Contoso Plug-in Signing", "/s/contoso plug-in signing"),
            with_cert(&leaf),
            &["subject_case"],
            &[Some(Binding)],
        ),
        // --- version 2 names hashed in DER order (least specific first), as written from the encoding
        case(
            "both names hashed in DER order without spaces",
            &v2,
            &name_hash(
                &name_hash(&v2, "i", "C=US,O=Contoso,CN=Contoso Root CA"),
                "s",
                "C=US,O=Contoso,OU=Dataverse,CN=Contoso Plug-in Signing",
            ),
            with_cert(&leaf),
            &["dn_not_dotnet_format", "dn_not_dotnet_format"],
            &[Some(Binding), Some(Binding)],
        ),
        case(
            "subject name in DER order with semicolons",
            &v2,
            &name_hash(&v2, "s", "C=US; O=Contoso; OU=Dataverse; CN=Contoso Plug-in Signing"),
            with_cert(&leaf),
            &["dn_not_dotnet_format"],
            &[Some(Binding)],
        ),
        // --- letter case only, where no other rule names it
        case(
            "app segment in upper case",
            &ss,
            &ss.replace("/a/qzXoWDkuqUa3l6zM5mM0Rw/", "/a/QZXOWDKUQUA3L6ZM5MM0RW/"),
            basic(),
            &["subject_case"],
            &[Some(App)],
        ),
        case(
            "a version 2 name hash in other letter case",
            &v2,
            &{
                let b = segment(&v2, Binding);
                let (i, s) = b.strip_prefix("i/").unwrap().split_once("/s/").unwrap();
                with_segment(&v2, Binding, &format!("i/{i}/s/{}", s.to_uppercase()))
            },
            basic(),
            &["subject_case"],
            &[Some(Binding)],
        ),
        // --- the FIC as a whole
        case("white space around the subject", &ss, &format!("{ss} "), basic(), &["surrounding_whitespace"], &[NONE]),
        case("not a subject at all", &ss, "api://AzureADTokenExchange", basic(), &["not_a_subject"], &[NONE]),
        // --- combinations of two and three mistakes
        case(
            "tenant big-endian + hash upper case",
            &ss,
            &hash_upper(&tenant_be(&ss)),
            basic(),
            &["tenant_big_endian", "hash_uppercase"],
            &[Some(Tenant), Some(Binding)],
        ),
        case(
            "user app id + organization id",
            &ss,
            &env_org(&user_app(&ss)),
            DiagnosisInputs { application_id: Some(APP), organization_id: Some(ORG), ..basic() },
            &["user_app_id_in_app_segment", "organization_id_as_environment"],
            &[Some(App), Some(Environment)],
        ),
        case(
            "tenant as text + pre-production app",
            &ss,
            &preprod(&with_segment(&ss, Tenant, &TENANT.to_string())),
            basic(),
            &["tenant_not_encoded", "app_segment_not_platform"],
            &[Some(Tenant), Some(App)],
        ),
        case(
            "another cloud + tenant big-endian",
            &ss,
            &tenant_be(&with_segment(&ss, Prefix, "/eid1/c/usg")),
            basic(),
            &["wrong_cloud", "tenant_big_endian"],
            &[Some(Prefix), Some(Tenant)],
        ),
        case(
            "environment upper case + SHA-1",
            &ss,
            &with_segment(&ss, Environment, &ENV.to_string().to_uppercase())
                .replace(&hash, &ss_cert.sha1_thumbprint().to_string()),
            with_cert(&ss_cert),
            &["environment_not_canonical", "hash_is_sha1_thumbprint"],
            &[Some(Environment), Some(Binding)],
        ),
        case(
            "issuer RFC 4514 + subject OpenSSL",
            &v2,
            &name_hash(
                &name_hash(&v2, "i", "CN=Contoso Root CA,O=Contoso,C=US"),
                "s",
                "/C=US/O=Contoso/OU=Dataverse/CN=Contoso Plug-in Signing",
            ),
            with_cert(&leaf),
            &["dn_not_dotnet_format", "dn_not_dotnet_format"],
            &[Some(Binding), Some(Binding)],
        ),
        case(
            "tenant big-endian + version 1",
            &v2,
            &tenant_be(&v1),
            with_cert(&leaf),
            &["tenant_big_endian", "version_mismatch"],
            &[Some(Tenant), Some(Binding)],
        ),
        case(
            "user app id + hash of the .pfx",
            &leaf_h,
            &user_app(&leaf_h.replace(&leaf_hash, &pfx_hash)),
            DiagnosisInputs { application_id: Some(APP), ..with_file("leaf.pfx", Some("fixture")) },
            &["user_app_id_in_app_segment", "hash_of_container_file"],
            &[Some(App), Some(Binding)],
        ),
        case(
            "three: tenant big-endian + organization id + hash upper case",
            &ss,
            &hash_upper(&env_org(&tenant_be(&ss))),
            DiagnosisInputs { organization_id: Some(ORG), ..basic() },
            &["tenant_big_endian", "organization_id_as_environment", "hash_uppercase"],
            &[Some(Tenant), Some(Environment), Some(Binding)],
        ),
        case(
            "component plugins + tenant upper case",
            &ss,
            &with_segment(&with_segment(&ss, Component, "plugins"), Tenant, &encode_guid(TENANT).to_uppercase()),
            basic(),
            &["tenant_case", "component_mismatch"],
            &[Some(Tenant), Some(Component)],
        ),
        case(
            "Default environment as the GUID + hash as Base64URL",
            &ss_default,
            &with_segment(&ss_default, Environment, &TENANT.to_string()).replace(&hash, &b64(&hash, true)),
            basic_in(default_env),
            &["environment_not_canonical", "hash_not_hex"],
            &[Some(Environment), Some(Binding)],
        ),
        case(
            "self-signed form for a CA certificate + tenant big-endian",
            &v2,
            &tenant_be(&with_segment(&v2, Binding, &format!("h/{leaf_hash}"))),
            with_cert(&leaf),
            &["tenant_big_endian", "binding_kind_mismatch"],
            &[Some(Tenant), Some(Binding)],
        ),
        case(
            "three: pre-production app + swapped names",
            &v2,
            &preprod(&name_hash(&name_hash(&v2, "i", &leaf_subject), "s", &leaf_issuer)),
            with_cert(&leaf),
            &["app_segment_not_platform", "names_swapped", "names_swapped"],
            &[Some(App), Some(Binding), Some(Binding)],
        ),
        case(
            "hash of the .pfx, in upper case",
            &leaf_h,
            &leaf_h.replace(&leaf_hash, &pfx_hash.to_uppercase()),
            with_file("leaf.pfx", Some("fixture")),
            &["hash_uppercase", "hash_of_container_file"],
            &[Some(Binding), Some(Binding)],
        ),
    ];
    // The Default environment the other way round: the platform writing the bare GUID, the FIC `Default-{tenant}`.
    let ss_bare = with_segment(&ss_default, Environment, &TENANT.to_string());
    cases.push(case(
        "Default- where the platform writes the bare tenant GUID",
        &ss_bare,
        &ss_default,
        basic_in(EnvironmentId::Guid(TENANT)),
        &["environment_not_canonical"],
        &[Some(Environment)],
    ));
    // Version 1 with the whole names where the platform writes the CN values (Microsoft's migration scripts, and
    // earlier versions of this tool).
    let whole = v1
        .replace("/i/Contoso Root CA/", "/i/CN=Contoso Root CA, O=Contoso, C=US/")
        .replace("/s/Contoso Plug-in Signing", "/s/CN=Contoso Plug-in Signing, OU=Dataverse, O=Contoso, C=US");
    cases.push(case(
        "version 1, the whole names where the platform writes the CN values",
        &v1,
        &whole,
        with_cert(&leaf),
        &["v1_whole_name", "v1_whole_name"],
        &[Some(Binding), Some(Binding)],
    ));
    // The FIC's issuer and audience, with the subject right.
    let issuer_case = |name: &'static str, issuer: String, causes: &'static [&'static str]| Case {
        name,
        error: aadsts700211(),
        presented: ss.clone(),
        configured: ConfiguredFic { subject: ss.clone(), issuer: Some(issuer), audience: None, created: None },
        inputs: basic(),
        causes,
        segments: &[Some(Issuer)],
    };
    cases.push(issuer_case(
        "issuer sts.windows.net",
        format!("https://sts.windows.net/{TENANT}/"),
        &["issuer_mismatch"],
    ));
    cases.push(issuer_case(
        "issuer without /v2.0",
        format!("https://login.microsoftonline.com/{TENANT}"),
        &["issuer_mismatch"],
    ));
    cases.push(issuer_case(
        "issuer with a trailing slash",
        format!("https://login.microsoftonline.com/{TENANT}/v2.0/"),
        &["issuer_mismatch"],
    ));
    cases.push(issuer_case(
        "issuer of another tenant",
        format!("https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"),
        &["issuer_mismatch"],
    ));
    let audience_case = |name: &'static str, audience: &str, causes: &'static [&'static str]| Case {
        name,
        error: aadsts700212(),
        presented: ss.clone(),
        configured: ConfiguredFic {
            subject: ss.clone(),
            issuer: None,
            audience: Some(audience.to_owned()),
            created: None,
        },
        inputs: basic(),
        causes,
        segments: &[Some(Audience)],
    };
    cases.push(audience_case("audience in lower case", "api://azureadtokenexchange", &["audience_mismatch"]));
    cases.push(audience_case("another cloud's audience", "api://AzureADTokenExchangeUSGov", &["wrong_cloud"]));
    cases
}

#[test]
fn every_case_names_exactly_its_causes_segment_by_segment() {
    let cases = corpus();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let combinations = cases.iter().filter(|c| c.causes.len() >= 2).count();
    assert!(combinations >= 10, "{combinations} combinations");
    println!("{} cases, {combinations} with two or three findings", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let inputs = DiagnosisInputs { configured: vec![c.configured.clone()], ..c.inputs.clone() };
        let d = explain(&parse_error(&c.error).unwrap(), &inputs);
        let causes: Vec<&str> = d.findings.iter().map(|f| f.cause.id()).collect();
        let segments: Vec<Option<Segment>> = d.findings.iter().map(|f| f.segment).collect();
        if causes != c.causes || segments != c.segments {
            failures.push(format!(
                "{}: expected {:?} in {:?}, got {causes:?} in {segments:?}\n{d}",
                c.name, c.causes, c.segments
            ));
            continue;
        }
        // Every finding says what was found and what it should be, and the corrected subject is the presented one.
        for f in d.findings.iter().filter(|f| f.segment.is_some()) {
            if f.expected.is_none() || f.fix.is_empty() {
                failures.push(format!("{}: a finding without its expected value or fix: {f:?}", c.name));
            }
        }
        // explain-subject and diagnose agree: every segment explain-subject flags in the configured subject is one
        // diagnose names too.
        for problem in dataverse_mi::subject::explain_subject(&c.configured.subject).problems {
            if let Some(seg) = problem.segment()
                && !segments.contains(&Some(seg))
            {
                failures.push(format!("{}: explain-subject flags {} ({seg}), diagnose does not", c.name, problem.id()));
            }
            // Outside every segment, by the same identifier (one vocabulary for both).
            if problem.segment().is_none() && !causes.contains(&problem.id()) {
                failures.push(format!("{}: explain-subject flags {}, diagnose does not", c.name, problem.id()));
            }
        }
        let touches_subject = d.findings.iter().any(|f| f.segment.is_some_and(|s| !matches!(s, Issuer | Audience)));
        if touches_subject && d.corrected_subject.as_deref() != Some(c.presented.as_str()) {
            failures.push(format!("{}: corrected subject {:?}", c.name, d.corrected_subject));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

#[test]
fn the_text_rendering_lists_each_finding_and_the_corrected_subject_once() {
    let ss = subject(&cert("self-signed-comma.cer"), SubjectFormatVersion::V2);
    let hash = cert("self-signed-comma.cer").sha256().to_string();
    let configured = with_segment(&ss, Tenant, &encode_guid_big_endian(TENANT)).replace(&hash, &hash.to_uppercase());
    let d = explain(
        &parse_error(&aadsts700213(&ss)).unwrap(),
        &DiagnosisInputs { configured: vec![configured.into()], ..basic() },
    );
    let text = d.to_string();
    assert!(text.contains("1. [tenant_big_endian] (tenant)"), "{text}");
    assert!(text.contains("2. [hash_uppercase] (certificate)"), "{text}");
    assert_eq!(
        text.matches(&ss).count(),
        3,
        "the error, the presented subject, and the corrected subject once: {text}"
    );
    assert!(text.ends_with(&format!("the FIC's subject, corrected: {ss}")), "{text}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn arb_subject() -> impl Strategy<Value = String> {
        (any::<u128>(), any::<u128>(), any::<bool>(), any::<[u8; 32]>(), any::<bool>()).prop_map(
            |(tenant, env, default, hash, trusted)| {
                let tenant = Uuid::from_u128(tenant);
                let env =
                    if default { EnvironmentId::Default { tenant } } else { EnvironmentId::Guid(Uuid::from_u128(env)) };
                let binding = if trusted {
                    CertificateBinding::TrustedV2 {
                        issuer_hash: NameHash(hash),
                        subject_hash: NameHash([hash[0] ^ 1; 32]),
                    }
                } else {
                    CertificateBinding::SelfSigned { sha256: dataverse_mi::cert::CertificateHash(hash) }
                };
                SubjectIdentifier::new(&Cloud::Public.into(), tenant, env, binding).unwrap().to_string()
            },
        )
    }

    fn arb_segment() -> impl Strategy<Value = Segment> {
        prop::sample::select(vec![Prefix, Tenant, App, Component, Environment, Binding])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn a_correct_subject_yields_no_finding(s in arb_subject()) {
            prop_assert!(analyze(&s, &s, &basic()).is_empty());
            let d = explain(&parse_error(&aadsts700213(&s)).unwrap(), &DiagnosisInputs { configured: vec![s.clone().into()], ..Default::default() });
            // The only thing left to say of a FIC that matches exactly is that it may still be propagating.
            prop_assert_eq!(d.findings.iter().map(|f| f.cause.id()).collect::<Vec<_>>(), ["propagation_delay"]);
        }

        #[test]
        fn every_single_segment_mutation_is_named_in_that_segment(
            s in arb_subject(),
            segment in arb_segment(),
            value in "[A-Za-z0-9_-]{1,40}",
        ) {
            let value = match segment {
                Prefix => format!("/eid1/c/{value}"),
                Binding => format!("h/{value}"),
                _ => value,
            };
            let mutated = with_segment(&s, segment, &value);
            prop_assume!(mutated != s);
            let findings = analyze(&s, &mutated, &basic());
            prop_assert!(
                findings.iter().any(|f| f.segment == Some(segment)),
                "mutating {:?} to {:?} gave {:?}", segment, value, findings.iter().map(|f| (f.segment, f.cause.id())).collect::<Vec<_>>()
            );
        }
    }
}
