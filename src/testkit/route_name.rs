//! A route's name, checked against the fake's table: what a fault aims at and what the log counts. The table
//! itself (and so parsing a name) is `routes`'.

use std::fmt;

/// A route of the fake (the table [`Route::all`] lists): what a [`Fault`](super::Fault) aims at and
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
pub struct Route(pub(super) &'static str);

impl Route {
    /// The route's name, `METHOD service name`.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The service (`dataverse`, `graph`, `arm`, `login`, `discovery`).
    pub fn service(self) -> &'static str {
        self.0.split(' ').nth(1).unwrap_or_default()
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
