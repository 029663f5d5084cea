//! Distinguished names rendered exactly as .NET's `X509Certificate2.Issuer` / `.Subject`.
//!
//! The version 2 trusted-CA subject hashes the UTF-8 bytes of these strings, so a single character of
//! difference gives a subject that never matches. The rules, from dotnet/runtime's X500 name decoder
//! (`X500NameEncoder.cs`, `X500NameEncoder.ManagedDecode.cs`, `OidLookup.cs`, written to match Windows'
//! crypt32, which the plug-in runtime uses) and its tests (`X500DistinguishedNameTests.cs`):
//!
//! - RDNs in **reverse** encoded order (most specific first), separated by `", "`.
//! - The attributes of a multi-valued RDN in their **encoded** order (not re-sorted), joined by `" + "`.
//! - Each attribute as `NAME=value`, with the Windows short names: `CN`, `SN`, `SERIALNUMBER`, `C`, `L`,
//!   `S` (state), `STREET`, `O`, `OU`, `T` (title), `Description`, `PostalCode`, `POBox`, `Phone`,
//!   `X21Address`, `G`, `I`, `dnQualifier`, `E` (email), `DC`, `TPMManufacturer`, `TPMModel`, `TPMVersion`;
//!   any other attribute as `OID.` and its dotted number.
//! - A value is wrapped in `"..."` when it is empty, starts or ends with one of space, tab, LF, VT, FF, CR,
//!   or contains one of `, + = " LF < > # ;`; inside quotes each `"` is doubled. Nothing else is escaped
//!   (a CR in the middle stays as it is).
//! - String values are decoded by type: UTF8String (UTF-8), PrintableString, IA5String, NumericString and
//!   VisibleString (ASCII), TeletexString (UTF-8 when the bytes are valid UTF-8, else ISO 8859-1), BMPString
//!   (UTF-16 big-endian), UniversalString (UTF-32 big-endian); trailing NUL characters are dropped.
//! - A value that is not a character string is written `#` and the upper-case hex of its DER encoding, not
//!   quoted; one enclosing OCTET STRING is removed first.
//!
//! Where .NET's managed decoder and Windows could differ, this follows Windows (the platform's runtime):
//! PrintableString/IA5String values with ASCII characters outside their strict alphabet (`*`, `@`, `_`)
//! are printed as they are, VisibleString and UniversalString are decoded as text, and only attribute-type
//! OIDs get a short name. A name that .NET cannot decode at all (where it would return an empty string)
//! is an error here rather than an empty string, because hashing an empty name gives a subject that
//! never matches.
//!
//! ```
//! # use dataverse_mi::cert::render_dotnet_name;
//! // SEQUENCE { SET { CN=James, O=Microsoft } }, from .NET's tests.
//! let der = [
//!     0x30, 0x22, 0x31, 0x20, 0x30, 0x0C, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, 0x05, b'J', b'a', b'm',
//!     b'e', b's', 0x30, 0x10, 0x06, 0x03, 0x55, 0x04, 0x0A, 0x13, 0x09, b'M', b'i', b'c', b'r', b'o',
//!     b's', b'o', b'f', b't',
//! ];
//! assert_eq!(render_dotnet_name(&der)?, "CN=James + O=Microsoft");
//! # Ok::<(), dataverse_mi::cert::NameError>(())
//! ```

use std::borrow::Cow;

use super::tlv::{Reader, Tlv, TlvError, oid_to_string, tag};

/// Why a distinguished name cannot be rendered as .NET renders it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is not well-formed DER (`SEQUENCE OF SET OF SEQUENCE { OID, value }`).
    #[error("the distinguished name is not valid DER ({detail})")]
    Malformed {
        /// What was wrong, in a few words.
        detail: &'static str,
    },
    /// An attribute's string value does not decode in its declared ASN.1 string type.
    #[error(
        "the {attribute} attribute's {string_type} value does not decode ({detail}); .NET would render this name as an empty string"
    )]
    BadString {
        /// The attribute's short name or `OID.x.y.z`.
        attribute: String,
        /// The ASN.1 string type, e.g. `BMPString`.
        string_type: &'static str,
        /// What was wrong.
        detail: &'static str,
    },
}

