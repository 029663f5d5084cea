//! The hash values that appear in subjects, each with the one spelling the platform accepts.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Why a hash given as text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashParseError {
    /// Not the number of hex digits the hash has.
    #[error("a {what} has {expected} hex digits; '{input}' has {found}")]
    Length {
        /// Which hash.
        what: &'static str,
        /// How many digits it has.
        expected: usize,
        /// How many were given (after removing spaces and colons).
        found: usize,
        /// What was given (cut).
        input: String,
    },
    /// A character that is not a hex digit (spaces and colons are allowed as separators).
    #[error("'{input}' has '{character}', which is not a hex digit")]
    NotHex {
        /// The first offending character.
        character: char,
        /// What was given (cut).
        input: String,
    },
    /// A version 2 name hash that is not 43 characters of Base64URL.
    #[error("a name hash is 43 characters of Base64URL without padding (A-Z a-z 0-9 - _); '{input}' is not")]
    NameHash {
        /// What was given (cut).
        input: String,
    },
}

fn parse_hex<const N: usize>(input: &str, what: &'static str) -> Result<[u8; N], HashParseError> {
    let mut digits = Vec::with_capacity(N * 2);
    for c in input.trim().chars() {
        if c == ' ' || c == ':' || c == '\t' {
            continue;
        }
        let d =
            c.to_digit(16).ok_or_else(|| HashParseError::NotHex { character: c, input: crate::guid::clip(input) })?;
        digits.push(d as u8);
    }
    if digits.len() != N * 2 {
        return Err(HashParseError::Length {
            what,
            expected: N * 2,
            found: digits.len(),
            input: crate::guid::clip(input),
        });
    }
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = (pair[0] << 4) | pair[1];
    }
    Ok(out)
}

/// Writes `bytes` (at most 32) as hex into `buf` and returns the text.
fn hex_into<'a>(bytes: &[u8], upper: bool, buf: &'a mut [u8; 64]) -> &'a str {
    let table: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    let bytes = &bytes[..bytes.len().min(32)];
    for (i, b) in bytes.iter().enumerate() {
        buf[2 * i] = table[usize::from(b >> 4)];
        buf[2 * i + 1] = table[usize::from(b & 0x0f)];
    }
    // Hex digits are ASCII.
    std::str::from_utf8(&buf[..bytes.len() * 2]).unwrap_or("")
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8], upper: bool) -> fmt::Result {
    f.write_str(hex_into(bytes, upper, &mut [0u8; 64]))
}

/// SHA-256 over a certificate's DER bytes. Displays as 64 lowercase hex digits, the only form the
/// platform's `/h/` segment matches (FIC matching is case-sensitive).
///
/// Parsing accepts the forms tools print: any case, with spaces or colons between bytes
/// (`certutil -hashfile`, `nuget sign`'s fingerprint).
///
/// ```
/// # use dataverse_mi::cert::CertificateHash;
/// let h: CertificateHash = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89".parse()?;
/// assert_eq!(h.to_string(), "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
/// # Ok::<(), dataverse_mi::cert::HashParseError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertificateHash(pub [u8; 32]);

impl CertificateHash {
    /// The lowercase hex form, written into `buf` without allocating.
    pub fn hex_into<'a>(&self, buf: &'a mut [u8; 64]) -> &'a str {
        hex_into(&self.0, false, buf)
    }
}

impl fmt::Display for CertificateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0, false)
    }
}

impl fmt::Debug for CertificateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertificateHash({self})")
    }
}

impl FromStr for CertificateHash {
    type Err = HashParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex::<32>(s, "SHA-256 hash").map(CertificateHash)
    }
}

/// A certificate's SHA-1 thumbprint. Displays as 40 upper-case hex digits (the version 0 format's spelling).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Thumbprint(pub [u8; 20]);

impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0, true)
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbprint({self})")
    }
}

impl FromStr for Thumbprint {
    type Err = HashParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex::<20>(s, "SHA-1 thumbprint").map(Thumbprint)
    }
}

/// `Base64URL(SHA-256(UTF-8(name)))` without padding: a version 2 `/i/` or `/s/` segment (43 characters).
///
/// ```
/// # use dataverse_mi::cert::NameHash;
/// let h = NameHash::of_name("CN=Contoso Root CA, O=Contoso, C=US");
/// assert_eq!(h.to_string().len(), 43);
/// assert_eq!(h.to_string().parse::<NameHash>()?, h);
/// # Ok::<(), dataverse_mi::cert::HashParseError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameHash(pub [u8; 32]);

impl NameHash {
    /// Hashes a distinguished name string (which must already be in .NET's format).
    pub fn of_name(dn: &str) -> NameHash {
        NameHash(Sha256::digest(dn.as_bytes()).into())
    }
}

impl NameHash {
    /// The Base64URL form, written into `buf` without allocating.
    pub fn encode_into<'a>(&self, buf: &'a mut [u8; 43]) -> &'a str {
        // 32 bytes always encode to exactly 43 ASCII characters, so neither step can fail.
        let n = URL_SAFE_NO_PAD.encode_slice(self.0, buf).unwrap_or(0);
        std::str::from_utf8(&buf[..n]).unwrap_or("")
    }
}

impl fmt::Display for NameHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encode_into(&mut [0u8; 43]))
    }
}

impl fmt::Debug for NameHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NameHash({self})")
    }
}

impl FromStr for NameHash {
    type Err = HashParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || HashParseError::NameHash { input: crate::guid::clip(s) };
        if s.len() != 43 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        <[u8; 32]>::try_from(bytes.as_slice()).map(NameHash).map_err(|_| bad())
    }
}

macro_rules! serde_as_string {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_as_string!(CertificateHash, Thumbprint, NameHash);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_forms_normalise_to_lowercase() {
        let want = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        for given in [
            want.to_owned(),
            want.to_uppercase(),
            want.as_bytes().chunks(2).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(":"),
            want.as_bytes().chunks(2).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" "),
            format!("  {}\n", want.to_uppercase()),
        ] {
            assert_eq!(given.parse::<CertificateHash>().unwrap().to_string(), want, "{given}");
        }
    }

    #[test]
    fn sha256_refusals() {
        assert!(matches!("abc".parse::<CertificateHash>(), Err(HashParseError::Length { expected: 64, found: 3, .. })));
        assert!(matches!(
            format!("{}g", "0".repeat(63)).parse::<CertificateHash>(),
            Err(HashParseError::NotHex { character: 'g', .. })
        ));
        // A SHA-1 thumbprint where a SHA-256 is expected.
        let err = "A94A8FE5CCB19BA61C4C0873D391E987982FBBD3".parse::<CertificateHash>().unwrap_err();
        assert!(err.to_string().contains("64 hex digits"), "{err}");
    }

    #[test]
    fn thumbprint_is_upper() {
        let t: Thumbprint = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3".parse().unwrap();
        assert_eq!(t.to_string(), "A94A8FE5CCB19BA61C4C0873D391E987982FBBD3");
    }

    #[test]
    fn name_hash_known_value() {
        // SHA-256("abc") = ba7816bf..., in Base64URL without padding.
        assert_eq!(NameHash::of_name("abc").to_string(), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
        assert!("ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=".parse::<NameHash>().is_err());
        assert!("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0".parse::<NameHash>().is_err());
        assert!("ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa1".parse::<NameHash>().is_err());
    }

    #[test]
    fn serde_round_trip() {
        let h = NameHash::of_name("x");
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<NameHash>(&json).unwrap(), h);
        let c: CertificateHash = serde_json::from_str(&format!("\"{}\"", "AB".repeat(32))).unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{}\"", "ab".repeat(32)));
    }
}
