//! The command line: each offline command, text and JSON, exit codes, and errors on stderr.
#![cfg(feature = "cli")]

use std::process::{Command, Output};

use dataverse_mi::cert::Certificate;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const ENV: &str = "7efcc31a-c410-e20e-9b3c-3ea55e7f9c56";
const SELF_SIGNED_SHA256: &str = "a9f605f46541a0aa9a71a0be9c69960abc6cfa3ff1cffaa02321581ff218ac91";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dataverse-mi")).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// A spec file in `examples/specs/`.
#[cfg(feature = "testkit")]
fn example_spec(name: &str) -> String {
    format!("{}/examples/specs/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The certificate the example specs name.
#[cfg(feature = "testkit")]
fn example_certificate() -> dataverse_mi::cert::Certificate {
    dataverse_mi::cert::Certificate::from_file(format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .certificate
}

/// An endpoints file for the fake at `fake_url`, as `dataverse-mi fake` writes it; its path.
#[cfg(feature = "testkit")]
fn endpoints_for(fake_url: &str) -> String {
    let port = fake_url.rsplit(':').next().unwrap_or("0").trim_end_matches('/');
    let path = std::env::temp_dir().join(format!("dataverse-mi-endpoints-{}-{port}.json", std::process::id()));
    let file = dataverse_mi::clients::EndpointsFile::fake_at(fake_url);
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    path.display().to_string()
}

/// Runs a spec command (`plan`, `apply`, `verify`, `watch`) with `-f spec` against the fake at `fake_url`.
#[cfg(feature = "testkit")]
fn with_spec_against(args: &[&str], spec: &str, fake_url: &str) -> Output {
    let endpoints = endpoints_for(fake_url);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-f", spec, "--endpoints", &endpoints]);
    run(&all)
}

fn expected_self_signed() -> String {
    format!("/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/{ENV}/h/{SELF_SIGNED_SHA256}")
}

#[test]
fn subject_from_cert_prints_the_subject_alone() {
    let o = run(&["subject", "--tenant", TENANT, "--environment", ENV, "--cert", &fixture("self-signed-comma.cer")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{}\n", expected_self_signed()));
}

#[test]
fn subject_from_a_hash_as_tools_print_it() {
    let colons: Vec<String> =
        SELF_SIGNED_SHA256.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).to_uppercase()).collect();
    let o = run(&[
        "subject",
        "--tenant",
        &format!("{{{}}}", TENANT.to_uppercase()),
        "--environment",
        ENV,
        "--sha256",
        &colons.join(":"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), expected_self_signed());
}

#[test]
fn subject_from_dotnet_names_and_clouds() {
    let o = run(&[
        "subject",
        "--tenant",
        TENANT,
        "--environment",
        ENV,
        "--issuer-dn",
        "CN=Contoso Root CA, O=Contoso, C=US",
        "--subject-dn",
        "CN=Contoso Plug-in Signing, OU=Dataverse, O=Contoso, C=US",
        "--cloud",
        "GCCHigh",
        "--output",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let leaf =
        run(&["subject", "--tenant", TENANT, "--environment", ENV, "--cert", &fixture("leaf.cer"), "--cloud", "dod"]);
    assert_eq!(v["subject"].as_str().unwrap(), stdout(&leaf).trim());
    assert!(v["subject"].as_str().unwrap().starts_with("/eid1/c/usg/"));
    assert_eq!(v["audience"], "api://AzureADTokenExchangeUSGov");
    assert_eq!(v["issuer"], format!("https://login.microsoftonline.us/{TENANT}/v2.0"));
    assert_eq!(v["binding"]["kind"], "trusted_v2");
}

#[test]
fn subject_version_1_refuses_a_comma_in_the_cn_only() {
    // The CN "Strings, All" has a comma: Microsoft documents AADSTS700213 for it.
    let o = run(&[
        "subject",
        "--tenant",
        TENANT,
        "--environment",
        ENV,
        "--cert",
        &fixture("string-types.cer"),
        "--kind",
        "trusted",
        "--format-version",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("AADSTS700213"), "{}", stderr(&o));
    assert!(stderr(&o).contains("Strings, All"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    // An ordinary CA-issued certificate gives a version 1 subject of its two CN values (Microsoft's version 1 page:
    // "from the certificate Common Name"; the fixture's CNs are in tests/fixtures/make-certs.sh).
    let o = run(&[
        "subject",
        "--tenant",
        TENANT,
        "--environment",
        ENV,
        "--cert",
        &fixture("leaf.cer"),
        "--format-version",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).trim().ends_with("/i/Contoso Root CA/s/Contoso Plug-in Signing"), "{}", stdout(&o));
}

#[test]
fn subject_for_the_default_environment() {
    let env = format!("Default-{TENANT}");
    let o = run(&["subject", "--tenant", TENANT, "--environment", &env, "--cert", &fixture("self-signed-comma.cer")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("/n/plugin/e/Default-{TENANT}/h/")), "{}", stdout(&o));
    let o =
        run(&["subject", "--tenant", TENANT, "--environment", "Default", "--cert", &fixture("self-signed-comma.cer")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--environment") && stderr(&o).contains("Default-{tenant GUID}"), "{}", stderr(&o));
}

#[test]
fn fic_bodies_for_graph_and_arm() {
    let cert = fixture("self-signed-comma.cer");
    let g = run(&["fic", "--tenant", TENANT, "--environment", ENV, "--cert", &cert]);
    assert!(g.status.success(), "{}", stderr(&g));
    let v = json(&g);
    assert_eq!(v["subject"], expected_self_signed());
    assert_eq!(v["issuer"], format!("https://login.microsoftonline.com/{TENANT}/v2.0"));
    assert_eq!(v["audiences"], serde_json::json!(["api://AzureADTokenExchange"]));
    // Named for adding by hand: never taken by prune, rotation or destroy for one the engine made.
    assert!(v["name"].as_str().unwrap().starts_with(&format!("manual-{ENV}-")), "{v}");

    let a =
        run(&["fic", "--tenant", TENANT, "--environment", ENV, "--cert", &cert, "--target", "arm", "--name", "my-fic"]);
    assert!(a.status.success(), "{}", stderr(&a));
    let v = json(&a);
    assert_eq!(v["properties"]["subject"], expected_self_signed());
    assert!(v.get("name").is_none());
    assert!(stderr(&a).contains("federatedIdentityCredentials/my-fic"));

    let bad = run(&["fic", "--tenant", TENANT, "--environment", ENV, "--cert", &cert, "--name", "no spaces allowed"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("letters, digits"), "{}", stderr(&bad));
}

#[test]
fn cert_command_text_and_json() {
    let o = run(&["cert", &fixture("leaf.cer"), "--output", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "issuer",
            "issuer_cn",
            "issuer_hash",
            "self_signed",
            "sha1",
            "sha256",
            "subject",
            "subject_cn",
            "subject_hash",
            "valid"
        ]
    );
    assert_eq!(v["valid"], "2026-11-22T22:59:26Z to 2126-10-29T22:59:26Z");
    assert_eq!(v["subject"], "CN=Contoso Plug-in Signing, OU=Dataverse, O=Contoso, C=US");
    assert_eq!(v["issuer_cn"], "Contoso Root CA");
    assert_eq!(v["subject_cn"], "Contoso Plug-in Signing");
    assert_eq!(v["self_signed"], false);

    let t = run(&["cert", &fixture("chain-with-key.pem")]);
    assert!(t.status.success());
    assert!(stdout(&t).contains("subject:      CN=Contoso Plug-in Signing"));
    assert!(stdout(&t).contains("\nvalid:        2026-11-22T22:59:26Z to 2126-10-29T22:59:26Z"), "{}", stdout(&t));
    assert!(stderr(&t).contains("first one was taken"), "{}", stderr(&t));
}

#[test]
fn guid_commands() {
    let e = run(&["encode-guid", TENANT]);
    assert_eq!(stdout(&e), "v4j5cvGGr0GRqy180BHbRw\n");
    let d = run(&["decode-guid", "qzXoWDkuqUa3l6zM5mM0Rw", "--output", "json"]);
    assert_eq!(json(&d)["guid"], "58e835ab-2e39-46a9-b797-accce6633447");
    let bad = run(&["decode-guid", "v4j5cvGGr0GRqy180BHbRw=="]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("padding"));
    let junk = run(&["encode-guid", "not-a-guid"]);
    assert_eq!(junk.status.code(), Some(1));
    assert!(stderr(&junk).contains("not a GUID"));
}

#[test]
fn explain_subject_exit_codes() {
    let ok = run(&["explain-subject", &expected_self_signed()]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("well-formed"));

    let upper = expected_self_signed().replace(SELF_SIGNED_SHA256, &SELF_SIGNED_SHA256.to_uppercase());
    let bad = run(&["explain-subject", &upper, "--output", "json"]);
    assert_eq!(bad.status.code(), Some(2));
    let v = json(&bad);
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["id"], "hash_uppercase");
    assert_eq!(v["problems"][0]["severity"], "error");
}

#[test]
fn explain_subject_names_other_clusters_and_version_1_whole_names() {
    let preprod = expected_self_signed().replace("/a/qzXoWDkuqUa3l6zM5mM0Rw/", "/a/CQSGf3JJtEi27nY2ePL7UQ/");
    let o = run(&["explain-subject", &preprod]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("a Microsoft pre-production cluster's app"), "{}", stdout(&o));
    assert!(stdout(&o).contains("[app_segment_not_platform] (likely)"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("your own app"), "{}", stdout(&o));

    let v1 = format!(
        "/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/Default-{TENANT}/i/CN=Contoso Root CA, O=Contoso, C=US/s/CN=Contoso Plug-in Signing, OU=Dataverse, O=Contoso, C=US"
    );
    // Whole names, as Microsoft's migration scripts (and earlier versions of this tool) wrote them: a named mistake, with
    // the subject the platform presents.
    let o = run(&["explain-subject", &v1]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stdout(&o).contains("[v1_whole_name]"), "{}", stdout(&o));
    let cn = format!(
        "/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/Default-{TENANT}/i/Contoso Root CA/s/Contoso Plug-in Signing"
    );
    assert!(stdout(&o).contains(&format!("corrected:   {cn}")), "{}", stdout(&o));
    let o = run(&["explain-subject", &cn]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("trusted CA, version 1"), "{}", stdout(&o));
    // The documented failing case is still flagged: a comma inside the CN.
    let comma = cn.replace("/s/Contoso Plug-in Signing", "/s/Contoso, Inc.");
    let o = run(&["explain-subject", &comma, "--output", "json"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json(&o)["problems"][0]["id"], "v1_name_has_comma");
    assert_eq!(json(&o)["problems"][0]["detail"]["cn"], "Contoso, Inc.");
}

#[test]
fn bad_input_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["subject", "--tenant", "nope", "--environment", ENV, "--sha256", SELF_SIGNED_SHA256], "--tenant"),
        (&["subject", "--tenant", TENANT, "--environment", ENV, "--sha256", "abc"], "64 hex digits"),
        (
            &["subject", "--tenant", TENANT, "--environment", ENV, "--sha256", SELF_SIGNED_SHA256, "--cloud", "mars"],
            "unknown cloud",
        ),
        (&["subject", "--tenant", TENANT, "--environment", ENV], "give the certificate"),
        (
            &["subject", "--tenant", TENANT, "--environment", ENV, "--sha256", SELF_SIGNED_SHA256, "--kind", "trusted"],
            "--issuer-dn",
        ),
        (&["subject", "--tenant", TENANT, "--environment", ENV, "--cert", "/nonexistent.cer"], "cannot read"),
        (&["cert", "/work/none"], "cannot read"),
    ];
    for (args, needle) in cases {
        let o = run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
    let pfx = run(&["cert", &fixture("leaf.pfx")]);
    assert_eq!(pfx.status.code(), Some(1));
    assert!(stderr(&pfx).contains("PFX password is wrong"), "{}", stderr(&pfx));
}

/// Every error the CLI prints for the inputs people get wrong reads as words: no Rust `Debug` rendering (`Some(..)`,
/// `Unsupported(8)`, `Os { code: .. }`, escaped quotes) and no example file name in place of the user's.
#[test]
fn no_debug_text_in_any_error_the_cli_prints() {
    let dir = std::env::temp_dir().join(format!("dvmi-bad-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    };
    let signed = |name: &str| std::fs::read(fixture(&format!("signed/{name}"))).unwrap();
    let unsigned_dll = write("Fabrikam.Plugins.dll", &signed("unsigned.dll"));
    let unsigned_nupkg = write("Fabrikam.Plugins.1.2.3.nupkg", &signed("unsigned.nupkg"));
    let compressed = write("compressed.nupkg", &signed("compressed-signature.nupkg"));
    let mut truncated_pe = signed("signed.dll");
    truncated_pe.truncate(300);
    let truncated_pe = write("truncated.dll", &truncated_pe);
    let empty = write("empty.cer", b"");
    let text = write("notes.txt", b"just some words, not a certificate\n");
    let bad_toml = write("bad.toml", b"[identity\nname = ");
    let unknown_field = write("unknown.toml", b"cloud = \"public\"\ncolour = \"blue\"\n");
    let wrong_type = write("wrong.toml", b"environments = 3\n");
    let bad_json = write("bad.json", b"{\"identity\": ");
    let bad_plan = write("plan.json", b"{\"format\": 9}");
    let dir_text = dir.display().to_string();
    let (key_only, pfx) = (fixture("key-only.pem"), fixture("leaf.pfx"));
    let cases: Vec<Vec<&str>> = vec![
        vec!["cert", &unsigned_dll],
        vec!["cert", &unsigned_nupkg],
        vec!["cert", &compressed],
        vec!["cert", &truncated_pe],
        vec!["cert", &empty],
        vec!["cert", &text],
        vec!["cert", &dir_text],
        vec!["cert", "/nonexistent/none.cer"],
        vec!["cert", &key_only],
        vec!["cert", &pfx],
        vec!["cert", &pfx, "--password-env", "DVMI_UNSET_PASSWORD_VARIABLE"],
        vec!["subject", "--tenant", "nope", "--environment", ENV, "--sha256", SELF_SIGNED_SHA256],
        vec!["subject", "--tenant", TENANT, "--environment", "not-an-id", "--sha256", SELF_SIGNED_SHA256],
        vec!["subject", "--tenant", TENANT, "--environment", ENV, "--sha256", "abc"],
        vec!["subject", "--tenant", TENANT, "--environment", ENV, "--cert", &unsigned_dll],
        vec![
            "subject",
            "--tenant",
            TENANT,
            "--environment",
            ENV,
            "--issuer-dn",
            "CN=a, b",
            "--subject-dn",
            "CN=x",
            "--subject-version",
            "1",
        ],
        vec!["encode-guid", "not-a-guid"],
        vec!["decode-guid", "!!"],
        vec!["explain-subject", "garbage"],
        vec!["diagnose", "--error", "no code here"],
        vec!["plan", "-f", "/nonexistent/spec.toml"],
        vec!["plan", "-f", &bad_toml],
        vec!["plan", "-f", &unknown_field],
        vec!["plan", "-f", &wrong_type],
        vec!["plan", "-f", &bad_json],
        vec!["apply", "--plan", &bad_plan, "-f", &unknown_field],
        vec!["fake", "--scenario", "nope"],
    ];
    let debug_marks =
        ["Some(", "None)", "Ok(", "Err(", "Os {", "kind: ", "Unsupported(", "\\\"", "Error {", "Contoso.Plugins"];
    for args in &cases {
        let o = run(args);
        // An error on stderr; a report of what is wrong (explain-subject) on stdout.
        let err = format!("{}{}", stderr(&o), stdout(&o));
        assert_ne!(o.status.code(), Some(0), "{args:?} should fail: {err}");
        assert!(!err.trim().is_empty(), "{args:?}: an error says something");
        for mark in debug_marks {
            assert!(!err.contains(mark), "{args:?} prints {mark:?}: {err}");
        }
    }
    // The unsigned files are named as the user named them.
    assert!(stderr(&run(&["cert", &unsigned_dll])).contains(&unsigned_dll));
    assert!(stderr(&run(&["cert", &unsigned_nupkg])).contains(&unsigned_nupkg));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `cert new` writes a PFX and a .cer that `cert` reads back, prints the segments a plug-in signed with it
/// presents, reads the password from the variable it is named by, and refuses to overwrite or to go on without it.
#[test]
fn cert_new_makes_a_development_code_signing_certificate() {
    let dir = std::env::temp_dir().join(format!("dvmi-cert-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pfx = dir.join("signing.pfx").display().to_string();
    let cer = dir.join("signing.cer").display().to_string();
    let new = |extra: &[&str], var: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dataverse-mi"));
        command.args(["cert", "new", "--subject", "CN=Fabrikam Plug-ins, O=Fabrikam, C=NL", "--pfx", &pfx]);
        command.args(["--password-env", "DVMI_TEST_PFX_PASSWORD", "--key", "ecdsa-p256"]).args(extra);
        match var {
            Some(v) => command.env("DVMI_TEST_PFX_PASSWORD", v),
            None => command.env_remove("DVMI_TEST_PFX_PASSWORD"),
        };
        command.output().unwrap()
    };
    let o = new(&["--output", "json", "--tenant", TENANT, "--environment", ENV], Some("dev only"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["subject"], "CN=Fabrikam Plug-ins, O=Fabrikam, C=NL");
    let sha256 = j["sha256"].as_str().unwrap().to_owned();
    assert_eq!(j["segments"]["v2"], format!("/h/{sha256}"));
    assert_eq!(j["segments"]["v1"], format!("/h/{sha256}"));
    let whole = j["subject_identifier"].as_str().unwrap();
    assert!(
        whole.starts_with("/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/") && whole.ends_with(&format!("/e/{ENV}/h/{sha256}")),
        "{whole}"
    );
    assert!(!stdout(&o).contains("dev only") && !stderr(&o).contains("dev only"), "the password is never printed");
    // Read back by `cert`: the .cer, and the PFX with its password.
    let back = run(&["cert", &cer, "--output", "json"]);
    assert_eq!(json(&back)["sha256"], sha256.as_str());
    let mut with_password = Command::new(env!("CARGO_BIN_EXE_dataverse-mi"));
    with_password.args(["cert", &pfx, "--password-env", "DVMI_TEST_PFX_PASSWORD", "--output", "json"]);
    let back = with_password.env("DVMI_TEST_PFX_PASSWORD", "dev only").output().unwrap();
    assert_eq!(json(&back)["sha256"], sha256.as_str(), "{}", stderr(&back));
    // Text: the warning that a self-signed certificate is for development.
    let text = new(&["--force"], Some("dev only"));
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    assert!(stdout(&text).contains("version 2: /h/") && stderr(&text).contains("development"), "{}", stdout(&text));
    // Refusals, files untouched.
    let before = std::fs::read(&pfx).unwrap();
    let exists = new(&[], Some("dev only"));
    assert_eq!(exists.status.code(), Some(1));
    assert!(stderr(&exists).contains("--force"), "{}", stderr(&exists));
    let unset = new(&["--force"], None);
    assert!(stderr(&unset).contains("DVMI_TEST_PFX_PASSWORD is not set"), "{}", stderr(&unset));
    let empty = new(&["--force"], Some(""));
    assert!(stderr(&empty).contains("is empty"), "{}", stderr(&empty));
    let bad_tenant = new(&["--force", "--tenant", "nope", "--environment", ENV], Some("dev only"));
    assert!(stderr(&bad_tenant).contains("--tenant"), "{}", stderr(&bad_tenant));
    assert_eq!(std::fs::read(&pfx).unwrap(), before, "a bad --tenant is refused before anything is written");
    let mut bad = Command::new(env!("CARGO_BIN_EXE_dataverse-mi"));
    bad.args([
        "cert",
        "new",
        "--subject",
        "CN=a,O=b",
        "--pfx",
        &pfx,
        "--password-env",
        "DVMI_TEST_PFX_PASSWORD",
        "--force",
    ]);
    let bad = bad.env("DVMI_TEST_PFX_PASSWORD", "x").output().unwrap();
    assert!(stderr(&bad).contains("'CN=a, O=b'"), "{}", stderr(&bad));
    assert_eq!(std::fs::read(&pfx).unwrap(), before, "a refused run leaves the files as they were");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sign` from nothing but an unsigned assembly and `cert new`'s PFX, read back by `cert`; then every bad input
/// gets a clear error and leaves the file as it was.
#[test]
fn sign_an_assembly_on_any_os() {
    let dir = std::env::temp_dir().join(format!("dvmi-sign-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).display().to_string();
    let with_password = |args: &[&str], password: &str| {
        Command::new(env!("CARGO_BIN_EXE_dataverse-mi"))
            .args(args)
            .env("DVMI_SIGN_PASSWORD", password)
            .output()
            .unwrap()
    };
    let (pfx, dll) = (path("signing.pfx"), path("Contoso.Plugins.dll"));
    std::fs::copy(fixture("signed/unsigned.dll"), &dll).unwrap();
    let made = with_password(
        &[
            "cert",
            "new",
            "--subject",
            "CN=Contoso Plug-ins, O=Contoso, C=US",
            "--pfx",
            &pfx,
            "--password-env",
            "DVMI_SIGN_PASSWORD",
        ],
        "pw",
    );
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    let sign = |extra: &[&str], password: &str| {
        let mut args = vec!["sign", dll.as_str(), "--pfx", pfx.as_str(), "--password-env", "DVMI_SIGN_PASSWORD"];
        args.extend(extra);
        with_password(&args, password)
    };
    let o = sign(&["--output", "json"], "pw");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let signed = json(&o);
    let read = json(&run(&["cert", &dll, "--output", "json"]));
    assert_eq!(read["subject"], "CN=Contoso Plug-ins, O=Contoso, C=US");
    assert_eq!(read["sha256"], signed["sha256"]);
    assert_eq!(signed["segment_v2"], format!("/h/{}", signed["sha256"].as_str().unwrap()));

    // Refused, the file untouched: signed already (without --replace), a wrong password, a PFX without its key,
    // a file that is not a PE, a truncated PE, a read-only file.
    let before = std::fs::read(&dll).unwrap();
    let again = sign(&[], "pw");
    assert!(stderr(&again).contains("--replace"), "{}", stderr(&again));
    let wrong = sign(&["--replace"], "not it");
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stderr(&wrong).contains("signing.pfx"), "{}", stderr(&wrong));
    let no_key = with_password(
        &[
            "sign",
            &dll,
            "--pfx",
            &fixture("signed/certs-only.pfx"),
            "--password-env",
            "DVMI_SIGN_PASSWORD",
            "--replace",
        ],
        "fixture",
    );
    assert!(stderr(&no_key).contains("no private key"), "{}", stderr(&no_key));
    assert_eq!(std::fs::read(&dll).unwrap(), before);
    let text = path("notes.dll");
    std::fs::write(&text, b"not a PE file").unwrap();
    let truncated = path("truncated.dll");
    std::fs::write(&truncated, &std::fs::read(fixture("signed/unsigned.dll")).unwrap()[..300]).unwrap();
    for bad in [&text, &truncated] {
        let original = std::fs::read(bad).unwrap();
        let o = with_password(&["sign", bad, "--pfx", &pfx, "--password-env", "DVMI_SIGN_PASSWORD"], "pw");
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("not a PE file"), "{}", stderr(&o));
        assert_eq!(std::fs::read(bad).unwrap(), original);
    }
    let mut permissions = std::fs::metadata(&dll).unwrap().permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&dll, permissions).unwrap();
    let read_only = sign(&["--replace"], "pw");
    assert!(stderr(&read_only).contains("read-only"), "{}", stderr(&read_only));
    assert_eq!(std::fs::read(&dll).unwrap(), before);

    // A CA-issued certificate from a PFX with its chain: the signer and the chain are in the signature.
    let other = path("other.dll");
    let o = with_password(
        &[
            "sign",
            &fixture("signed/unsigned.dll"),
            "--out",
            &other,
            "--pfx",
            &fixture("signed/modern.pfx"),
            "--password-env",
            "DVMI_SIGN_PASSWORD",
        ],
        "fixture",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let author = Certificate::from_file(fixture("signed/author.cer")).unwrap().certificate;
    let back = Certificate::from_file(&other).unwrap();
    assert_eq!(back.certificate, author);
    assert!(!back.chain.is_empty(), "the chain is in the signature");
    std::fs::remove_dir_all(&dir).unwrap_or_default();
}

#[test]
fn cert_and_subject_accept_pfx_dll_and_nupkg() {
    let signed = |n: &str| format!("{}/tests/fixtures/signed/{n}", env!("CARGO_MANIFEST_DIR"));
    let author = json(&run(&["cert", &signed("author.cer"), "--output", "json"]));
    let with_password = Command::new(env!("CARGO_BIN_EXE_dataverse-mi"))
        .args(["cert", &signed("modern.pfx"), "--password-env", "DVMI_TEST_PFX_PASSWORD", "--output", "json"])
        .env("DVMI_TEST_PFX_PASSWORD", "fixture")
        .output()
        .unwrap();
    assert!(with_password.status.success(), "{}", stderr(&with_password));
    assert_eq!(json(&with_password), author);
    for artifact in ["signed.dll", "signed.nupkg"] {
        let o = run(&["cert", &signed(artifact), "--output", "json"]);
        assert!(o.status.success(), "{artifact}: {}", stderr(&o));
        assert_eq!(json(&o), author, "{artifact}");
    }
    let subject = |file: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_dataverse-mi"))
            .args(["subject", "--tenant", TENANT, "--environment", ENV, "--cert", &signed(file), "--password-env", "P"])
            .env("P", "fixture")
            .output()
            .unwrap();
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(subject("signed.dll"), subject("legacy-3des.pfx"));
    assert_eq!(subject("signed.nupkg"), subject("author.cer"));

    let missing = run(&["cert", &signed("modern.pfx"), "--password-env", "DVMI_SURELY_UNSET_VARIABLE"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("DVMI_SURELY_UNSET_VARIABLE is not set"), "{}", stderr(&missing));
    let unsigned = run(&["cert", &signed("unsigned.dll")]);
    assert!(stderr(&unsigned).contains("not signed"), "{}", stderr(&unsigned));
}

#[test]
fn diagnose_explains_a_pasted_error() {
    let presented = expected_self_signed();
    let configured = presented.replace("v4j5cvGGr0GRqy180BHbRw", "cvmIv4bxQa-Rqy180BHbRw");
    let error = format!(
        "AADSTS700213: No matching federated identity record found for presented assertion subject '{presented}'. Trace ID: 0b1c2d3e-0000-4000-8000-000000000001 Correlation ID: 5d6e7f80-0000-4000-8000-000000000002 Timestamp: 2026-11-22 10:00:00Z"
    );
    let o = run(&["diagnose", "--error", &error, "--configured", &configured, "--output", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["code"], "AADSTS700213");
    assert_eq!(v["presented"]["subject"], presented);
    assert_eq!(v["presented"]["trace_id"], "0b1c2d3e-0000-4000-8000-000000000001");
    assert_eq!(v["findings"][0]["cause"], "tenant_big_endian");
    assert!(v["findings"][0]["fix"].as_str().unwrap().contains("v4j5cvGGr0GRqy180BHbRw"));

    // With the certificate as a PFX and an upper-case FIC: the text rendering names the cause and the fix.
    let pfx = format!("{}/tests/fixtures/signed/modern.pfx", env!("CARGO_MANIFEST_DIR"));
    let o = Command::new(env!("CARGO_BIN_EXE_dataverse-mi"))
        .args([
            "diagnose",
            "--error",
            &error,
            "--cert",
            &pfx,
            "--password-env",
            "P",
            "--tenant",
            TENANT,
            "--environment",
            ENV,
        ])
        .args(["--configured", &presented.to_uppercase().replace("/EID1/C/PUB", "/eid1/c/pub")])
        .env("P", "fixture")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // The PFX's certificate is not the one the platform presents (that is contoso-plugins.cer's hash): said first.
    assert!(stdout(&o).contains("1. [presented_other_certificate]"), "{}", stdout(&o));
    assert!(stdout(&o).contains("signed with another one"), "{}", stdout(&o));

    let bad = run(&["diagnose", "--error", "it broke"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("no AADSTS error code"), "{}", stderr(&bad));
}

/// The platform `examples/specs/contoso.toml` describes, on the fake: the app registration, two environments with
/// an assembly each, and a package in the first.
#[cfg(feature = "testkit")]
fn contoso_fake(options: dataverse_mi::testkit::FakeOptions) -> dataverse_mi::testkit::FakePlatform {
    let cert = example_certificate();
    let fake = dataverse_mi::testkit::FakePlatform::new(options);
    fake.add_application(CONTOSO_APP.parse().unwrap(), "Contoso plug-ins");
    for host in CONTOSO_HOSTS {
        fake.add_environment(host, TENANT.parse().unwrap());
        fake.add_plugin_assembly(host, "Contoso.Plugins", Some(cert.clone()));
    }
    fake.add_plugin_package(CONTOSO_HOSTS[0], "contoso_Integrations", Some(cert));
    fake
}

#[cfg(feature = "testkit")]
const CONTOSO_APP: &str = "0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b";
#[cfg(feature = "testkit")]
const CONTOSO_HOSTS: [&str; 2] = ["contoso-dev.crm.dynamics.com", "contoso-test.crm.dynamics.com"];

#[cfg(feature = "testkit")]
#[tokio::test(flavor = "multi_thread")]
async fn plan_apply_verify_against_the_fake() {
    let spec = example_spec("contoso.toml");
    let fake = contoso_fake(dataverse_mi::testkit::FakeOptions::default());
    let server = fake.start().await;
    let cli = |args: &[&str]| with_spec_against(args, &spec, &server.uri());

    let plan = cli(&["plan", "--output", "json"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert_eq!(json(&plan)["actions"].as_array().unwrap().len(), 2 + 2 + 3);

    let verify_before = cli(&["verify"]);
    assert_eq!(verify_before.status.code(), Some(2), "{}", stdout(&verify_before));
    assert!(stdout(&verify_before).contains("not bound"));

    // Not a terminal and no --yes: refuse.
    let refused = cli(&["apply"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("--yes"), "{}", stderr(&refused));
    assert_eq!(fake.writes(), 0);

    let apply = cli(&["apply", "--yes"]);
    assert!(apply.status.success(), "{}{}", stdout(&apply), stderr(&apply));
    assert!(stdout(&apply).contains("done"));
    // Off a terminal, progress is one line per action when it ends, each action once.
    let err = stderr(&apply);
    let progress: Vec<&str> = err.lines().filter_map(|l| l.strip_prefix("done: ")).collect();
    assert!(!progress.is_empty() && !stderr(&apply).contains("start:"), "{}", stderr(&apply));
    let mut unique = progress.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), progress.len(), "each action once: {progress:?}");
    assert_eq!(fake.graph_fics("0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b".parse().unwrap()).len(), 2);

    let verify = cli(&["verify", "--output", "json"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert!(json(&verify)["components"].as_array().unwrap().iter().all(|c| c["status"]["status"] == "ok"));

    let again = cli(&["plan"]);
    assert!(stdout(&again).contains("nothing to do"), "{}", stdout(&again));

    // watch: tracing is off; --enable-tracing switches it on; a failing run is found and explained.
    let quiet = cli(&["watch", "--since", "2d"]);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert!(stderr(&quiet).contains("records no plug-in traces"), "{}", stderr(&quiet));
    assert!(cli(&["watch", "--since", "2d", "--enable-tracing"]).status.success());
    let graph_fics = fake.graph_fics("0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b".parse().unwrap());
    let current = json(&cli(&["plan", "--output", "json"]));
    let dev_assembly = current["environments"][0]["components"][0]["id"].as_str().unwrap().parse().unwrap();
    let dev_environment = current["environments"][0]["environment_id"].as_str().unwrap().to_owned();
    assert!(fake.run_plugin("contoso-dev.crm.dynamics.com", dev_assembly, "Contoso.Plugins.Reader"));
    let clean = cli(&["watch", "--since", "1970-01-01T00:00:00Z", "--output", "json"]);
    assert!(clean.status.success(), "{}", stderr(&clean));
    assert!(stdout(&clean).is_empty(), "no failure yet: {}", stdout(&clean));
    // Break the setup behind the tool's back: the FIC replaced by one with the hash in upper case.
    let app: uuid::Uuid = "0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b".parse().unwrap();
    let mut broken = graph_fics.iter().find(|f| f.subject.contains(&dev_environment)).unwrap().clone();
    assert!(fake.remove_graph_fic(app, &broken.name));
    let hash = broken.subject.rsplit("/h/").next().unwrap().to_owned();
    broken.subject = broken.subject.replace(&hash, &hash.to_uppercase());
    broken.name = "hand-made".into();
    fake.seed_graph_fic(app, broken);
    assert!(!fake.run_plugin("contoso-dev.crm.dynamics.com", dev_assembly, "Contoso.Plugins.Reader"));
    let watched = cli(&["watch", "--since", "1970-01-01T00:00:00Z", "--output", "json"]);
    assert!(watched.status.success(), "{}", stderr(&watched));
    assert_eq!(stdout(&watched).lines().count(), 1, "one failure, one JSON line: {}", stdout(&watched));
    let failure: serde_json::Value = serde_json::from_str(stdout(&watched).trim()).unwrap();
    assert_eq!(failure["diagnosis"]["findings"][0]["cause"], "hash_uppercase");
    assert_eq!(failure["org_url"], "https://contoso-dev.crm.dynamics.com");
    let elsewhere = cli(&["watch", "--since", "1970-01-01T00:00:00Z", "--type", "Fabrikam.", "--output", "json"]);
    assert!(elsewhere.status.success() && stdout(&elsewhere).is_empty(), "{}", stdout(&elsewhere));
    let ours = cli(&["watch", "--since", "1970-01-01T00:00:00Z", "--type", "Contoso.Plugins.", "--output", "json"]);
    assert_eq!(stdout(&ours).lines().count(), 1, "{}", stdout(&ours));
    let bad_since = cli(&["watch", "--since", "yesterday"]);
    assert_eq!(bad_since.status.code(), Some(1));

    // diagnose -f: the app id, certificate, version and cloud come from the spec.
    let subject = fake.graph_fics("0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b".parse().unwrap())[0].subject.clone();
    let error = format!(
        "AADSTS700213: No matching federated identity record found for presented assertion subject '{subject}'."
    );
    let wrong = subject.replace("qzXoWDkuqUa3l6zM5mM0Rw", "LH1aC05vOk2cGyqOf21cSw");
    let d = run(&["diagnose", "--error", &error, "-f", &spec, "--configured", &wrong, "--output", "json"]);
    assert!(d.status.success(), "{}", stderr(&d));
    assert_eq!(json(&d)["findings"][0]["cause"], "user_app_id_in_app_segment");
}

#[cfg(feature = "testkit")]
#[tokio::test(flavor = "multi_thread")]
async fn the_whole_flow_from_nothing_with_the_example_spec() {
    use dataverse_mi::testkit::{FakeOptions, FakePlatform};
    let spec = example_spec("from-nothing.toml");
    let cert = example_certificate();
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_environment("contoso-dev.crm.dynamics.com", TENANT.parse().unwrap());
    fake.add_plugin_assembly("contoso-dev.crm.dynamics.com", "Contoso.Plugins", Some(cert));
    let server = fake.start().await;
    let cli = |args: &[&str]| with_spec_against(args, &spec, &server.uri());
    let (sub, rg, name) = ("00000000-0000-0000-0000-000000000001", "rg-plugins", "contoso-plugins");

    let plan = cli(&["plan", "--output", "json"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan = json(&plan);
    let kinds: Vec<&str> = plan["actions"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "create_identity",
            "assign_role",
            "grant_dataverse_access",
            "grant_api_permission",
            "create_fic",
            "create_managed_identity",
            "bind"
        ]
    );
    assert!(plan["found"].is_null());

    let verify_before = cli(&["verify"]);
    assert_eq!(verify_before.status.code(), Some(2));
    assert!(stdout(&verify_before).contains("DOES NOT EXIST"), "{}", stdout(&verify_before));

    let apply = cli(&["apply", "--yes"]);
    assert!(apply.status.success(), "{}{}", stdout(&apply), stderr(&apply));
    let (client_id, principal_id) = fake.user_assigned_identity(sub, rg, name).expect("created");
    assert_eq!(fake.role_assignments().len(), 1);
    assert_eq!(fake.role_assignments()[0].principal_id, principal_id);
    assert_eq!(fake.managed_identities("contoso-dev.crm.dynamics.com")[0].application_id, Some(client_id));
    assert_eq!(fake.application_user("contoso-dev.crm.dynamics.com", client_id).unwrap().1, ["Basic User"]);
    assert_eq!(fake.api_permissions(principal_id), ["User.Read.All"]);

    let verify = cli(&["verify", "--output", "json"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    let verify = json(&verify);
    assert_eq!(verify["identity_exists"], true);
    assert_eq!(verify["grants"][0]["assigned"], true);
    assert_eq!(verify["application_users"][0]["roles"][0]["given"], true);
    assert!(verify["api_permissions"][0]["existing"].is_string());
    assert!(stdout(&cli(&["plan"])).contains("nothing to do"));

    // Taken away when asked, and only then.
    let destroy = cli(&["destroy", "--access", "--yes"]);
    assert!(destroy.status.success(), "{}{}", stdout(&destroy), stderr(&destroy));
    assert_eq!(fake.application_user("contoso-dev.crm.dynamics.com", client_id).unwrap().1, Vec::<String>::new());
    assert!(fake.api_permissions(principal_id).is_empty());
}

/// `audit` on the estate scenario: the table, JSON and Markdown, the exit code of the worst finding, `--fix` specs
/// that `apply` carries out, after which no fixable finding is left; the audit itself writes nothing.
#[cfg(feature = "testkit")]
#[tokio::test(flavor = "multi_thread")]
async fn audit_the_estate_fix_apply_and_audit_again() {
    use dataverse_mi::testkit::{FakeOptions, Seed};
    let fake = Seed::scenario("estate").unwrap().build(FakeOptions::default()).unwrap();
    let server = fake.start().await;
    let spec = example_spec("estate.toml");
    let endpoints = endpoints_for(&server.uri());
    let audit = |extra: &[&str]| {
        let mut args = vec!["audit", "-f", spec.as_str(), "--endpoints", endpoints.as_str()];
        args.extend_from_slice(extra);
        run(&args)
    };
    let text = audit(&[]);
    assert_eq!(text.status.code(), Some(2), "errors found: {}", stderr(&text));
    assert!(
        stdout(&text).contains("[row_other_tenant]") && stdout(&text).contains("worst: error"),
        "{}",
        stdout(&text)
    );
    let markdown = audit(&["--output", "markdown"]);
    assert!(stdout(&markdown).starts_with("# Plug-in managed identity audit"));
    let writes = fake.writes();
    let dir = std::env::temp_dir().join(format!("dataverse-mi-audit-fix-{}", std::process::id()));
    let json_run = audit(&["--output", "json", "--fix", dir.to_str().unwrap()]);
    let report = json(&json_run);
    assert_eq!(fake.writes(), writes, "audit writes nothing");
    let fixable =
        |r: &serde_json::Value| r["findings"].as_array().unwrap().iter().filter(|f| f["fixable"] == true).count();
    assert!(fixable(&report) > 0);
    let mut specs: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    specs.sort();
    assert!(!specs.is_empty(), "{}", stderr(&json_run));
    for fix in &specs {
        let apply = run(&["apply", "-f", fix.to_str().unwrap(), "--endpoints", &endpoints, "--yes"]);
        assert!(apply.status.success(), "{}: {}{}", fix.display(), stdout(&apply), stderr(&apply));
    }
    let after = json(&audit(&["--output", "json"]));
    assert_eq!(fixable(&after), 0, "{after:#}");
    let _ = std::fs::remove_dir_all(&dir);

    // The same estate found through the Global Discovery Service, and given as URLs.
    let discovered = run(&["audit", "--discover", "--endpoints", &endpoints, "--output", "json"]);
    let discovered = json(&discovered);
    assert_eq!(discovered["environments"].as_array().unwrap().len(), 9, "every environment discovery lists");
    let one = run(&[
        "audit",
        "--url",
        "https://estate-004-unknown-app.crm.dynamics.com",
        "--endpoints",
        &endpoints,
        "--output",
        "json",
    ]);
    assert_eq!(one.status.code(), Some(2));
    assert_eq!(json(&one)["findings"][0]["kind"], "unknown_application");
    let none = run(&["audit", "--endpoints", &endpoints]);
    assert_eq!(none.status.code(), Some(1));
    assert!(stderr(&none).contains("give the environments"), "{}", stderr(&none));
}

/// `watch --follow` polls until Ctrl-C (SIGINT), then exits cleanly.
#[cfg(all(feature = "testkit", unix))]
#[tokio::test(flavor = "multi_thread")]
async fn watch_follow_stops_on_ctrl_c() {
    use dataverse_mi::testkit::{FakeOptions, FakePlatform};
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let spec = example_spec("contoso.toml");
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_application("0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b".parse().unwrap(), "Contoso plug-ins");
    for host in ["contoso-dev.crm.dynamics.com", "contoso-test.crm.dynamics.com"] {
        fake.add_environment(host, TENANT.parse().unwrap());
    }
    let server = fake.start().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dataverse-mi"))
        .args(["watch", "--follow", "--interval", "300", "-f", &spec, "--endpoints", &endpoints_for(&server.uri())])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    // The first pass is done and the process waits for the next one (300 s away).
    while !seen.contains("Ctrl-C stops") {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the watch ended early: {seen}");
        seen.push_str(&line);
    }
    let polls = fake.count("GET dataverse plugintracelogs".parse().unwrap());
    assert_eq!(polls, 2, "one poll per environment so far");
    let interrupted = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(interrupted.success());
    // Waiting in a thread, so that a watch that ignores Ctrl-C fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait()));
    let status =
        rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the watch did not stop on Ctrl-C").unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(fake.count("GET dataverse plugintracelogs".parse().unwrap()), polls, "no poll after Ctrl-C");
}

#[cfg(feature = "testkit")]
#[tokio::test(flavor = "multi_thread")]
async fn plan_out_then_apply_the_stored_plan() {
    let spec = example_spec("contoso.toml");
    let fake = contoso_fake(dataverse_mi::testkit::FakeOptions::default());
    let server = fake.start().await;
    let dir = std::env::temp_dir().join(format!("dataverse-mi-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (first, second) = (dir.join("first.json"), dir.join("second.json"));

    let plan = with_spec_against(&["plan", "--out", first.to_str().unwrap()], &spec, &server.uri());
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert!(stderr(&plan).contains("plan written to"), "{}", stderr(&plan));
    assert_eq!(fake.writes(), 0);
    // A second plan of the same state, stored for later.
    assert!(with_spec_against(&["plan", "--out", second.to_str().unwrap()], &spec, &server.uri()).status.success());

    let apply = run(&["apply", first.to_str().unwrap(), "--yes", "--endpoints", &endpoints_for(&server.uri())]);
    assert!(apply.status.success(), "{}{}", stdout(&apply), stderr(&apply));
    assert_eq!(fake.graph_fics("0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b".parse().unwrap()).len(), 2);

    // The second plan read the state before the first was applied, and plans the same: already applied, refused,
    // nothing written.
    let writes = fake.writes();
    let stale = run(&["apply", second.to_str().unwrap(), "--yes", "--endpoints", &endpoints_for(&server.uri())]);
    assert_eq!(stale.status.code(), Some(1), "{}", stdout(&stale));
    assert!(stderr(&stale).contains("the plan was already applied"), "{}", stderr(&stale));
    assert_eq!(fake.writes(), writes);
    // A stored plan edited by hand does not read back.
    let text = std::fs::read_to_string(&second).unwrap().replacen("\"version\": 2", "\"version\": 1", 1);
    std::fs::write(&second, text).unwrap();
    let edited = run(&["apply", second.to_str().unwrap(), "--yes", "--endpoints", &endpoints_for(&server.uri())]);
    assert_eq!(edited.status.code(), Some(1), "{}", stdout(&edited));
    assert!(stderr(&edited).contains("the plan was changed after it was written"), "{}", stderr(&edited));
    assert_eq!(fake.writes(), writes);
    // Both a plan file and a spec: refused.
    let both =
        run(&["apply", second.to_str().unwrap(), "-f", &spec, "--yes", "--endpoints", &endpoints_for(&server.uri())]);
    assert_eq!(both.status.code(), Some(1));
    assert!(stderr(&both).contains("not both"), "{}", stderr(&both));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A real process killed half-way (SIGKILL, after N requests), then run again: the state converges, with no
/// duplicate rows or FICs.
#[cfg(feature = "testkit")]
#[tokio::test(flavor = "multi_thread")]
async fn apply_killed_half_way_converges_on_the_next_run() {
    use dataverse_mi::testkit::FakeOptions;
    use std::time::Duration;
    let spec = example_spec("contoso.toml");
    // 50 ms per request (over loopback, real time): the kill lands while the apply is under way.
    let fake = contoso_fake(FakeOptions { latency: Duration::from_millis(50), ..FakeOptions::default() });
    let app: uuid::Uuid = CONTOSO_APP.parse().unwrap();
    let hosts = CONTOSO_HOSTS;
    let server = fake.start().await;
    // How many requests planning makes (in batches: the envelopes and what is inside them).
    assert!(with_spec_against(&["plan"], &spec, &server.uri()).status.success());
    let planning = fake.requests().len();
    fake.clear_log();

    let mut child = Command::new(env!("CARGO_BIN_EXE_dataverse-mi"))
        .args(["apply", "-f", &spec, "--yes", "--endpoints", &endpoints_for(&server.uri())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Once the first write has landed (the FICs' batch), stop it dead: the change sets are still to come.
    tokio::time::timeout(Duration::from_secs(60), fake.requests_reached(planning + 1))
        .await
        .expect("the apply got going");
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by the signal, not finished: {status:?}");
    let writes = fake.writes();
    assert!(writes > 0, "some writes happened before the kill");
    let rows: usize = hosts.iter().map(|h| fake.managed_identities(h).len()).sum();
    assert!(rows < hosts.len(), "killed before every environment's change set: {rows} rows");

    let again = with_spec_against(&["apply", "--yes"], &spec, &server.uri());
    assert!(again.status.success(), "{}{}", stdout(&again), stderr(&again));
    let verify = with_spec_against(&["verify"], &spec, &server.uri());
    assert!(verify.status.success(), "{}", stdout(&verify));
    // Converged: one row per environment, one FIC per environment, nothing twice.
    for host in hosts {
        assert_eq!(fake.managed_identities(host).len(), 1, "{host}");
    }
    let fics = fake.graph_fics(app);
    assert_eq!(fics.len(), 2, "{fics:?}");
    let mut subjects: Vec<&str> = fics.iter().map(|f| f.subject.as_str()).collect();
    subjects.dedup();
    assert_eq!(subjects.len(), 2);
    let rerun = with_spec_against(&["plan"], &spec, &server.uri());
    assert!(stdout(&rerun).contains("nothing to do"), "{}", stdout(&rerun));
}

/// A signed artifact of tests/fixtures/signed.
#[cfg(feature = "testkit")]
fn signed_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("signed/{name}"))).unwrap()
}

/// The contoso app registration and environments, each with Contoso.Plugins registered as signed.dll (the
/// author certificate): what the day-two specs (no certificate named) read.
#[cfg(feature = "testkit")]
fn registered_contoso_fake() -> (dataverse_mi::testkit::FakePlatform, uuid::Uuid, Vec<uuid::Uuid>) {
    let fake = dataverse_mi::testkit::FakePlatform::new(dataverse_mi::testkit::FakeOptions::default());
    let app: uuid::Uuid = CONTOSO_APP.parse().unwrap();
    fake.add_application(app, "Contoso plug-ins");
    let mut assemblies = Vec::new();
    for host in CONTOSO_HOSTS {
        fake.add_environment(host, TENANT.parse().unwrap());
        assemblies.push(fake.add_registered_assembly(host, "Contoso.Plugins", &signed_fixture("signed.dll")));
    }
    (fake, app, assemblies)
}

#[cfg(feature = "testkit")]
#[tokio::test(flavor = "multi_thread")]
async fn day_two_rotate_verify_destroy_and_environments() {
    let spec = example_spec("day-two.toml");
    let (fake, app, assemblies) = registered_contoso_fake();
    fake.add_environment("contoso-sandbox.crm.dynamics.com", TENANT.parse().unwrap());
    let server = fake.start().await;
    let cli = |args: &[&str]| with_spec_against(args, &spec, &server.uri());
    let works = || CONTOSO_HOSTS.iter().zip(&assemblies).all(|(h, a)| fake.run_plugin(h, *a, "Contoso.Plugins.Step"));

    // Set up from the registered signatures alone.
    let apply = cli(&["apply", "--yes"]);
    assert!(apply.status.success(), "{}{}", stdout(&apply), stderr(&apply));
    assert!(works(), "before");

    // Rotation, step 1: the new certificate's FICs beside the old.
    let renewed = fixture("signed/renewed.cer");
    let add = cli(&["rotate", "--add", &renewed, "--yes"]);
    assert!(add.status.success(), "{}{}", stdout(&add), stderr(&add));
    assert!(stderr(&add).contains("rotate --finish"), "{}", stderr(&add));
    assert_eq!(fake.graph_fics(app).len(), 4);
    // Finishing now is refused: the plug-ins still carry the old certificate.
    let early = cli(&["rotate", "--finish", &renewed, "--yes"]);
    assert_eq!(early.status.code(), Some(1));
    assert!(stderr(&early).contains("not finished"), "{}", stderr(&early));
    assert!(stderr(&early).contains("still used by Contoso.Plugins"), "{}", stderr(&early));
    assert_eq!(fake.graph_fics(app).len(), 4);
    // Re-signed and registered again (the test environment first): it keeps working throughout.
    fake.register_content(CONTOSO_HOSTS[1], assemblies[1], &signed_fixture("renewed.dll"));
    assert!(works(), "during");
    fake.register_content(CONTOSO_HOSTS[0], assemblies[0], &signed_fixture("renewed.dll"));
    assert!(works(), "during, both re-registered");
    // verify reports the new certificate and its days left.
    let verify = cli(&["verify", "--output", "json", "--expiry-days", "36500"]);
    assert!(verify.status.success(), "warnings do not fail: {}", stdout(&verify));
    let report = json(&verify);
    let first = &report["components"][0];
    assert_eq!(first["certificate"]["not_after"], "2027-01-15T00:00:00Z");
    assert!(first["days_left"].as_i64().is_some());
    assert_eq!(first["warnings"][0]["warning"], "certificate_expires_soon");
    // Step 2: finish.
    let finish = cli(&["rotate", "--finish", &renewed, "--yes"]);
    assert!(finish.status.success(), "{}{}", stdout(&finish), stderr(&finish));
    assert_eq!(fake.graph_fics(app).len(), 2);
    assert!(works(), "after");

    // Discovery: what the identity can reach, and what the discover spec selects.
    let envs = with_spec_against(&["environments"], &example_spec("discover.toml"), &server.uri());
    assert!(envs.status.success(), "{}", stderr(&envs));
    let text = stdout(&envs);
    assert!(text.contains("https://contoso-sandbox.crm.dynamics.com"), "{text}");
    assert!(text.contains("no: excluded by '*sandbox*'"), "why it is left out: {text}");
    assert_eq!(text.matches(" yes").count(), 2, "{text}");
    let listed =
        with_spec_against(&["environments", "--output", "json"], &example_spec("discover.toml"), &server.uri());
    let rows = json(&listed);
    assert_eq!(rows.as_array().map(Vec::len), Some(3));
    let sandbox = rows.as_array().unwrap().iter().find(|r| r["Url"].as_str().is_some_and(|u| u.contains("sandbox")));
    let sandbox = sandbox.unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(sandbox["selected"], false);
    assert_eq!(sandbox["left_out_because"], "excluded by '*sandbox*'");
    assert_eq!(rows.as_array().unwrap().iter().filter(|r| r["selected"] == true).count(), 2);

    // Teardown: planned and refused without --yes, then done; nothing is left of the spec's setup.
    let refused = cli(&["destroy"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(fake.graph_fics(app).len(), 2);
    // In JSON without --yes: the plan, as JSON, and nothing deleted.
    let planned = cli(&["destroy", "--output", "json"]);
    assert_eq!(planned.status.code(), Some(1));
    assert!(json(&planned)["steps"].as_array().is_some_and(|s| !s.is_empty()), "{}", stdout(&planned));
    assert_eq!(fake.graph_fics(app).len(), 2);
    let destroy = cli(&["destroy", "--yes"]);
    assert!(destroy.status.success(), "{}{}", stdout(&destroy), stderr(&destroy));
    assert!(fake.graph_fics(app).is_empty());
    for host in CONTOSO_HOSTS {
        assert!(fake.managed_identities(host).is_empty(), "{host}");
    }
    let again = cli(&["destroy", "--yes"]);
    assert!(again.status.success() && stdout(&again).contains("nothing to delete"), "{}", stdout(&again));
}

#[cfg(feature = "testkit")]
#[tokio::test(flavor = "multi_thread")]
async fn upgrade_from_version_1_then_finish_and_revert() {
    let dir = std::env::temp_dir().join(format!("dataverse-mi-upgrade-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec_path = dir.join("v1.toml");
    let text = std::fs::read_to_string(example_spec("day-two.toml")).unwrap();
    std::fs::write(&spec_path, format!("version = 1\n{text}")).unwrap();
    let spec = spec_path.to_str().unwrap().to_owned();
    let (fake, app, assemblies) = registered_contoso_fake();
    let server = fake.start().await;
    let cli = |args: &[&str]| with_spec_against(args, &spec, &server.uri());
    let works = || CONTOSO_HOSTS.iter().zip(&assemblies).all(|(h, a)| fake.run_plugin(h, *a, "Contoso.Plugins.Step"));
    let versions = || -> Vec<Option<i32>> {
        CONTOSO_HOSTS.iter().flat_map(|h| fake.managed_identities(h)).map(|r| r.version).collect()
    };

    assert!(cli(&["apply", "--yes"]).status.success());
    assert!(works());
    assert_eq!(versions(), vec![Some(1), Some(1)]);
    // Step 1: version 2 FICs added, rows switched; the version 1 FICs stay.
    let up = cli(&["upgrade", "--yes"]);
    assert!(up.status.success(), "{}{}", stdout(&up), stderr(&up));
    assert!(stderr(&up).contains("upgrade --finish"), "{}", stderr(&up));
    assert!(stderr(&up).contains("set `version = 2`"), "the user is told to change the spec: {}", stderr(&up));
    assert_eq!(versions(), vec![Some(2), Some(2)]);
    assert_eq!(fake.graph_fics(app).len(), 4);
    assert!(works());
    // The spec still says version 1: verify explains, and a scheduled apply does not undo the upgrade.
    let verify = cli(&["verify"]);
    assert!(!verify.status.success());
    assert!(stdout(&verify).contains("the row was upgraded"), "{}", stdout(&verify));
    let scheduled = cli(&["apply", "--yes"]);
    assert!(scheduled.status.success(), "{}{}", stdout(&scheduled), stderr(&scheduled));
    assert!(stdout(&scheduled).contains("left at 2"), "{}", stdout(&scheduled));
    assert_eq!(versions(), vec![Some(2), Some(2)], "not switched back");
    // Revert: rows back to version 1, nothing deleted.
    let back = cli(&["upgrade", "--revert", "--yes"]);
    assert!(back.status.success(), "{}{}", stdout(&back), stderr(&back));
    assert_eq!(versions(), vec![Some(1), Some(1)]);
    assert!(works());
    // Upgrade and finish in one go: verified, then the version 1 FICs removed; the spec file now says 2.
    let done = cli(&["upgrade", "--finish", "--yes", "--write-spec"]);
    assert!(done.status.success(), "{}{}", stdout(&done), stderr(&done));
    assert_eq!(versions(), vec![Some(2), Some(2)]);
    let fics = fake.graph_fics(app);
    assert_eq!(fics.len(), 2);
    assert!(fics.iter().all(|f| !f.subject.contains("/i/Contoso")), "only version 2 FICs stay: {fics:?}");
    assert!(works());
    let written = std::fs::read_to_string(&spec_path).unwrap();
    assert!(written.starts_with("version = 2\n"), "{written}");
    assert!(written.ends_with(&text), "the rest of the spec is kept");
    assert!(cli(&["verify"]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn files_that_never_end_are_refused_at_a_bound() {
    // `/dev/zero` read whole took 18 GB before: each kind of file now has a bound, named in the error.
    if !std::path::Path::new("/dev/zero").exists() {
        return;
    }
    let o = run(&["cert", "/dev/zero"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/dev/zero") && stderr(&o).contains("larger than"), "{}", stderr(&o));
    let o = run(&["plan", "-f", "/dev/zero"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/dev/zero") && stderr(&o).contains("larger than"), "{}", stderr(&o));
    let o = run(&["apply", "/dev/zero"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("larger than"), "{}", stderr(&o));
}

#[test]
fn a_failed_sign_in_names_the_ways_to_sign_in_and_json_errors_are_json() {
    // Workload identity asked for (the token file is set) without its tenant and client: the sign-in cannot even
    // be set up, and no request is sent.
    let spec = example_spec("contoso.toml");
    let o = Command::new(env!("CARGO_BIN_EXE_dataverse-mi"))
        .args(["plan", "-f", &spec])
        .env("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent/token")
        .env_remove("AZURE_TENANT_ID")
        .env_remove("AZURE_CLIENT_ID")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("az login") && err.contains("AZURE_CLIENT_SECRET"), "{err}");
    assert!(!err.contains("OrgUrl::"), "no Rust API named to a shell user: {err}");

    // With --output json, an error is JSON on stdout too.
    let o =
        run(&["subject", "--tenant", "nope", "--environment", ENV, "--sha256", SELF_SIGNED_SHA256, "--output", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert!(v["error"]["message"].as_str().unwrap().contains("--tenant"), "{v}");
}

#[test]
fn output_piped_into_a_reader_that_goes_away_ends_quietly() {
    use std::io::Read as _;
    // A reader that went away before anything was written, like `head -c0`: the pipe's read end is closed.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(env!("CARGO_BIN_EXE_dataverse-mi"))
        .args(["explain-subject", &expected_self_signed(), "--output", "json"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("Broken pipe") && !err.contains("panicked"), "{err}");
    assert!(status.code() != Some(101), "no panic: {status:?}");
}

/// What the README shows a newcomer: `dataverse-mi fake` serves the built-in scenario and writes an endpoints file;
/// plan, apply, verify, status and watch run against it with `--endpoints`; Ctrl-C stops it cleanly and removes the
/// file.
#[cfg(all(feature = "testkit", unix))]
#[test]
fn the_fake_from_the_shell_plan_apply_verify_status_watch_then_ctrl_c() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = std::env::temp_dir().join(format!("dataverse-mi-fake-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let endpoints = dir.join("endpoints.json");
    let mut fake = Command::new(env!("CARGO_BIN_EXE_dataverse-mi"))
        .args(["fake", "--scenario", "contoso", "--endpoints-out", endpoints.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(fake.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("Ctrl-C stops it") {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "the fake ended early: {seen}");
        seen.push_str(&line);
    }
    assert!(seen.contains("try: dataverse-mi plan -f examples/specs/contoso.toml --endpoints"), "{seen}");
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&endpoints).unwrap()).unwrap();
    assert_eq!(file["fake"], true);
    assert!(file["dataverse"].as_str().unwrap().contains("{host}"), "{file}");

    let spec = example_spec("contoso.toml");
    let with = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-f", &spec, "--endpoints", endpoints.to_str().unwrap()]);
        run(&all)
    };
    let plan = with(&["plan"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert!(stdout(&plan).contains("create FIC"), "{}", stdout(&plan));
    let apply = with(&["apply", "--yes"]);
    assert!(apply.status.success(), "{}{}", stdout(&apply), stderr(&apply));
    let verify = with(&["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    let watch = with(&["watch", "--since", "1h"]);
    assert!(watch.status.success(), "{}", stderr(&watch));
    let status =
        run(&["status", "--org", "https://contoso-dev.crm.dynamics.com", "--endpoints", endpoints.to_str().unwrap()]);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(stdout(&status).contains("Contoso.Plugins"), "{}", stdout(&status));
    assert!(!stdout(&status).contains("not bound\nplug-in packages"), "bound after apply: {}", stdout(&status));

    let interrupted = Command::new("kill").args(["-INT", &fake.id().to_string()]).status().unwrap();
    assert!(interrupted.success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(fake.wait()));
    let ended = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the fake did not stop on Ctrl-C").unwrap();
    assert!(ended.success(), "{ended:?}");
    assert!(!endpoints.exists(), "the endpoints file is removed when the fake stops");
    let _ = std::fs::remove_dir_all(&dir);
}