impl From<TlvError> for NameError {
    fn from(e: TlvError) -> Self {
        NameError::Malformed {
            detail: match e {
                TlvError::Truncated => "truncated",
                TlvError::BadLength => "bad length",
                TlvError::UnexpectedTag { .. } => "unexpected tag",
                TlvError::TrailingData => "trailing data",
                TlvError::BadTag => "bad tag",
            },
        }
    }
}

/// The Windows short names, by the DER value bytes of the attribute type OID.
const SHORT_NAMES: &[(&[u8], &str)] = &[
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x04], "SN"),
    (&[0x55, 0x04, 0x05], "SERIALNUMBER"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x08], "S"),
    (&[0x55, 0x04, 0x09], "STREET"),
    (&[0x55, 0x04, 0x0a], "O"),
    (&[0x55, 0x04, 0x0b], "OU"),
    (&[0x55, 0x04, 0x0c], "T"),
    (&[0x55, 0x04, 0x0d], "Description"),
    (&[0x55, 0x04, 0x11], "PostalCode"),
    (&[0x55, 0x04, 0x12], "POBox"),
    (&[0x55, 0x04, 0x14], "Phone"),
    (&[0x55, 0x04, 0x18], "X21Address"),
    (&[0x55, 0x04, 0x2a], "G"),
    (&[0x55, 0x04, 0x2b], "I"),
    (&[0x55, 0x04, 0x2e], "dnQualifier"),
    (&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01], "E"),
    (&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19], "DC"),
    (&[0x67, 0x81, 0x05, 0x02, 0x01], "TPMManufacturer"),
    (&[0x67, 0x81, 0x05, 0x02, 0x02], "TPMModel"),
    (&[0x67, 0x81, 0x05, 0x02, 0x03], "TPMVersion"),
];

fn short_name_of_der(oid: &[u8]) -> Option<&'static str> {
    SHORT_NAMES.iter().find(|(der, _)| *der == oid).map(|(_, name)| *name)
}

/// The Windows short name of an X.500 attribute type in dotted form (`2.5.4.3` gives `CN`), if it has one.
pub fn attribute_short_name(oid: &str) -> Option<&'static str> {
    SHORT_NAMES.iter().find(|(der, _)| oid_to_string(der).as_deref() == Some(oid)).map(|(_, name)| *name)
}

/// Renders a DER-encoded X.500 `Name` (the whole TLV) exactly as .NET's `X500DistinguishedName.Name`.
pub fn render_dotnet_name(der: &[u8]) -> Result<String, NameError> {
    let mut outer = Reader::new(der);
    let seq = outer.read(tag::SEQUENCE)?;
    outer.finish()?;
    render_name_value(&outer, &seq)
}

/// Renders a `Name` whose TLV `seq` was read by `parent`.
pub(crate) fn render_name_value(parent: &Reader<'_>, seq: &Tlv) -> Result<String, NameError> {
    // RDNs are printed last first. Names rarely have more than 16; those stay off the heap.
    let mut inline = [(0usize, 0usize); 16];
    let mut spilled: Vec<(usize, usize)> = Vec::new();
    let mut count = 0usize;
    let mut inner = parent.inside(seq);
    while !inner.is_empty() {
        let rdn = inner.read(tag::SET)?;
        let span = (rdn.value.start, rdn.value.end);
        match inline.get_mut(count) {
            Some(slot) => *slot = span,
            None => spilled.push(span),
        }
        count += 1;
    }
    let buf = inner.buf();
    let mut out = String::with_capacity(seq.value.len() + 16);
    let in_order = inline[..count.min(16)].iter().chain(spilled.iter());
    for (i, &(start, end)) in in_order.rev().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let mut atvs = inner.inside(&Tlv { tag: tag::SET, whole: start..end, value: start..end });
        let mut first = true;
        while !atvs.is_empty() {
            let atv = atvs.read(tag::SEQUENCE)?;
            let mut parts = atvs.inside(&atv);
            let oid_tlv = parts.read(tag::OID)?;
            let value = parts.read_any()?;
            parts.finish()?;
            if !first {
                out.push_str(" + ");
            }
            first = false;
            let oid = &buf[oid_tlv.value.clone()];
            let attribute_start = out.len();
            match short_name_of_der(oid) {
                Some(name) => out.push_str(name),
                None => {
                    let dotted = oid_to_string(oid).ok_or(NameError::Malformed { detail: "bad attribute type OID" })?;
                    out.push_str("OID.");
                    out.push_str(&dotted);
                }
            }
            let attribute_end = out.len();
            out.push('=');
            match decode_string(buf, &value) {
                Some(Ok(text)) => push_quoted(&mut out, text.trim_end_matches('\0')),
                Some(Err((string_type, detail))) => {
                    return Err(NameError::BadString {
                        attribute: out[attribute_start..attribute_end].to_owned(),
                        string_type,
                        detail,
                    });
                }
                None => push_hex(&mut out, buf, &value),
            }
        }
    }
    Ok(out)
}

