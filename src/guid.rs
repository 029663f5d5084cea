//! GUIDs as the platform writes them in subject identifiers.
//!
//! The subject identifier carries GUIDs (the tenant id, and the constant Power Platform app id) as the
//! 16 bytes of .NET's `Guid.ToByteArray()` in Base64URL without padding: always 22 characters.
//! `ToByteArray()` writes the first three fields little-endian and the last eight bytes as written,
//! which is *not* the RFC 4122 (big-endian) order that most languages use. Getting this wrong is the
//! single most common hand-made mistake; [`encode_guid`] gets it right and [`decode_guid`] refuses
//! anything that is not exactly such an encoding.
//!
//! ```
//! use dataverse_mi::guid::{decode_guid, encode_guid, parse_guid};
//!
//! // Microsoft's own tenant, as Entra quotes it in its error messages.
//! let tenant = parse_guid("72f988bf-86f1-41af-91ab-2d7cd011db47")?;
//! assert_eq!(encode_guid(tenant), "v4j5cvGGr0GRqy180BHbRw");
//! assert_eq!(decode_guid("v4j5cvGGr0GRqy180BHbRw")?, tenant);
//! # Ok::<(), dataverse_mi::guid::GuidError>(())
//! ```
//!
//! It imports nothing of the crate: it is the lowest floor (`tests/architecture.rs` checks the floors).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

/// Length of an encoded GUID: 16 bytes in unpadded Base64URL.
pub const ENCODED_GUID_LEN: usize = 22;

/// The application id of Microsoft's first-party "Power Platform Managed Identity" app, which the platform
/// puts in the `/a/` segment of every subject identifier.
pub const POWER_PLATFORM_MI_APP_ID: Uuid = Uuid::from_u128(0x58e835ab_2e39_46a9_b797_accce6633447);

/// [`POWER_PLATFORM_MI_APP_ID`] as it appears in the `/a/` segment: `qzXoWDkuqUa3l6zM5mM0Rw`.
pub const POWER_PLATFORM_MI_APP_SEGMENT: &str = "qzXoWDkuqUa3l6zM5mM0Rw";

/// The `/a/` segment Microsoft's own migration scripts use for its internal pre-production cluster
/// (`CQSGf3JJtEi27nY2ePL7UQ`). Customers' subjects never carry it.
pub const PREPROD_APP_SEGMENT: &str = "CQSGf3JJtEi27nY2ePL7UQ";

/// The `/a/` segment Microsoft's own migration scripts use for its internal test cluster
/// (`L5f3f5fVhEuUXYRgAT1Q4w`). Customers' subjects never carry it.
pub const TEST_APP_SEGMENT: &str = "L5f3f5fVhEuUXYRgAT1Q4w";

/// Whose app an `/a/` segment names, as far as the platform's own values tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AppSegmentOwner {
    /// The Power Platform Managed Identity app of the production clusters: what every customer subject carries.
    Production,
    /// The app of a Microsoft pre-production cluster (`CQSGf3JJtEi27nY2ePL7UQ`).
    MicrosoftPreProduction,
    /// The app of a Microsoft test cluster (`L5f3f5fVhEuUXYRgAT1Q4w`).
    MicrosoftTest,
    /// Any other value: typically the user's own app (client) id.
    Other,
}

impl AppSegmentOwner {
    /// Whose app `segment` names.
    pub fn of(segment: &str) -> Self {
        match segment {
            POWER_PLATFORM_MI_APP_SEGMENT => AppSegmentOwner::Production,
            PREPROD_APP_SEGMENT => AppSegmentOwner::MicrosoftPreProduction,
            TEST_APP_SEGMENT => AppSegmentOwner::MicrosoftTest,
            _ => AppSegmentOwner::Other,
        }
    }

    /// In words, e.g. "a Microsoft pre-production cluster's app".
    pub fn describe(self) -> &'static str {
        match self {
            AppSegmentOwner::Production => "the Power Platform Managed Identity app",
            AppSegmentOwner::MicrosoftPreProduction => "a Microsoft pre-production cluster's app",
            AppSegmentOwner::MicrosoftTest => "a Microsoft test cluster's app",
            AppSegmentOwner::Other => "an app that is not the platform's",
        }
    }
}

/// A GUID and its encoding in a subject: what `dataverse-mi encode-guid --output json` prints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct EncodedGuid {
    /// The GUID, lowercase and hyphenated.
    pub guid: Uuid,
    /// Its encoding ([`encode_guid`]).
    pub encoded: String,
}

