//! The fake's routes, in one table: the names the request log gives, the names faults aim at and counts count,
//! and the list `docs/testkit.md` shows (a test checks the page against it).

use std::fmt;
use std::str::FromStr;

/// Every route the fake serves, as `METHOD service name`.
pub const ROUTES: &[&str] = &[
    // Dataverse
    "GET dataverse RetrieveCurrentOrganization",
    "GET dataverse WhoAmI",
    "GET dataverse GetComponentManagedIdentityFIC",
    "GET dataverse managedidentities",
    "POST dataverse managedidentities",
    "GET dataverse managedidentities(id)",
    "PATCH dataverse managedidentities(id)",
    "DELETE dataverse managedidentities(id)",
    "GET dataverse pluginassemblies",
    "GET dataverse pluginassemblies(id)",
    "PATCH dataverse pluginassemblies(id)",
    "GET dataverse pluginpackages",
    "GET dataverse pluginpackages(id)",
    "PATCH dataverse pluginpackages(id)",
    "GET dataverse plugintracelogs",
    "GET dataverse organizations",
    "PATCH dataverse organizations(id)",
    "POST dataverse $batch",
    // Microsoft Graph
    "GET graph applications",
    "POST graph applications",
    "GET graph application",
    "PATCH graph application",
    "DELETE graph application",
    "GET graph service principal",
    "POST graph service principal",
    "GET graph fics",
    "POST graph fics",
    "GET graph fic",
    "PATCH graph fic",
    "DELETE graph fic",
    "PATCH graph fic upsert",
    "POST graph $batch",
    // Azure Resource Manager
    "GET arm identity",
    "PUT arm identity",
    "DELETE arm identity",
    "GET arm fics",
    "GET arm fic",
    "PUT arm fic",
    "DELETE arm fic",
    "GET arm role definitions",
    "GET arm role assignments",
    "PUT arm role assignment",
    "DELETE arm role assignment",
    // The token endpoint and the Global Discovery Service
    "POST login token",
    "GET discovery instances",
];

/// A route of the fake ([`ROUTES`]): what a [`Fault`](super::Fault) aims at and
/// [`FakePlatform::count`](super::FakePlatform::count) counts. Made from its name, checked against the table, so
/// that a typo is an error where the route is named rather than a fault that never fires or a count that is
/// always 0.
///
/// ```
/// use dataverse_mi::testkit::Route;
///
/// let create: Route = "POST graph fics".parse()?;
/// assert_eq!(create.as_str(), "POST graph fics");
/// assert!("POST graph fic".parse::<Route>().is_err()); // no such route: creating one FIC is `fics`
/// # Ok::<(), dataverse_mi::testkit::UnknownRoute>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route(&'static str);

impl Route {
    /// The route's name, `METHOD service name`.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The service (`dataverse`, `graph`, `arm`, `login`, `discovery`).
    pub fn service(self) -> &'static str {
        self.0.split(' ').nth(1).unwrap_or_default()
    }

    /// Every route.
    pub fn all() -> impl Iterator<Item = Route> {
        ROUTES.iter().map(|r| Route(r))
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl PartialEq<str> for Route {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Route {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A route name the fake does not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{name}' is not a route of the fake{}", .closest.as_deref().map(|c| format!(" (did you mean '{c}'?)")).unwrap_or_default())]
#[non_exhaustive]
pub struct UnknownRoute {
    /// The name given.
    pub name: String,
    /// The route with the same method and service whose name is closest, when there is one.
    pub closest: Option<String>,
}

impl FromStr for Route {
    type Err = UnknownRoute;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if let Some(r) = ROUTES.iter().find(|r| **r == name) {
            return Ok(Route(r));
        }
        // The same method and service, sharing the longest prefix of the name: a hint, not a guess that is used.
        let prefix = |r: &str| name.chars().zip(r.chars()).take_while(|(a, b)| a == b).count();
        let closest = ROUTES
            .iter()
            .filter(|r| r.split(' ').take(2).eq(name.split(' ').take(2)))
            .max_by_key(|r| (prefix(r), std::cmp::Reverse(r.len().abs_diff(name.len()))))
            .map(|r| (*r).to_owned());
        Err(UnknownRoute { name: name.to_owned(), closest })
    }
}

impl TryFrom<&str> for Route {
    type Error = UnknownRoute;

    fn try_from(name: &str) -> Result<Self, Self::Error> {
        name.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_listed_once_and_parses_to_itself() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Route::all() {
            assert!(seen.insert(r.as_str()), "{r} twice");
            assert_eq!(r.as_str().parse::<Route>(), Ok(r));
            assert!(["dataverse", "graph", "arm", "login", "discovery"].contains(&r.service()), "{r}");
        }
    }

    #[test]
    fn a_typo_is_an_error_naming_the_closest_route() {
        let err = "POST graph fic".parse::<Route>().unwrap_err();
        assert_eq!(err.to_string(), "'POST graph fic' is not a route of the fake (did you mean 'POST graph fics'?)");
        let err = "GET dataverse managedidentity".parse::<Route>().unwrap_err();
        assert_eq!(err.closest.as_deref(), Some("GET dataverse managedidentities"));
        assert_eq!("FETCH nothing".parse::<Route>().unwrap_err().closest, None);
    }
}