/// One attribute of a name as .NET prints it: its short name (`CN`, `O`, `OID.1.2.3`...) and its value with any
/// quoting removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAttribute {
    /// The attribute's name as printed (`CN`, `OU`, `S`, `E`, `OID.2.5.4.97`...).
    pub key: String,
    /// The value, unquoted (`""` inside quotes read as one `"`).
    pub value: String,
}

/// Reads back a name printed by [`render_dotnet_name`] (.NET's `X509Certificate2.Subject` / `.Issuer`): RDNs
/// separated by `", "`, multi-valued RDNs by `" + "`, values in double quotes when they hold a separator.
/// Lenient: a part without `=` becomes an attribute with an empty key, so nothing is lost.
///
/// ```
/// use dataverse_mi::cert::parse_dotnet_name;
///
/// let attrs = parse_dotnet_name(r#"CN="Contoso, Inc.", OU=Plug-ins + OU=Dev, O=Contoso"#);
/// let pairs: Vec<(&str, &str)> = attrs.iter().map(|a| (a.key.as_str(), a.value.as_str())).collect();
/// assert_eq!(pairs, [("CN", "Contoso, Inc."), ("OU", "Plug-ins"), ("OU", "Dev"), ("O", "Contoso")]);
/// ```
pub fn parse_dotnet_name(name: &str) -> Vec<NameAttribute> {
    let mut out = Vec::new();
    let mut key = String::new();
    let mut value = String::new();
    let mut in_key = true;
    // Inside "...", and whether the current value was quoted (then nothing after the closing quote counts).
    let (mut quoted, mut was_quoted) = (false, false);
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    value.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => value.push(c),
            }
            continue;
        }
        match c {
            '=' if in_key => in_key = false,
            '"' if !in_key && value.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            ',' | '+' => {
                push_attribute(&mut out, &mut key, &mut value, in_key, was_quoted);
                in_key = true;
                was_quoted = false;
                // The separator's surrounding spaces are not part of the next key.
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            _ if in_key => key.push(c),
            _ if was_quoted => {}
            ' ' if value.is_empty() => {}
            _ => value.push(c),
        }
    }
    push_attribute(&mut out, &mut key, &mut value, in_key, was_quoted);
    out
}

fn push_attribute(out: &mut Vec<NameAttribute>, key: &mut String, value: &mut String, in_key: bool, quoted: bool) {
    let (k, v) = if in_key {
        (String::new(), key.trim().to_owned())
    } else if quoted {
        (key.trim().to_owned(), std::mem::take(value))
    } else {
        (key.trim().to_owned(), value.trim_end().to_owned())
    };
    if !(k.is_empty() && v.is_empty()) {
        out.push(NameAttribute { key: k, value: v });
    }
    key.clear();
    value.clear();
}

fn needs_quoting(value: &str) -> bool {
    // All the characters involved are ASCII, which never occurs inside a multi-byte UTF-8 sequence, so a byte
    // scan is exact.
    fn quotable_space(b: u8) -> bool {
        b == b' ' || (0x09..=0x0d).contains(&b)
    }
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            quotable_space(first)
                || quotable_space(last)
                || bytes.iter().any(|b| matches!(b, b',' | b'+' | b'=' | b'"' | b'\n' | b'<' | b'>' | b'#' | b';'))
        }
        _ => true,
    }
}

/// A value as .NET prints it: in double quotes (inner quotes doubled) where it needs them.
pub(crate) fn quote_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    push_quoted(&mut out, value);
    out
}

