//! `docs/api.md` names only what exists: every `Type::method` and `module::Item` it quotes is defined in the crate.

use std::path::Path;

fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).expect("a source file is readable"));
        }
    }
}

fn defines_type(src: &str, name: &str) -> bool {
    ["struct", "enum", "trait", "type"].iter().any(|kind| src.contains(&format!("pub {kind} {name}")))
}

fn defines_fn(src: &str, name: &str) -> bool {
    src.contains(&format!("fn {name}(")) || src.contains(&format!("fn {name}<"))
}

#[test]
fn the_api_map_names_what_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("docs/api.md")).expect("docs/api.md");
    let mut src = String::new();
    sources(&root.join("src"), &mut src);
    let mut missing = Vec::new();
    let mut checked = 0;
    for quoted in map.split('`').skip(1).step_by(2) {
        let quoted = quoted.split('(').next().unwrap_or(quoted);
        let parts: Vec<&str> = quoted.split("::").collect();
        if parts.len() < 2 || parts.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            continue;
        }
        checked += 1;
        let last = parts[parts.len() - 1];
        let before = parts[parts.len() - 2];
        let ok = if before.starts_with(char::is_uppercase) {
            // `Type::method` (or `module::Type::method`), or an enum's variant.
            defines_type(&src, before) && (defines_fn(&src, last) || src.contains(&format!("    {last}")))
        } else if last.starts_with(char::is_uppercase) {
            defines_type(&src, last) || src.contains(&format!("pub const {last}"))
        } else {
            defines_fn(&src, last)
                || src.contains(&format!("pub mod {last}"))
                || src.contains(&format!("pub use ::{last}"))
        };
        if !ok {
            missing.push(quoted.to_owned());
        }
    }
    assert!(checked > 40, "the map quotes {checked} paths: the check reads it wrong");
    assert!(missing.is_empty(), "docs/api.md names what the crate does not define: {missing:?}");
}
