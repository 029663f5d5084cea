//! Quickstart: everything a plug-in's managed identity needs, computed offline from the shipped certificate.
//!
//! `cargo run --example quickstart [CERT] [TENANT] [ENVIRONMENT] [APP_ID]`
//!
//! Prints the subject identifier, the FIC bodies for Microsoft Graph and Azure Resource Manager, the
//! `managedidentity` row to create in Dataverse and the body that binds a plug-in assembly to it.

use dataverse_mi::cert::Certificate;
use dataverse_mi::cloud::{Cloud, CloudProfile};
use dataverse_mi::entities::{ManagedIdentityBinding, NewManagedIdentity};
use dataverse_mi::fic::FederatedIdentityCredential;
use dataverse_mi::guid::parse_guid;
use dataverse_mi::subject::{
    CertificateBinding, CertificateKind, SubjectFormatVersion, SubjectIdentifier, explain_subject,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let cert_path =
        args.next().unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/contoso-plugins.cer").to_owned());
    let tenant = parse_guid(&args.next().unwrap_or_else(|| "72f988bf-86f1-41af-91ab-2d7cd011db47".into()))?;
    let environment = parse_guid(&args.next().unwrap_or_else(|| "7efcc31a-c410-e20e-9b3c-3ea55e7f9c56".into()))?;
    let app_id = parse_guid(&args.next().unwrap_or_else(|| "0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b".into()))?;

    let loaded = Certificate::from_file(&cert_path)?;
    for warning in &loaded.warnings {
        eprintln!("note: {warning}");
    }
    let cert = loaded.certificate;
    println!("certificate");
    println!("  subject:     {}", cert.subject());
    println!("  issuer:      {}", cert.issuer());
    println!("  sha256:      {}", cert.sha256());
    println!("  self-signed: {}", cert.is_self_signed());

    let cloud = CloudProfile::from(Cloud::Public);
    let version = SubjectFormatVersion::V2;
    let binding = CertificateBinding::for_certificate(&cert, version, CertificateKind::Auto)?;
    let subject = SubjectIdentifier::new(&cloud, tenant, environment, binding)?;
    assert!(explain_subject(&subject.to_string()).is_ok(), "a computed subject always reads back clean");
    println!("\nsubject identifier\n  {subject}");

    let fic = FederatedIdentityCredential::for_subject(&cloud, &subject);
    println!(
        "\nFIC for an app registration (POST https://graph.microsoft.com/v1.0/applications(appId='{app_id}')/federatedIdentityCredentials)"
    );
    println!("{}", serde_json::to_string_pretty(&fic.graph_body()?)?);
    println!(
        "\nFIC for a user-assigned managed identity (PUT .../userAssignedIdentities/{{name}}/federatedIdentityCredentials/{}?api-version=2023-01-31)",
        fic.name
    );
    println!("{}", serde_json::to_string_pretty(&fic.arm_body()?)?);

    let row = NewManagedIdentity::for_plugins(app_id, tenant, environment, version);
    println!("\nDataverse managed identity row (POST https://{{org}}/api/data/v9.2/managedidentities)");
    println!("{}", serde_json::to_string_pretty(&row)?);
    println!("\nbind a plug-in assembly (PATCH https://{{org}}/api/data/v9.2/pluginassemblies({{id}}))");
    println!("{}", serde_json::to_string_pretty(&ManagedIdentityBinding::bind(row.id))?);
    Ok(())
}