fn push_quoted(out: &mut String, value: &str) {
    if needs_quoting(value) {
        out.push('"');
        for c in value.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(value);
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn push_hex(out: &mut String, buf: &[u8], value: &Tlv) {
    // One enclosing OCTET STRING is removed, as .NET does.
    let bytes = if value.tag == tag::OCTET_STRING { &buf[value.value.clone()] } else { &buf[value.whole.clone()] };
    out.push('#');
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
        out.push(char::from(HEX_UPPER[usize::from(b & 0x0f)]));
    }
}

type Failure = (&'static str, &'static str);

/// Decodes a character-string value; `None` when the value is not a (primitive, universal) character string.
/// Borrows where the bytes already are the text (UTF-8 and the ASCII types), so the common case does not allocate.
fn decode_string<'a>(buf: &'a [u8], value: &Tlv) -> Option<Result<Cow<'a, str>, Failure>> {
    let bytes = &buf[value.value.clone()];
    Some(match value.tag {
        0x0c => std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|_| ("UTF8String", "invalid UTF-8")),
        0x13 => ascii(bytes, "PrintableString"),
        0x16 => ascii(bytes, "IA5String"),
        0x12 => ascii(bytes, "NumericString"),
        0x1a => ascii(bytes, "VisibleString"),
        0x14 => Ok(match std::str::from_utf8(bytes) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
        }),
        0x1e => bmp(bytes).map(Cow::Owned),
        0x1c => universal(bytes).map(Cow::Owned),
        _ => return None,
    })
}

fn ascii<'a>(bytes: &'a [u8], string_type: &'static str) -> Result<Cow<'a, str>, Failure> {
    match std::str::from_utf8(bytes) {
        Ok(s) if bytes.is_ascii() => Ok(Cow::Borrowed(s)),
        _ => Err((string_type, "a byte above 0x7F")),
    }
}

fn bmp(bytes: &[u8]) -> Result<String, Failure> {
    if !bytes.len().is_multiple_of(2) {
        return Err(("BMPString", "odd number of bytes"));
    }
    let units = bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
    char::decode_utf16(units).collect::<Result<String, _>>().map_err(|_| ("BMPString", "unpaired surrogate"))
}

fn universal(bytes: &[u8]) -> Result<String, Failure> {
    if !bytes.len().is_multiple_of(4) {
        return Err(("UniversalString", "length not a multiple of 4"));
    }
    bytes
        .chunks_exact(4)
        .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect::<Option<String>>()
        .ok_or(("UniversalString", "not a Unicode scalar value"))
}

/// The simple name of a .NET-formatted distinguished name: what version 1 puts in `/i/` and `/s/`.
///
/// Microsoft documents version 1 as "CN-based" and a published version 1 subject carries the bare CN values. For a
/// name with several CNs, or none, nothing is documented; this follows .NET's simple-name rule
/// (`X509Certificate2.GetNameInfo(X509NameType.SimpleName, ...)`, dotnet/runtime's `GetSimpleNameInfo`, written to
/// match Windows' `CERT_NAME_SIMPLE_DISPLAY_TYPE`): the attributes are read most specific first, as .NET prints
/// them, and the first CN wins; without a CN, the OU, else the O, else the e-mail address (the last one read of
/// each), else the first other attribute. `None` for an empty name. The platform's own subject
/// (`GetComponentManagedIdentityFIC`) wins over this wherever it answers.
///
/// ```
/// use dataverse_mi::cert::v1_simple_name;
/// assert_eq!(v1_simple_name("CN=Contoso Test Root CA, OU=PKI, O=Contoso, C=US").as_deref(), Some("Contoso Test Root CA"));
/// assert_eq!(v1_simple_name("OU=Signing, O=Contoso, C=US").as_deref(), Some("Signing"));
/// assert_eq!(v1_simple_name("CN=Leaf, OU=x, CN=Outer").as_deref(), Some("Leaf"));
/// ```
pub fn v1_simple_name(name: &str) -> Option<String> {
    let (mut ou, mut o, mut e, mut first) = (None, None, None, None);
    for a in parse_dotnet_name(name) {
        match a.key.as_str() {
            "CN" => return Some(a.value),
            "OU" => ou = Some(a.value),
            "O" => o = Some(a.value),
            "E" => e = Some(a.value),
            _ => {
                first.get_or_insert(a.value);
            }
        }
    }
    ou.or(o).or(e).or(first)
}

