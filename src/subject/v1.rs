//! Version 1's rules: the CN values of the names, and what a version 1 segment cannot carry.

use super::SubjectError;
use crate::cert::v1_simple_name;

/// The version 1 segment for a whole .NET name: its simple name, checked.
pub(super) fn v1_segment(which: &'static str, name: &str) -> Result<String, SubjectError> {
    let cn = v1_simple_name(name).ok_or_else(|| SubjectError::V1NameUnusable { which, name: name.to_owned() })?;
    check_v1_value(which, name, &cn)?;
    Ok(cn)
}

/// What version 1 cannot carry in a segment: a comma (AADSTS700213) or a non-ASCII character (AADSTS70050) in the
/// CN, both documented by Microsoft (e.g. `CN=Contoso, Inc.`); an empty value, surrounding white space or `/s/`
/// (which would make the subject ambiguous or end in white space, which Entra refuses); a whole name where the CN
/// belongs.
pub(super) fn check_v1_value(which: &'static str, name: &str, cn: &str) -> Result<(), SubjectError> {
    if let Some(cn_value) = v1_whole_name_cn(cn) {
        return Err(SubjectError::V1WholeName { which, name: cn.to_owned(), cn: cn_value });
    }
    if cn.contains(',') {
        return Err(SubjectError::V1NameHasComma { which, name: name.to_owned(), cn: cn.to_owned() });
    }
    if !cn.is_ascii() {
        return Err(SubjectError::V1NameNotAscii { which, name: name.to_owned(), cn: cn.to_owned() });
    }
    if cn.contains("/s/") || cn.is_empty() || cn.trim() != cn {
        return Err(SubjectError::V1NameUnusable { which, name: name.to_owned() });
    }
    Ok(())
}

/// The CN value when a version 1 segment holds a whole name (`CN=..., O=...` or `CN=...`) instead of the CN itself.
pub(crate) fn v1_whole_name_cn(segment: &str) -> Option<String> {
    let attrs = crate::cert::parse_dotnet_name(segment);
    attrs.iter().any(|a| a.key.eq_ignore_ascii_case("CN")).then(|| v1_simple_name(segment)).flatten()
}
