//! A real call: `WhoAmI` and `RetrieveCurrentOrganization` against an environment, signed in with the Azure CLI.
//!
//! `az login`, then: `cargo run --example whoami -- https://contoso.crm.dynamics.com`
//!
//! Not run in CI (it needs an Azure account); it compiles there.

use std::sync::Arc;

use dataverse_mi::auth::AzureIdentity;
use dataverse_mi::clients::{ClientOptions, DataverseClient, OrgUrl};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(org) = std::env::args().nth(1) else {
        eprintln!("usage: whoami https://{{org}}.crm.dynamics.com");
        std::process::exit(2);
    };
    let credential = Arc::new(AzureIdentity::new(azure_identity::AzureCliCredential::new(None)?));
    let client = DataverseClient::new(OrgUrl::parse(&org)?, credential, ClientOptions::default())?;
    let me = client.who_am_i().await?;
    println!("user {} in business unit {}", me.user_id, me.business_unit_id);
    let detail = client.retrieve_current_organization().await?;
    println!("organization {} ({})", detail.organization_id, detail.friendly_name.as_deref().unwrap_or("-"));
    match (detail.environment_id, detail.tenant_id) {
        (Some(env), Some(tenant)) => println!("environment {env} in tenant {tenant}"),
        _ => println!("the organization did not report its environment and tenant ids"),
    }
    Ok(())
}