#[cfg(test)]
mod parse_tests {
    use super::*;
    use proptest::prelude::*;

    /// Prints attributes as .NET does: `", "` between RDNs, values quoted where .NET quotes them.
    fn print(attrs: &[(String, String)]) -> String {
        let mut out = String::new();
        for (i, (k, v)) in attrs.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(k);
            out.push('=');
            push_quoted(&mut out, v);
        }
        out
    }

    #[test]
    fn reads_what_dotnet_prints() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            (
                "CN=Contoso Plug-in Signing, OU=Dataverse, O=Contoso, C=US",
                &[("CN", "Contoso Plug-in Signing"), ("OU", "Dataverse"), ("O", "Contoso"), ("C", "US")],
            ),
            (r#"CN="Contoso, Inc.", O="Say ""hi""""#, &[("CN", "Contoso, Inc."), ("O", r#"Say "hi""#)]),
            (r#"CN=" padded ", O=x"#, &[("CN", " padded "), ("O", "x")]),
            (
                "CN=Alice + OU=Engineering + OU=Plug-ins, O=Contoso",
                &[("CN", "Alice"), ("OU", "Engineering"), ("OU", "Plug-ins"), ("O", "Contoso")],
            ),
            (r#"CN="", OID.1.2.3.4=custom value"#, &[("CN", ""), ("OID.1.2.3.4", "custom value")]),
            ("CN=日本語 Plug-in, O=Zoë Łódź", &[("CN", "日本語 Plug-in"), ("O", "Zoë Łódź")]),
            ("", &[]),
        ];
        for (name, want) in cases {
            let got: Vec<(String, String)> = parse_dotnet_name(name).into_iter().map(|a| (a.key, a.value)).collect();
            let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            assert_eq!(got, want, "{name}");
        }
        // Not a .NET name: nothing is lost, a part without '=' keeps its text.
        let odd = parse_dotnet_name("just text");
        assert_eq!(odd, [NameAttribute { key: String::new(), value: "just text".into() }]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn print_then_parse_is_identity(
            attrs in prop::collection::vec(
                (prop::sample::select(vec!["CN", "O", "OU", "L", "S", "C", "E", "OID.2.5.4.97"]), "[ a-zA-Z0-9,+=\"<>#;\n.éü-]{0,12}"),
                0..6,
            )
        ) {
            let attrs: Vec<(String, String)> = attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let got: Vec<(String, String)> = parse_dotnet_name(&print(&attrs)).into_iter().map(|a| (a.key, a.value)).collect();
            prop_assert_eq!(got, attrs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn name(s: &str) -> String {
        render_dotnet_name(&hex(s)).unwrap()
    }

    // Vectors from dotnet/runtime's X500DistinguishedNameTests.cs (Decode with Reversed / .Name).
    #[test]
    fn dotnet_multi_component_rdn() {
        assert_eq!(
            name("30223120300C060355040313054A616D65733010060355040A13094D6963726F736F6674"),
            "CN=James + O=Microsoft"
        );
    }

    #[test]
    fn dotnet_unknown_oid() {
        assert_eq!(name("30183116301406052901020203130B496E76616C6964204F6964"), "OID.1.1.1.2.2.3=Invalid Oid");
    }

    #[test]
    fn dotnet_whitespace_cases() {
        assert_eq!(name("3017311530130603550403130C20436F6D6D6F6E204E616D65"), "CN=\" Common Name\"");
        assert_eq!(
            name("30233121301F06035504031E1800090043006F006D006D006F006E0020004E0061006D0065"),
            "CN=\"\tCommon Name\""
        );
        assert_eq!(
            name("30233121301F06035504031E18000A0043006F006D006D006F006E0020004E0061006D0065"),
            "CN=\"\nCommon Name\""
        );
        assert_eq!(
            name("30233121301F06035504031E18000B0043006F006D006D006F006E0020004E0061006D0065"),
            "CN=\"\u{b}Common Name\""
        );
        assert_eq!(
            name("30233121301F06035504031E18000D0043006F006D006D006F006E0020004E0061006D0065"),
            "CN=\"\rCommon Name\""
        );
        // EN QUAD is white space to .NET's char.IsWhiteSpace, but is not quoted.
        assert_eq!(
            name("30233121301F06035504031E1820020043006F006D006D006F006E0020004E0061006D0065"),
            "CN=\u{2002}Common Name"
        );
        assert_eq!(name("3017311530130603550403130C436F6D6D6F6E204E616D6520"), "CN=\"Common Name \"");
        assert_eq!(
            name("30233121301F06035504031E180043006F006D006D006F006E0020004E0061006D00650009"),
            "CN=\"Common Name\t\""
        );
        assert_eq!(
            name("30233121301F06035504031E180043006F006D006D006F006E0020004E0061006D0065000C"),
            "CN=\"Common Name\u{c}\""
        );
        assert_eq!(
            name("30233121301F06035504031E180043006F006D006D006F006E0020004E0061006D00652002"),
            "CN=Common Name\u{2002}"
        );
    }

    #[test]
    fn dotnet_quoted_contents() {
        assert_eq!(name("300B3109300706035504031300"), "CN=\"\"");
        assert_eq!(name("3016311430120603550403130B436F6D6D6F6E2C4E616D65"), "CN=\"Common,Name\"");
        assert_eq!(name("3016311430120603550403130B436F6D6D6F6E2B4E616D65"), "CN=\"Common+Name\"");
        assert_eq!(name("3016311430120603550403130B436F6D6D6F6E3D4E616D65"), "CN=\"Common=Name\"");
        let bmp = |c: &str| format!("3021311F301D06035504031E160043006F006D006D006F006E00{c}004E0061006D0065");
        assert_eq!(name(&bmp("0A")), "CN=\"Common\nName\"");
        assert_eq!(name(&bmp("0D")), "CN=Common\rName");
        assert_eq!(name(&bmp("3C")), "CN=\"Common<Name\"");
        assert_eq!(name(&bmp("3E")), "CN=\"Common>Name\"");
        assert_eq!(name(&bmp("23")), "CN=\"Common#Name\"");
        assert_eq!(name(&bmp("3B")), "CN=\"Common;Name\"");
        assert_eq!(name(&bmp("22")), "CN=\"Common\"\"Name\"");
    }

    #[test]
    fn dotnet_internal_quotes() {
        assert_eq!(
            name("30233121301F06035504031E1800220043006F006D006D006F006E0020004E0061006D0065"),
            "CN=\"\"\"Common Name\""
        );
        assert_eq!(
            name("30233121301F06035504031E180043006F006D006D006F006E0020004E0061006D00650022"),
            "CN=\"Common Name\"\"\""
        );
    }

    #[test]
    fn dotnet_t61_cases() {
        assert_eq!(
            name(
                "308186310b3009060355040613024a50310f300d060355040813064d69796167\
                 69311830160603550407130f53656e64616920497a756d692d6b753117301506\
                 0355040a140e47726170654369747920696e632e311a3018060355040b141154\
                 6f6f6c7320446576656c6f706d656e74311730150603550403140e4772617065\
                 4369747920696e632e"
            ),
            "CN=GrapeCity inc., OU=Tools Development, O=GrapeCity inc., L=Sendai Izumi-ku, S=Miyagi, C=JP"
        );
        assert_eq!(
            name(
                "3081B5310B300906035504061302444B312D302B060355040A14244865646562\
                 792773204DF862656C68616E64656C202F2F204356523A313334373139363731\
                 2F302D060355040314264865646562792773204DF862656C68616E64656C202D\
                 2053616C6773616664656C696E67656E311E301C06092A864886F70D01090116\
                 0F76686D407573652E746573742E646B312630240603550405131D4356523A31\
                 333437313936372D5549443A313231323132313231323132"
            ),
            "SERIALNUMBER=CVR:13471967-UID:121212121212, E=vhm@use.test.dk, \
             CN=Hedeby's M\u{f8}belhandel - Salgsafdelingen, O=Hedeby's M\u{f8}belhandel // CVR:13471967, C=DK"
        );
        assert_eq!(name("300D310B300906035504061402C2A2"), "C=\u{a2}");
        assert_eq!(name("300E310C300A06035504071403C2A2F8"), "L=\u{c2}\u{a2}\u{f8}");
    }

    #[test]
    fn dotnet_microsoft_dot_com_subject() {
        let got = name(
            "3082010F31133011060B2B0601040182373C02010313025553311B3019060B2B\
             0601040182373C0201020C0A57617368696E67746F6E311D301B060355040F13\
             1450726976617465204F7267616E697A6174696F6E3112301006035504051309\
             363030343133343835310B3009060355040613025553310E300C06035504110C\
             0539383035323113301106035504080C0A57617368696E67746F6E3110300E06\
             035504070C075265646D6F6E643118301606035504090C0F31204D6963726F73\
             6F667420576179311E301C060355040A0C154D6963726F736F667420436F7270\
             6F726174696F6E310E300C060355040B0C054D53434F4D311A30180603550403\
             0C117777772E6D6963726F736F66742E636F6D",
        );
        assert_eq!(
            got,
            "CN=www.microsoft.com, OU=MSCOM, O=Microsoft Corporation, STREET=1 Microsoft Way, \
             L=Redmond, S=Washington, PostalCode=98052, C=US, SERIALNUMBER=600413485, \
             OID.2.5.4.15=Private Organization, OID.1.3.6.1.4.1.311.60.2.1.2=Washington, \
             OID.1.3.6.1.4.1.311.60.2.1.3=US"
        );
    }

    #[test]
    fn dotnet_numeric_string_and_unsorted_set() {
        assert_eq!(
            name("30283117301506052901020203120C313233203635342037383930310D300B0603550403130454657374"),
            "CN=Test, OID.1.1.1.2.2.3=123 654 7890"
        );
        assert_eq!(name("301C311A300B060355040B13047A7A7A7A300B060355040B130461616161"), "OU=zzzz + OU=aaaa");
    }

    /// One single-attribute RDN (short-form lengths only: test values stay small).
    fn rdn(oid: &str, value: &str) -> String {
        let atv = format!("06{:02X}{oid}{value}", oid.len() / 2);
        let atv = format!("30{:02X}{atv}", atv.len() / 2);
        format!("31{:02X}{atv}", atv.len() / 2)
    }

    fn seq(sets: &[String]) -> String {
        let body: String = sets.concat();
        format!("30{:02X}{body}", body.len() / 2)
    }

    #[test]
    fn attribute_oid_arcs_beyond_128_bits() {
        // What .NET prints for a certificate carrying a UUID-arc attribute (2.25.{UUID as a number}) whose arc is
        // above 2^128: the crate refused it before ("bad attribute type OID"). The OID bytes were encoded
        // independently (Python's arbitrary-precision integers).
        let oid = "699080808080808080808080808080808080E039";
        assert_eq!(
            name(&seq(&[rdn("550403", "0C0454657374"), rdn(oid, "0C07506C75672D696E")])),
            "OID.2.25.1361129467683753853853498429727072858169=Plug-in, CN=Test"
        );
    }

    #[test]
    fn dotnet_non_string_values() {
        // Format_ComponentWithNonStringContent (printed reversed here when there are two RDNs).
        assert_eq!(name(&seq(&[rdn("550403", "3000")])), "CN=#3000");
        assert_eq!(name(&seq(&[rdn("550405", "0603550406")])), "SERIALNUMBER=#0603550406");
        assert_eq!(name(&seq(&[rdn("00", "31020500")])), "OID.0.0=#31020500");
        assert_eq!(name(&seq(&[rdn("550403", "04023000")])), "CN=#3000");
        assert_eq!(name(&seq(&[rdn("550403", "040404023000")])), "CN=#04023000");
        assert_eq!(name(&seq(&[rdn("550403", "0303003000")])), "CN=#0303003000");
        assert_eq!(name(&seq(&[rdn("550408", "0500")])), "S=#0500");
        assert_eq!(name(&seq(&[rdn("550408", "0101FF")])), "S=#0101FF");
        assert_eq!(name(&seq(&[rdn("550403", "0C03233030"), rdn("550408", "3000")])), "S=#3000, CN=\"#00\"");
        assert_eq!(
            name(&seq(&[rdn("550403", "0C02504A"), rdn("550408", "3000"), rdn("00", "0C024141")])),
            "OID.0.0=AA, S=#3000, CN=PJ"
        );
    }

    #[test]
    fn universal_and_visible_strings() {
        assert_eq!(name(&seq(&[rdn("550403", "1C080000005A000000E9")])), "CN=Z\u{e9}");
        assert_eq!(name(&seq(&[rdn("550403", "1C040001F600")])), "CN=\u{1f600}");
        assert_eq!(name(&seq(&[rdn("550403", "1A03612A62")])), "CN=a*b");
        // PrintableString with characters outside its strict alphabet, as Windows prints them.
        assert_eq!(name(&seq(&[rdn("550403", "1305612A62405F")])), "CN=a*b@_");
        // Trailing NUL characters are dropped, inner ones kept.
        assert_eq!(name(&seq(&[rdn("550403", "13054142004300")])), "CN=AB\u{0}C");
        assert_eq!(name(&seq(&[rdn("550403", "130441420000")])), "CN=AB");
        // A BMP surrogate pair.
        assert_eq!(name(&seq(&[rdn("550403", "1E04D83DDE00")])), "CN=\u{1f600}");
    }

    #[test]
    fn attribute_names() {
        for (oid, short) in [
            ("550403", "CN"),
            ("550404", "SN"),
            ("550405", "SERIALNUMBER"),
            ("550406", "C"),
            ("550407", "L"),
            ("550408", "S"),
            ("550409", "STREET"),
            ("55040A", "O"),
            ("55040B", "OU"),
            ("55040C", "T"),
            ("55040D", "Description"),
            ("550411", "PostalCode"),
            ("550412", "POBox"),
            ("550414", "Phone"),
            ("550418", "X21Address"),
            ("55042A", "G"),
            ("55042B", "I"),
            ("55042E", "dnQualifier"),
            ("2A864886F70D010901", "E"),
            ("0992268993F22C640119", "DC"),
            ("6781050201", "TPMManufacturer"),
            ("550461", "OID.2.5.4.97"),
            ("2A864886F70D010101", "OID.1.2.840.113549.1.1.1"),
        ] {
            assert_eq!(name(&seq(&[rdn(oid, "130178")])), format!("{short}=x"), "{oid}");
        }
    }

    #[test]
    fn short_names_by_dotted_oid() {
        assert_eq!(attribute_short_name("2.5.4.3"), Some("CN"));
        assert_eq!(attribute_short_name("2.5.4.8"), Some("S"));
        assert_eq!(attribute_short_name("1.2.840.113549.1.9.1"), Some("E"));
        assert_eq!(attribute_short_name("0.9.2342.19200300.100.1.25"), Some("DC"));
        assert_eq!(attribute_short_name("2.23.133.2.3"), Some("TPMVersion"));
        assert_eq!(attribute_short_name("2.5.4.15"), None);
        assert_eq!(attribute_short_name("CN"), None);
    }

    #[test]
    fn bad_strings_are_errors_not_empty_names() {
        let err = render_dotnet_name(&hex(&seq(&[rdn("550403", "1E0100")]))).unwrap_err();
        assert!(matches!(err, NameError::BadString { string_type: "BMPString", .. }), "{err:?}");
        assert!(err.to_string().contains("CN"), "{err}");
        let err = render_dotnet_name(&hex(&seq(&[rdn("550403", "1E02D800")]))).unwrap_err();
        assert!(matches!(err, NameError::BadString { detail: "unpaired surrogate", .. }), "{err:?}");
        let err = render_dotnet_name(&hex(&seq(&[rdn("550403", "0C01FF")]))).unwrap_err();
        assert!(matches!(err, NameError::BadString { string_type: "UTF8String", .. }));
        let err = render_dotnet_name(&hex(&seq(&[rdn("550403", "1301FF")]))).unwrap_err();
        assert!(matches!(err, NameError::BadString { string_type: "PrintableString", .. }));
        let err = render_dotnet_name(&hex(&seq(&[rdn("550403", "1C0300D800")]))).unwrap_err();
        assert!(matches!(err, NameError::BadString { string_type: "UniversalString", .. }));
        // Not a SEQUENCE, trailing data, truncated, empty, an RDN that is not a SET, a bad OID.
        for bad in ["310000", "300000", "3005310330", "", "30023000", "3007310530030601"] {
            assert!(matches!(render_dotnet_name(&hex(bad)), Err(NameError::Malformed { .. })), "{bad}");
        }
    }

    #[test]
    fn empty_name_is_empty_string() {
        assert_eq!(name("3000"), "");
    }
}
