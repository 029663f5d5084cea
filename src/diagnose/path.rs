//! The failures on the way to a working call that are not Entra's token errors: a plug-in package or assembly the
//! platform will not give a token to, a call to Dataverse or Microsoft Graph refused for lack of access, and the
//! Azure SDK bundled into a plug-in. Each is recognised from the text a trace log row or an exception holds, with
//! the line it was recognised in quoted.

use super::{Cause, DiagnosisInputs, Finding};

/// A line as evidence: trimmed, and cut (with `…`) past 400 characters.
fn evidence(line: &str) -> String {
    let line = line.trim();
    match line.char_indices().nth(400) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}

/// The line of `text` holding `needle` (case-insensitive): the evidence.
fn line_with(text: &str, needle: &str) -> Option<String> {
    let needle = needle.to_ascii_lowercase();
    text.lines().find(|l| l.to_ascii_lowercase().contains(&needle)).map(evidence)
}

/// The first of `needles` found, as its line.
fn any_line(text: &str, needles: &[&str]) -> Option<String> {
    needles.iter().find_map(|n| line_with(text, n))
}

fn finding(cause: Cause, evidence: String, message: String, fix: String) -> Finding {
    Finding { cause, segment: None, found: Some(evidence), expected: None, message, fix }
}

/// The Dataverse environment a text names (`https://{org}.crm*.dynamics.com`), for a fix that names it.
fn dataverse_url(text: &str) -> Option<String> {
    // Every https URL of the text, its host up to the first `/`, `:`, quote or white space.
    text.match_indices("https://").find_map(|(at, scheme)| {
        let rest = &text[at + scheme.len()..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | ':' | '\'' | '"' | ')' | ',' | '?'))
            .unwrap_or(rest.len());
        let host = rest[..end].to_ascii_lowercase();
        let dataverse =
            crate::cloud::Cloud::ALL.iter().any(|c| c.dataverse_host_suffixes().iter().any(|s| host.ends_with(s)));
        (dataverse && !host.is_empty()).then(|| format!("https://{host}"))
    })
}

