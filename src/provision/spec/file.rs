//! Reading and writing a spec: TOML or JSON, the `environments` table or list, the version written in place.

use std::path::Path;

use super::{ProvisionSpec, SpecError};
use crate::subject::SubjectFormatVersion;

impl ProvisionSpec {
    /// The spec as a TOML file (what `from_toml` reads back as this spec; the certificate paths as they are).
    /// Needs the `spec-toml` feature (default); without it, [`SpecError::FeatureDisabled`].
    pub fn to_toml(&self) -> Result<String, SpecError> {
        #[cfg(feature = "spec-toml")]
        {
            toml::to_string(self).map_err(|e| SpecError::Toml(Box::new(e)))
        }
        #[cfg(not(feature = "spec-toml"))]
        {
            Err(SpecError::FeatureDisabled { feature: "spec-toml" })
        }
    }

    /// Reads a TOML spec. Needs the `spec-toml` feature (default); without it, [`SpecError::FeatureDisabled`].
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        #[cfg(feature = "spec-toml")]
        {
            let spec: ProvisionSpec = toml::from_str(text).map_err(|e| SpecError::Toml(Box::new(e)))?;
            spec.checked()
        }
        #[cfg(not(feature = "spec-toml"))]
        {
            let _ = text;
            Err(SpecError::FeatureDisabled { feature: "spec-toml" })
        }
    }

    /// Reads a JSON spec.
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        let spec: ProvisionSpec = serde_json::from_str(text).map_err(SpecError::Json)?;
        spec.checked()
    }

    /// Reads a spec file: JSON when it ends in `.json`, TOML otherwise.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SpecError> {
        let path = path.as_ref();
        let text = crate::files::read_bounded_text(path, crate::files::MAX_SPEC_FILE, "spec").map_err(|e| match e {
            crate::files::FileError::Io { source, .. } => SpecError::Io { path: path.display().to_string(), source },
            other => SpecError::File(other),
        })?;
        let mut spec = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            Self::from_json(&text)?
        } else {
            Self::from_toml(&text)?
        };
        spec.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(spec)
    }

    fn checked(self) -> Result<Self, SpecError> {
        self.validate()?;
        Ok(self)
    }

    /// A spec file's text with its top-level `version` set to `version`, everything else (comments, order) as
    /// it was: what `dataverse-mi upgrade --write-spec` writes, so that the spec agrees with the upgraded rows.
    /// A TOML file gets its `version = N` line replaced (or one added at the top); a JSON file its `"version"`
    /// member. Only the top level is touched (a `version` inside a table is another setting).
    ///
    /// ```
    /// use dataverse_mi::provision::ProvisionSpec;
    /// use dataverse_mi::subject::SubjectFormatVersion;
    /// let toml = "# Contoso\nversion = 1 # legacy\n[identity]\nversion = 7\n";
    /// let v2 = ProvisionSpec::with_version_written(toml, SubjectFormatVersion::V2, false);
    /// assert_eq!(v2, "# Contoso\nversion = 2 # legacy\n[identity]\nversion = 7\n");
    /// let added = ProvisionSpec::with_version_written("[identity]\nkind = \"x\"\n", SubjectFormatVersion::V2, false);
    /// assert_eq!(added, "version = 2\n[identity]\nkind = \"x\"\n");
    /// ```
    pub fn with_version_written(text: &str, version: SubjectFormatVersion, json: bool) -> String {
        let n = version.number();
        if json {
            let mut value: serde_json::Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(_) => return text.to_owned(),
            };
            if let Some(object) = value.as_object_mut() {
                object.insert("version".into(), n.into());
            }
            return serde_json::to_string_pretty(&value).map(|t| t + "\n").unwrap_or_else(|_| text.to_owned());
        }
        let mut out = String::with_capacity(text.len() + 16);
        let mut top_level = true;
        let mut written = false;
        for line in text.split_inclusive('\n') {
            let trimmed = line.trim_start();
            if trimmed.starts_with('[') {
                top_level = false;
            }
            let key = trimmed.split(['=', ' ', '\t']).next().unwrap_or_default();
            if top_level && !written && key == "version" && trimmed.contains('=') {
                let indent = &line[..line.len() - trimmed.len()];
                let rest = trimmed.split_once('=').map(|(_, r)| r).unwrap_or_default();
                // Keep a trailing comment.
                let comment = rest.find('#').map(|i| &rest[i..]).unwrap_or("").trim_end();
                let ending = if line.ends_with("\r\n") {
                    "\r\n"
                } else if line.ends_with('\n') {
                    "\n"
                } else {
                    ""
                };
                out.push_str(&format!("{indent}version = {n}"));
                if !comment.is_empty() {
                    out.push(' ');
                    out.push_str(comment);
                }
                out.push_str(ending);
                written = true;
                continue;
            }
            out.push_str(line);
        }
        if written {
            return out;
        }
        // No top-level `version` yet: added before the first table, after any leading comments and keys.
        format!("version = {n}\n{text}")
    }
}