impl From<Uuid> for EncodedGuid {
    fn from(guid: Uuid) -> Self {
        EncodedGuid { guid, encoded: encode_guid(guid) }
    }
}

/// Why a GUID or an encoded GUID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuidError {
    /// The text is not a GUID in one of the accepted forms.
    #[error(
        "'{input}' is not a GUID: expected 32 hex digits as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, optionally in {{braces}}"
    )]
    Malformed {
        /// What was given (cut to 80 characters).
        input: String,
    },
    /// An encoded GUID does not have 22 characters.
    #[error("an encoded GUID has exactly 22 characters; '{input}' has {len}")]
    EncodedLength {
        /// What was given (cut to 80 characters).
        input: String,
        /// Its length in characters.
        len: usize,
    },
    /// An encoded GUID has `=` padding, which the platform never writes.
    #[error("'{input}' has '=' padding; the platform writes encoded GUIDs without padding: remove the '='")]
    EncodedPadding {
        /// What was given.
        input: String,
    },
    /// An encoded GUID uses a character outside the Base64URL alphabet (e.g. `+` or `/` from standard Base64).
    #[error(
        "'{input}' has the character '{character}', which is not Base64URL (A-Z a-z 0-9 - _); standard Base64's '+' and '/' are written '-' and '_'"
    )]
    EncodedAlphabet {
        /// What was given.
        input: String,
        /// The first offending character.
        character: char,
    },
    /// The last character carries bits that a 16-byte value cannot have (not a canonical encoding).
    #[error("'{input}' is not the canonical encoding of 16 bytes (its last character carries extra bits)")]
    EncodedNonCanonical {
        /// What was given.
        input: String,
    },
}

pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// Parses a GUID as users paste it: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (any case), the same in `{braces}`,
/// or the 32 digits without hyphens (.NET's `N` format). Surrounding white space is ignored; anything else
/// (URNs, parentheses, stray characters) is refused.
pub fn parse_guid(input: &str) -> Result<Uuid, GuidError> {
    let trimmed = input.trim();
    let inner = match trimmed.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}').ok_or_else(|| malformed(input))?,
        None => trimmed,
    };
    let ok_shape = match inner.len() {
        36 => inner
            .char_indices()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() }),
        32 => trimmed.len() == 32 && inner.chars().all(|c| c.is_ascii_hexdigit()),
        _ => false,
    };
    if !ok_shape {
        return Err(malformed(input));
    }
    Uuid::try_parse(inner).map_err(|_| malformed(input))
}

fn malformed(input: &str) -> GuidError {
    GuidError::Malformed { input: clip(input) }
}

/// Encodes a GUID as the platform does: .NET `Guid.ToByteArray()` order, Base64URL, no padding (22 characters).
pub fn encode_guid(guid: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(guid.to_bytes_le())
}

/// [`encode_guid`] without allocating, for hot paths.
pub(crate) fn encode_guid_buf(guid: Uuid, buf: &mut [u8; ENCODED_GUID_LEN]) -> &str {
    let n = URL_SAFE_NO_PAD.encode_slice(guid.to_bytes_le(), buf).unwrap_or(0);
    // Base64 output is ASCII, so this never fails; an empty string would be caught by every test.
    std::str::from_utf8(&buf[..n]).unwrap_or("")
}

/// Encodes a GUID in RFC 4122 (big-endian) byte order: the *wrong* encoding that community scripts produce.
/// Kept public so that diagnostics and tests can recognise it; never use it to build a subject.
pub fn encode_guid_big_endian(guid: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(guid.as_bytes())
}

/// Decodes a 22-character encoded GUID (the inverse of [`encode_guid`]), strictly: exactly 22 characters
/// of the Base64URL alphabet, no padding, canonical last character.
pub fn decode_guid(encoded: &str) -> Result<Uuid, GuidError> {
    Ok(Uuid::from_bytes_le(decode_guid_bytes(encoded)?))
}

/// Decodes an encoded GUID read in RFC 4122 (big-endian) byte order: what a GUID encoded the wrong way
/// would have been. For diagnostics.
pub fn decode_guid_big_endian(encoded: &str) -> Result<Uuid, GuidError> {
    Ok(Uuid::from_bytes(decode_guid_bytes(encoded)?))
}

