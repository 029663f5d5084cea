//! The verbs that compute offline: subject, fic, cert, encode-guid, decode-guid, explain-subject.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::*;
use crate::support::*;
use dataverse_mi::cert::CertificateHash;
use dataverse_mi::cloud::{Cloud, CloudProfile};
use dataverse_mi::environment::EnvironmentId;
use dataverse_mi::fic::FederatedIdentityCredential;
use dataverse_mi::guid::{decode_guid, encode_guid, parse_guid};
use dataverse_mi::secret::Secret;
use dataverse_mi::subject::{
    CertificateBinding, CertificateKind, SubjectFormatVersion, SubjectIdentifier, explain_subject,
};
use uuid::Uuid;

/// Where a subject is for: `--tenant`, `--environment` and `--cloud`, each refused with its flag's name.
pub(crate) fn subject_target(
    tenant: &str,
    environment: &str,
    cloud: &str,
) -> Result<(CloudProfile, Uuid, EnvironmentId), Failure> {
    let tenant: Uuid = parse_guid(tenant).map_err(|e| format!("--tenant: {e}"))?;
    let environment: EnvironmentId = environment.parse().map_err(|e| format!("--environment: {e}"))?;
    Ok((CloudProfile::from(cloud.parse::<Cloud>()?), tenant, environment))
}

pub(crate) fn build_subject(i: &SubjectInputs) -> Result<(CloudProfile, SubjectIdentifier), Failure> {
    let (cloud, tenant, environment) = subject_target(&i.tenant, &i.environment, &i.cloud)?;
    let version: SubjectFormatVersion = i.format_version.parse()?;
    let kind: CertificateKind = i.kind.parse()?;
    let binding = match (&i.cert, &i.sha256, &i.issuer_dn, &i.subject_dn) {
        (Some(path), _, _, _) => {
            CertificateBinding::for_certificate(&load_certificate(path, i.password_env.as_deref())?, version, kind)?
        }
        (None, Some(hash), _, _) => {
            if kind == CertificateKind::Trusted {
                return Err(
                    "--sha256 gives a self-signed subject; for --kind trusted give --issuer-dn and --subject-dn".into(),
                );
            }
            let sha256: CertificateHash = hash.parse().map_err(|e| format!("--sha256: {e}"))?;
            CertificateBinding::SelfSigned { sha256 }
        }
        (None, None, Some(issuer), Some(subject)) => {
            if kind == CertificateKind::SelfSigned {
                return Err("--issuer-dn/--subject-dn give a trusted-CA subject; for --kind self-signed give --sha256 or --cert".into());
            }
            CertificateBinding::from_names(issuer, subject, version)?
        }
        _ => return Err("give the certificate: --cert FILE, --sha256 HEX, or --issuer-dn DN --subject-dn DN".into()),
    };
    let subject = SubjectIdentifier::new(&cloud, tenant, environment, binding)?;
    Ok((cloud, subject))
}

