//! The ways people write a .NET distinguished name that are not .NET's (RFC 4514, OpenSSL's), to recognise a
//! version 2 name hash computed over the wrong text.

/// The ways people write a distinguished name other than .NET's, each with where it comes from: RFC 4514 (most
/// specific first, `,` without a space, `ST` for the state, `\,` escapes), .NET's text without the spaces, the
/// forward order (least specific first), OpenSSL's one-line `/C=../O=../CN=..` and its default `C = US, O = ..`,
/// `ST=` where .NET writes `S=`, long attribute names (`commonName=..., organizationName=...`), and a community
/// tool's `commonName=X/organizationName=Y`.
pub(crate) fn non_dotnet_dn_forms(dotnet: &str) -> Vec<(String, String)> {
    let attrs = crate::cert::parse_dotnet_name(dotnet);
    let st = |k: &str| if k == "S" { "ST".to_owned() } else { k.to_owned() };
    let long = |k: &str| {
        match k {
            "CN" => "commonName",
            "O" => "organizationName",
            "OU" => "organizationalUnitName",
            "C" => "countryName",
            "S" => "stateOrProvinceName",
            "L" => "localityName",
            "E" => "emailAddress",
            "STREET" => "streetAddress",
            "SERIALNUMBER" => "serialNumber",
            "DC" => "domainComponent",
            other => other,
        }
        .to_owned()
    };
    let rfc_escape = |v: &str| {
        let mut out = String::new();
        for (i, c) in v.chars().enumerate() {
            if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') || (i == 0 && matches!(c, '#' | ' ')) {
                out.push('\\');
            }
            out.push(c);
        }
        out
    };
    let dotnet_value = |v: &str| crate::cert::dn::quote_value(v);
    let render = |order: &mut dyn Iterator<Item = &crate::cert::NameAttribute>,
                  key: &dyn Fn(&str) -> String,
                  value: &dyn Fn(&str) -> String,
                  eq: &str,
                  sep: &str| {
        order.map(|a| format!("{}{eq}{}", key(&a.key), value(&a.value))).collect::<Vec<_>>().join(sep)
    };
    let same = |k: &str| k.to_owned();
    let raw = |v: &str| v.to_owned();
    let mut forms = vec![
        (
            render(&mut attrs.iter(), &st, &rfc_escape, "=", ","),
            "RFC 4514 (`openssl x509 -nameopt RFC2253`, Python, Go, Java)".to_owned(),
        ),
        (render(&mut attrs.iter(), &same, &dotnet_value, "=", ","), "commas without spaces".to_owned()),
        (
            render(&mut attrs.iter().rev(), &same, &dotnet_value, "=", ", "),
            "forward order (least specific first, as the DER encodes it)".to_owned(),
        ),
        (
            format!("/{}", render(&mut attrs.iter().rev(), &st, &raw, "=", "/")),
            "OpenSSL's one-line /C=../CN=.. form".to_owned(),
        ),
        (render(&mut attrs.iter().rev(), &st, &raw, " = ", ", "), "OpenSSL's default `C = US, O = ..` form".to_owned()),
        (render(&mut attrs.iter(), &st, &dotnet_value, "=", ", "), "`ST=` where .NET writes `S=`".to_owned()),
        (render(&mut attrs.iter(), &long, &dotnet_value, "=", ", "), "long attribute names (`commonName=`)".to_owned()),
        (
            render(&mut attrs.iter(), &long, &raw, "=", "/"),
            "a community tool's `commonName=X/organizationName=Y` form".to_owned(),
        ),
        (
            render(&mut attrs.iter().rev(), &st, &raw, "=", "\n"),
            "Node's `X509Certificate.subject` (one per line, forward order)".to_owned(),
        ),
    ];
    // Then every combination of order, separator, state name and quoting that people write, so a name hashed in
    // any of them is named (the labels above win where a form is both).
    for (reversed, order) in [(false, "most specific first"), (true, "least specific first (DER order)")] {
        for (sep, sep_label) in [(", ", "\", \""), (",", "\",\""), ("; ", "\"; \""), (" ", "spaces")] {
            for (key, key_label) in [(&same as &dyn Fn(&str) -> String, "S="), (&st as &dyn Fn(&str) -> String, "ST=")]
            {
                for (value, value_label) in [
                    (&dotnet_value as &dyn Fn(&str) -> String, ".NET quoting"),
                    (&raw as &dyn Fn(&str) -> String, "no quoting"),
                    (&rfc_escape as &dyn Fn(&str) -> String, "RFC 4514 escapes"),
                ] {
                    let text = if reversed {
                        render(&mut attrs.iter().rev(), key, value, "=", sep)
                    } else {
                        render(&mut attrs.iter(), key, value, "=", sep)
                    };
                    forms.push((text, format!("{order}, separated by {sep_label}, {key_label}, {value_label}")));
                }
            }
        }
    }
    // A form that happens to be .NET's own (a one-attribute name written the same way) explains nothing.
    forms.retain(|(form, _)| form != dotnet);
    let mut seen = std::collections::HashSet::new();
    forms.retain(|(form, _)| seen.insert(form.clone()));
    forms
}