fn decode_guid_bytes(encoded: &str) -> Result<[u8; 16], GuidError> {
    if encoded.contains('=') {
        return Err(GuidError::EncodedPadding { input: clip(encoded) });
    }
    if let Some(character) = encoded.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return Err(GuidError::EncodedAlphabet { input: clip(encoded), character });
    }
    if encoded.len() != ENCODED_GUID_LEN {
        return Err(GuidError::EncodedLength { input: clip(encoded), len: encoded.chars().count() });
    }
    let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| GuidError::EncodedNonCanonical { input: clip(encoded) })?;
    <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| GuidError::EncodedNonCanonical { input: clip(encoded) })
}

/// Formats a GUID the way the platform writes it in paths and payloads: lowercase, hyphenated, no braces.
pub fn format_guid(guid: Uuid) -> String {
    guid.hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_segment_constant_is_the_encoding_of_the_app_id() {
        assert_eq!(encode_guid(POWER_PLATFORM_MI_APP_ID), POWER_PLATFORM_MI_APP_SEGMENT);
        assert_eq!(decode_guid(POWER_PLATFORM_MI_APP_SEGMENT).unwrap(), POWER_PLATFORM_MI_APP_ID);
    }

    #[test]
    fn cluster_segments_are_encoded_guids_and_named() {
        for (segment, owner) in [
            (POWER_PLATFORM_MI_APP_SEGMENT, AppSegmentOwner::Production),
            (PREPROD_APP_SEGMENT, AppSegmentOwner::MicrosoftPreProduction),
            (TEST_APP_SEGMENT, AppSegmentOwner::MicrosoftTest),
        ] {
            let guid = decode_guid(segment).unwrap();
            assert_eq!(encode_guid(guid), segment);
            assert_eq!(AppSegmentOwner::of(segment), owner);
        }
        assert_eq!(AppSegmentOwner::of("v4j5cvGGr0GRqy180BHbRw"), AppSegmentOwner::Other);
        assert!(AppSegmentOwner::MicrosoftPreProduction.describe().contains("pre-production"));
    }

    #[test]
    fn microsoft_tenant_vector() {
        let t = parse_guid("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
        assert_eq!(encode_guid(t), "v4j5cvGGr0GRqy180BHbRw");
        // The big-endian mistake gives a different, recognisable string.
        assert_eq!(encode_guid_big_endian(t), "cvmIv4bxQa-Rqy180BHbRw");
        assert_eq!(decode_guid_big_endian("cvmIv4bxQa-Rqy180BHbRw").unwrap(), t);
    }

    #[test]
    fn parse_forms() {
        let want = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
        for ok in [
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
            "{72f988bf-86f1-41af-91ab-2d7cd011db47}",
            "  72f988bf-86f1-41af-91ab-2d7cd011db47\n",
            "72f988bf86f141af91ab2d7cd011db47",
        ] {
            assert_eq!(parse_guid(ok).unwrap(), want, "{ok}");
        }
        for bad in [
            "",
            "72f988bf-86f1-41af-91ab-2d7cd011db4",
            "72f988bf-86f1-41af-91ab-2d7cd011db477",
            "{72f988bf-86f1-41af-91ab-2d7cd011db47",
            "(72f988bf-86f1-41af-91ab-2d7cd011db47)",
            "urn:uuid:72f988bf-86f1-41af-91ab-2d7cd011db47",
            "72f988bf-86f141af-91ab-2d7cd011db47-",
            "72f988bg-86f1-41af-91ab-2d7cd011db47",
            "{72f988bf86f141af91ab2d7cd011db47}",
            "72f988bf_86f1_41af_91ab_2d7cd011db47",
        ] {
            assert!(matches!(parse_guid(bad), Err(GuidError::Malformed { .. })), "{bad}");
        }
    }

    #[test]
    fn decode_is_strict() {
        assert!(matches!(decode_guid("v4j5cvGGr0GRqy180BHbRw=="), Err(GuidError::EncodedPadding { .. })));
        assert!(matches!(decode_guid("v4j5cvGGr0GRqy180BHbR"), Err(GuidError::EncodedLength { len: 21, .. })));
        assert!(matches!(
            decode_guid("v4j5cvGGr0GRqy180BH+Rw"),
            Err(GuidError::EncodedAlphabet { character: '+', .. })
        ));
        // 'x' in the last position sets bits beyond the 128th.
        assert!(matches!(decode_guid("v4j5cvGGr0GRqy180BHbRx"), Err(GuidError::EncodedNonCanonical { .. })));
        assert!(matches!(decode_guid("v4j5cvGGr0GRqy180BHbRé"), Err(GuidError::EncodedAlphabet { .. })));
    }
}