/// The FIC subject for a tenant, an environment and a certificate.
pub(crate) fn subject_command(args: SubjectArgs) -> Result<ExitCode, Failure> {
    let (cloud, subject) = build_subject(&args.inputs)?;
    match args.output {
        Output::Text => println!("{subject}"),
        Output::Json => print_json(&dataverse_mi::fic::SubjectSummary::new(&cloud, &subject))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The FIC body for Microsoft Graph or Azure Resource Manager.
pub(crate) fn fic_command(args: FicArgs) -> Result<ExitCode, Failure> {
    let (cloud, subject) = build_subject(&args.inputs)?;
    let mut fic = FederatedIdentityCredential::for_subject(&cloud, &subject);
    if let Some(name) = args.name {
        fic.name = name;
    }
    let body = match args.target {
        Target::Graph => fic.graph_body()?,
        Target::Arm => fic.arm_body()?,
    };
    if matches!(args.target, Target::Arm) {
        eprintln!("note: ARM takes the name in the URL: .../federatedIdentityCredentials/{}", fic.name);
    }
    print_json(&body)?;
    Ok(ExitCode::SUCCESS)
}

/// What the platform derives from a certificate.
pub(crate) fn cert_command(file: PathBuf, password_env: Option<String>, output: Output) -> Result<ExitCode, Failure> {
    let cert = load_certificate(&file, password_env.as_deref())?;
    show(output, &cert.summary())?;
    Ok(ExitCode::SUCCESS)
}

/// `cert new`: a development code-signing certificate written as a PFX and a .cer, and the subject segments a
/// plug-in signed with it presents.
pub(crate) fn cert_new_command(a: CertNewArgs) -> Result<ExitCode, Failure> {
    use dataverse_mi::cert::{DevCertificateOptions, KeyAlgorithm, new_code_signing_certificate};
    // The password comes from the variable the user names, as everywhere else in the tool; a PFX needs one.
    let password = password(Some(&a.password_env))?.unwrap_or_else(|| Secret::new(""));
    if password.expose().is_empty() {
        return Err(format!(
            "--password-env: the environment variable {} is empty; a PFX needs a password",
            a.password_env
        )
        .into());
    }
    let key = KeyAlgorithm::from_name(&a.key)
        .ok_or_else(|| format!("--key: '{}' is not one of {}", a.key, KeyAlgorithm::NAMES.join(", ")))?;
    if a.days == 0 || a.days > 100 * 366 {
        return Err(format!("--days: {} is not a validity this tool writes (1 to 36600 days)", a.days).into());
    }
    // Everything the user typed is read before anything is made or written.
    let target = match (&a.tenant, &a.environment) {
        (Some(t), Some(e)) => Some(subject_target(t, e, &a.cloud)?),
        _ => None,
    };
    let cer = a.cer.clone().unwrap_or_else(|| a.pfx.with_extension("cer"));
    if cer == a.pfx {
        return Err("--cer: the .cer and the .pfx must be different files".into());
    }
    for path in [&a.pfx, &cer] {
        if !a.force && path.exists() {
            return Err(format!("{} exists; give --force to replace it", path.display()).into());
        }
    }
    let options = DevCertificateOptions::new(a.subject.clone())
        .with_key(key)
        .with_valid_for(Duration::from_secs(a.days * 86_400));
    let made = new_code_signing_certificate(&options)?;
    let pfx = made.to_pfx(&password)?;
    let cert = made.certificate();
    dataverse_mi::files::write_replacing(&a.pfx, &pfx)?;
    dataverse_mi::files::write_replacing(&cer, cert.der())?;
    let binding = |version| CertificateBinding::for_certificate(cert, version, CertificateKind::Auto);
    let (binding_v2, binding_v1) = (binding(SubjectFormatVersion::V2)?, binding(SubjectFormatVersion::V1)?);
    let (v2, v1) = (format!("/{binding_v2}"), format!("/{binding_v1}"));
    let whole = match target {
        Some((cloud, tenant, environment)) => {
            Some(SubjectIdentifier::new(&cloud, tenant, environment, binding_v2)?.to_string())
        }
        None => None,
    };
    let validity = cert.validity()?;
    match a.output {
        Output::Json => print_json(&serde_json::json!({
            "subject": cert.subject()?,
            "sha256": cert.sha256().to_string(),
            "key": made.key_algorithm().to_string(),
            "valid": validity.to_string(),
            "pfx": a.pfx.display().to_string(),
            "cer": cer.display().to_string(),
            "segments": { "v1": v1, "v2": v2 },
            "subject_identifier": whole,
            "self_signed": true,
        }))?,
        Output::Text => {
            println!(
                "made a self-signed code-signing certificate ({}, SHA-256, key usage digitalSignature, extended key usage codeSigning)",
                made.key_algorithm()
            );
            println!("subject:  {}", cert.subject()?);
            println!("sha256:   {}", cert.sha256());
            println!("valid:    {validity}");
            println!(
                "wrote:    {} (certificate and private key; password from ${}) and {} (certificate)",
                a.pfx.display(),
                a.password_env,
                cer.display()
            );
            println!("a plug-in signed with it presents, after /e/{{environment}}:");
            println!("  version 2: {v2}");
            println!("  version 1: {v1}");
            if let Some(w) = whole {
                println!("the whole subject (version 2): {w}");
            }
            eprintln!(
                "warning: a self-signed certificate is for development only (Learn labels the self-signed subject \"development only\" and the trusted issuer's \"production\"): sign production plug-ins with a certificate from a trusted authority"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sign`: a plug-in assembly signed with a PFX's certificate, written whole or not at all; the signer read back
/// from the signed bytes before anything is written.
pub(crate) fn sign_command(a: SignArgs) -> Result<ExitCode, Failure> {
    use dataverse_mi::cert::{SigningIdentity, sign_pe};
    let password = password(Some(&a.password_env))?.unwrap_or_else(|| Secret::new(""));
    let target = a.out.clone().unwrap_or_else(|| a.file.clone());
    let is_package = a.file.extension().is_some_and(|e| e.eq_ignore_ascii_case("nupkg"));
    if is_package {
        return Err(format!(
            "{}: signing a NuGet package is not built yet; sign it with `nuget sign {} -CertificatePath {} ...` for now",
            a.file.display(),
            a.file.display(),
            a.pfx.display()
        )
        .into());
    }
    let metadata = std::fs::metadata(&target);
    if a.out.is_none() && metadata.as_ref().is_ok_and(|m| m.permissions().readonly()) {
        return Err(format!("{} is read-only: make it writable, or give --out", target.display()).into());
    }
    let pfx = dataverse_mi::files::read_bounded(&a.pfx, dataverse_mi::files::MAX_CERTIFICATE_FILE, "PFX")?;
    let identity = SigningIdentity::from_pkcs12(&pfx, &password).map_err(|e| format!("{}: {e}", a.pfx.display()))?;
    let bytes = dataverse_mi::files::read_bounded(&a.file, dataverse_mi::files::MAX_CERTIFICATE_FILE, "assembly")?;
    let signed = sign_pe(&bytes, &identity, a.replace).map_err(|e| format!("{}: {e}", a.file.display()))?;
    // Read back as the platform will: the signer must be the PFX's certificate.
    let back = dataverse_mi::cert::Certificate::from_signed_assembly(&signed)?;
    if back.certificate != identity.certificate {
        return Err("the signed file does not read back with the PFX's certificate; nothing was written".into());
    }
    dataverse_mi::files::write_replacing(&target, &signed)?;
    let cert = &identity.certificate;
    let binding = CertificateBinding::for_certificate(cert, SubjectFormatVersion::V2, CertificateKind::Auto)?;
    match a.output {
        Output::Json => print_json(&serde_json::json!({
            "file": target.display().to_string(),
            "signer": cert.subject()?,
            "sha256": cert.sha256().to_string(),
            "segment_v2": format!("/{binding}"),
            "bytes": signed.len(),
        }))?,
        Output::Text => {
            println!("signed {} (Authenticode, SHA-256) with {}", target.display(), cert.subject()?);
            println!("a plug-in registered from it presents, after /e/{{environment}}: /{binding}");
            println!("register the new build with the platform, then `dataverse-mi plan` reads its signature");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A GUID as the platform encodes it in a subject.
pub(crate) fn encode_guid_command(guid: String, output: Output) -> Result<ExitCode, Failure> {
    let id = parse_guid(&guid)?;
    let encoded = encode_guid(id);
    match output {
        Output::Text => println!("{encoded}"),
        Output::Json => print_json(&dataverse_mi::guid::EncodedGuid::from(id))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// An encoded GUID back.
pub(crate) fn decode_guid_command(encoded: String, output: Output) -> Result<ExitCode, Failure> {
    let id = decode_guid(encoded.trim())?;
    match output {
        Output::Text => println!("{id}"),
        Output::Json => print_json(&dataverse_mi::guid::EncodedGuid::from(id))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// What is wrong with a subject, segment by segment.
pub(crate) fn explain_subject_command(subject: String, output: Output) -> Result<ExitCode, Failure> {
    let explanation = explain_subject(&subject);
    match output {
        Output::Text => println!("{explanation}"),
        Output::Json => print_json(&explanation)?,
    }
    if !explanation.is_ok() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
