//! The environments a discovery service lists, and whether a spec's `discover` selects each: what
//! `dataverse-mi environments` prints.

use std::fmt;

use serde::Serialize;

use super::spec::DiscoverSpec;
use crate::clients::DiscoveredEnvironment;

/// One environment the discovery service lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ListedEnvironment {
    /// The environment, as the service describes it.
    #[serde(flatten)]
    pub environment: DiscoveredEnvironment,
    /// Whether the spec's `discover` selects it; `None` without a selector.
    pub selected: Option<bool>,
    /// Why it is left out (a selector's reason, or "disabled" without one).
    pub left_out_because: Option<String>,
}

/// The environments a discovery service lists, each with the selector's verdict (serializes as a JSON array).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
#[non_exhaustive]
pub struct EnvironmentListing {
    /// The environments, in the service's order.
    pub environments: Vec<ListedEnvironment>,
}

impl EnvironmentListing {
    /// The environments `found`, judged by `selector` (a spec's `discover`) when there is one.
    pub fn new(found: Vec<DiscoveredEnvironment>, selector: Option<&DiscoverSpec>) -> Self {
        let environments = found
            .into_iter()
            .map(|environment| {
                let (selected, left_out_because) = match selector {
                    Some(d) => {
                        let why = d.why_left_out(&environment);
                        (Some(why.is_none()), why)
                    }
                    None => (None, (!environment.is_enabled()).then(|| "disabled".to_owned())),
                };
                ListedEnvironment { environment, selected, left_out_because }
            })
            .collect();
        EnvironmentListing { environments }
    }
}

impl fmt::Display for EnvironmentListing {
    /// A table: URL, name, environment id, and whether it is selected (or why not).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<44} {:<28} {:<46} selected", "url", "name", "environment id")?;
        for l in &self.environments {
            let selected = match (l.selected, &l.left_out_because) {
                (Some(true), _) => "yes".to_owned(),
                (Some(false), Some(why)) => format!("no: {why}"),
                (_, Some(why)) => why.clone(),
                _ => "-".to_owned(),
            };
            let e = &l.environment;
            write!(
                f,
                "\n{:<44} {:<28} {:<46} {selected}",
                e.url,
                e.friendly_name.as_deref().unwrap_or("-"),
                e.environment_id.map(|id| id.to_string()).unwrap_or_else(|| "-".into())
            )?;
        }
        Ok(())
    }
}