/// Every failure of this kind `text` shows, most specific first.
pub(super) fn findings(text: &str, inputs: &DiagnosisInputs) -> Vec<Finding> {
    let _ = inputs;
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    // "PluginPackage ... is not associated to a Managed identity": the package is what the platform looks at.
    if let Some(line) =
        any_line(text, &["is not associated to a managed identity", "is not associated with a managed identity"])
    {
        let package = line.to_ascii_lowercase().contains("pluginpackage")
            || line.to_ascii_lowercase().contains("plug-in package");
        out.push(if package {
            finding(
                Cause::PackageNotBound,
                line,
                "the plug-in runs from a plug-in package, and the package is bound to no managed identity: the platform takes the identity of the package, not of the assembly inside it".into(),
                "bind the package: list it under `plugin_packages` in the spec (not its assembly under `plugin_assemblies`) and run `dataverse-mi apply`".into(),
            )
        } else {
            finding(
                Cause::ComponentNotBound,
                line,
                "the plug-in assembly is bound to no managed identity".into(),
                "list it under `plugin_assemblies` (or its package under `plugin_packages`) in the spec and run `dataverse-mi apply`".into(),
            )
        });
    }
    // "Plugin assembly must be signed with a valid certificate to use Managed Identity".
    if let Some(line) = line_with(text, "must be signed with a valid certificate") {
        out.push(finding(
            Cause::AssemblyNotSigned,
            line,
            "the registered assembly (or package) carries no certificate signature the platform accepts; a strong name (.snk) is not one".into(),
            "sign the assembly with a code-signing certificate (`dataverse-mi sign ASSEMBLY.dll --pfx signing.pfx --password-env PFX_PASSWORD`, on any OS; a package with `nuget sign`), register it again, then run `dataverse-mi plan` (`certificate = \"registered\"` reads the new signature)".into(),
        ));
    }
    // Calling Dataverse with the identity's token: no application user there.
    if let Some(line) = line_with(text, "is not a member of the organization") {
        let environment = dataverse_url(text);
        let at = environment.as_deref().map(|e| format!("environment = \"{e}\"\n")).unwrap_or_default();
        out.push(finding(
            Cause::NoApplicationUser,
            line,
            format!(
                "Dataverse{} refused the identity's token: the identity is no application user of that environment",
                environment.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
            ),
            format!(
                "add to the spec and run `dataverse-mi apply`:\n[[application_users]]\n{at}roles = [\"Basic User\"]"
            ),
        ));
    }
    // Dataverse: the application user has no role giving a privilege ("is missing prvReadAccount privilege").
    if let Some(line) = line_with(text, "privilege").filter(|l| l.contains("is missing prv")) {
        let privilege = line
            .split("is missing ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("the privilege")
            .to_owned();
        out.push(finding(
            Cause::DataversePrivilegeMissing,
            line,
            format!("the identity's application user has no security role that gives {privilege}"),
            format!("name a role that gives {privilege} under `[[application_users]] roles` in the spec and run `dataverse-mi apply`"),
        ));
    }
    // Microsoft Graph: 403 for a missing application permission.
    let graph = lower.contains("graph.microsoft") || lower.contains("microsoft graph");
    if graph
        && let Some(line) = any_line(
            text,
            &[
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation",
                "ErrorAccessDenied",
                "Either scp or roles claim need to be present",
                "403 (Forbidden)",
                "403 Forbidden",
                "Forbidden",
            ],
        )
    {
        out.push(finding(
            Cause::GraphPermissionMissing,
            line,
            "Microsoft Graph refused the identity's token: the identity lacks the application permission the call needs (delegated permissions do not count: there is no signed-in user)".into(),
            "add the permission to the spec and run `dataverse-mi apply` (the call's reference page lists it under \"Application\"), e.g.\n[[api_permissions]]\npermissions = [\"User.Read.All\"]".into(),
        ));
    }
    // The Azure SDK bundled into the plug-in: the sandbox loads its own.
    let sdk = ["Azure.Core", "Azure.Identity"].into_iter().find(|a| text.contains(a));
    let load_failure = [
        "TypeLoadException",
        "FileLoadException",
        "FileNotFoundException",
        "Could not load file or assembly",
        "Could not load type",
    ]
    .into_iter()
    .find(|e| text.contains(e));
    if let (Some(sdk), Some(exception)) = (sdk, load_failure) {
        let line = text
            .lines()
            .find(|l| l.contains(sdk) && (l.contains(exception) || l.contains("Could not load")))
            .map(evidence)
            .or_else(|| line_with(text, exception))
            .unwrap_or_default();
        out.push(finding(
            Cause::AzureSdkBundled,
            line,
            format!("{sdk} failed to load ({exception}): the plug-in ships a version of it, and the sandbox loads its own"),
            format!("do not bundle {sdk} (nor merge it with ILMerge/ILRepack, nor put it in the plug-in package): take the token with the platform's IManagedIdentityService.AcquireToken and call the service over HTTP"),
        ));
    }
    out
}

/// Well-known resources a scope names, for a mistyped one: the closest is suggested.
const KNOWN_RESOURCES: &[&str] = &[
    "https://vault.azure.net",
    "https://graph.microsoft.com",
    "https://storage.azure.com",
    "https://management.azure.com",
    "https://database.windows.net",
    "https://servicebus.azure.net",
    "https://eventhubs.azure.net",
    "https://cognitiveservices.azure.com",
    "https://ossrdbms-aad.database.windows.net",
    "https://api.loganalytics.io",
];

/// The edit distance of two short strings (the resource names people type).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == cb { prev } else { 1 + prev.min(row[j]).min(row[j + 1]) };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The well-known resource `resource` is a typo of, if it is one.
pub(super) fn closest_resource(resource: &str) -> Option<&'static str> {
    let given = resource.trim().trim_end_matches("/.default").trim_end_matches('/').to_ascii_lowercase();
    let given = if given.starts_with("https://") { given } else { format!("https://{given}") };
    KNOWN_RESOURCES
        .iter()
        .map(|k| (distance(&given, k), *k))
        .filter(|(d, _)| (1..=3).contains(d))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The value after `marker` up to the next white space (a scope or resource name in an Entra message).
pub(super) fn word_after(text: &str, marker: &str) -> Option<String> {
    let i = text.find(marker)?;
    let word: String = text[i + marker.len()..].trim_start().chars().take_while(|c| !c.is_whitespace()).collect();
    Some(word.trim_end_matches(['.', ',', '\'', '"']).to_owned()).filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_closest_resources() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(closest_resource("https://vault.azure.nett"), Some("https://vault.azure.net"));
        assert_eq!(closest_resource("vault.azur.net/.default"), Some("https://vault.azure.net"));
        assert_eq!(closest_resource("https://vault.azure.net"), None, "the right one is no typo");
        assert_eq!(closest_resource("api://0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b"), None);
    }

    #[test]
    fn the_environment_a_text_names() {
        let text = "403 calling https://contoso-data.crm.dynamics.com/api/data/v9.2/accounts: ...";
        assert_eq!(dataverse_url(text).as_deref(), Some("https://contoso-data.crm.dynamics.com"));
        assert_eq!(dataverse_url("https://vault.azure.net/secrets/x"), None);
    }
}
