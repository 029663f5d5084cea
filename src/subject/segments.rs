//! A subject text split into its segments, whatever it holds: for comparing two subjects segment by segment.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A part of a subject identifier (and of the FIC around it), as the analyzers name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Segment {
    /// `/eid1/c/{cloud}`.
    Prefix,
    /// `/t/{tenant}`.
    Tenant,
    /// `/a/{app}`.
    App,
    /// `/n/plugin`.
    Component,
    /// `/e/{environment}`.
    Environment,
    /// What follows the environment: `h/{sha256}` or `i/{issuer}/s/{subject}`.
    Binding,
    /// The FIC's issuer URL (not part of the subject).
    Issuer,
    /// The FIC's audience (not part of the subject).
    Audience,
}

impl Segment {
    /// The segment's name, e.g. `tenant`.
    pub fn name(self) -> &'static str {
        match self {
            Segment::Prefix => "prefix",
            Segment::Tenant => "tenant",
            Segment::App => "app",
            Segment::Component => "component",
            Segment::Environment => "environment",
            Segment::Binding => "certificate",
            Segment::Issuer => "issuer",
            Segment::Audience => "audience",
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A subject cut into its segments as written, without judging any of them: what the analyzers compare. Never
/// fails; a segment that is not there is `None`, and whatever stands before `/t/` is the prefix (even without
/// `/eid1`).
///
/// ```
/// use dataverse_mi::subject::SubjectSegments;
/// let s = SubjectSegments::split("/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/Default-72f988bf-86f1-41af-91ab-2d7cd011db47/i/Contoso Root CA/s/Plugins");
/// assert_eq!(s.prefix, "/eid1/c/pub");
/// assert_eq!(s.environment.as_deref(), Some("Default-72f988bf-86f1-41af-91ab-2d7cd011db47"));
/// assert_eq!(s.binding.as_deref(), Some("i/Contoso Root CA/s/Plugins"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubjectSegments {
    /// Everything before `/t/`.
    pub prefix: String,
    /// The `/t/` value.
    pub tenant: Option<String>,
    /// The `/a/` value.
    pub app: Option<String>,
    /// The `/n/` value.
    pub component: Option<String>,
    /// The `/e/` value.
    pub environment: Option<String>,
    /// Everything after the environment.
    pub binding: Option<String>,
}

impl SubjectSegments {
    /// Cuts `subject` (surrounding white space ignored) into its segments.
    pub fn split(subject: &str) -> Self {
        let s = subject.trim();
        let mut out = SubjectSegments::default();
        let Some(start) = s.find("/t/") else {
            out.prefix = s.to_owned();
            return out;
        };
        out.prefix = s[..start].to_owned();
        let mut rest = &s[start + 1..];
        for (key, slot) in
            [("t/", &mut out.tenant), ("a/", &mut out.app), ("n/", &mut out.component), ("e/", &mut out.environment)]
        {
            if let Some(r) = rest.strip_prefix(key) {
                let (value, after) = r.split_once('/').unwrap_or((r, ""));
                *slot = Some(value.to_owned());
                rest = after;
            }
        }
        if out.environment.is_some() && !rest.is_empty() {
            out.binding = Some(rest.to_owned());
        }
        out
    }

    /// The text of one segment of the subject (`None` for the FIC's issuer and audience).
    pub fn get(&self, segment: Segment) -> Option<&str> {
        match segment {
            Segment::Prefix => Some(&self.prefix),
            Segment::Tenant => self.tenant.as_deref(),
            Segment::App => self.app.as_deref(),
            Segment::Component => self.component.as_deref(),
            Segment::Environment => self.environment.as_deref(),
            Segment::Binding => self.binding.as_deref(),
            Segment::Issuer | Segment::Audience => None,
        }
    }
}
