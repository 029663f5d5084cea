//! The crate's import graph: no circle between files, and no import that runs up a floor.
//!
//! The floors, lowest first, are [`FLOORS`]: the pure core (`secret`, `files`, `guid`, `cloud`, `environment`,
//! `cert`, `subject`, `fic`, `entities`), the transport (`http`, `auth`), the clients, the diagnosis, the engine
//! (`provision`), the audit, the testkit, the crate root and the CLI. A file may use what a lower floor holds, and
//! files of its own top-level module, as long as no circle forms between files.
//!
//! Every file under `src/` is parsed with `syn` (so strings, comments and macros cannot fool the check), and every
//! path it names that starts with `crate`, `super`, `self` or a child module it declares is resolved to the file
//! that defines the item, following `pub use` re-exports (a facade is not a dependency: a parent that re-exports
//! its children does not depend on them, a parent whose code calls them does). Test-only code (`#[cfg(test)]`)
//! is left out: a module's unit tests may use anything.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// The floors, lowest first. A top-level module not listed here fails the check, so a new module must be given
/// its floor.
const FLOORS: &[&[&str]] = &[
    &["secret", "files"],
    &["guid"],
    &["cloud"],
    &["environment"],
    &["cert"],
    &["subject"],
    &["fic"],
    &["entities"],
    &["http"],
    &["auth"],
    &["clients"],
    &["diagnose"],
    &["provision"],
    &["audit"],
    &["testkit"],
    &[""], // the crate root (lib.rs): re-exports and the crate's `Error`
    &["bin"],
];

/// A module path from the crate root (`["provision", "engine", "plan"]`); the binary's files start with `bin`.
type ModPath = Vec<String>;

/// What one file declares and names.
#[derive(Default)]
struct FileFacts {
    /// The file, relative to the crate.
    file: String,
    /// Child modules declared in the file (`mod x;`), with whether they are inline.
    children: BTreeSet<String>,
    /// Names the file defines at its top level (types, functions, constants, traits, macros).
    defines: BTreeSet<String>,
    /// `pub use` re-exports: the name seen here -> the path it stands for (absolute).
    reexports: BTreeMap<String, ModPath>,
    /// `pub use path::*` re-exports, absolute.
    glob_reexports: Vec<ModPath>,
    /// Paths the file's code uses (absolute, unresolved), each with how it was written.
    uses: Vec<(ModPath, String)>,
    /// Modules whose every name the file imports (`use super::*`), absolute.
    glob_uses: Vec<ModPath>,
    /// Single names the file's code uses (`Plan`, `decide`): through a glob import they name another file.
    bare: BTreeSet<String>,
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && {
            let text = a.meta.require_list().map(|l| l.tokens.to_string()).unwrap_or_default();
            text == "test" || text.starts_with("all (test") || text.starts_with("all(test") || text.contains("doctest")
        }
    })
}

fn is_public(vis: &syn::Visibility) -> bool {
    !matches!(vis, syn::Visibility::Inherited)
}

/// Collects what a file names. `here` is the module the file is; inline modules push onto it.
struct Collector<'a> {
    here: ModPath,
    facts: &'a mut FileFacts,
    /// Child modules of the module being walked (the file's, then an inline module's).
    children: BTreeSet<String>,
    depth: usize,
}

impl Collector<'_> {
    /// Makes a written path absolute, if it starts with `crate`, `super`, `self` or a child module.
    fn absolute(&self, segments: &[String]) -> Option<ModPath> {
        let first = segments.first()?;
        let mut base = self.here.clone();
        let mut rest = segments;
        match first.as_str() {
            "crate" | "dataverse_mi" => {
                base.clear();
                if self.here.first().is_some_and(|m| m == "bin") && first == "crate" {
                    base.push("bin".into());
                }
                rest = &segments[1..];
            }
            "self" => rest = &segments[1..],
            "super" => {
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
            }
            child if self.children.contains(child) => {}
            _ => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn record(&mut self, segments: &[String]) {
        if let Some(path) = self.absolute(segments) {
            self.facts.uses.push((path, segments.join("::")));
        }
    }

    fn use_tree(&mut self, tree: &syn::UseTree, prefix: &mut Vec<String>, public: bool) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(&p.tree, prefix, public);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                prefix.push(n.ident.to_string());
                self.use_leaf(prefix, n.ident.to_string(), public);
                prefix.pop();
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                self.use_leaf(prefix, r.rename.to_string(), public);
                prefix.pop();
            }
            syn::UseTree::Glob(_) => {
                if let Some(path) = self.absolute(prefix) {
                    if public && self.depth == 0 {
                        self.facts.glob_reexports.push(path);
                    } else {
                        self.facts.uses.push((path.clone(), format!("{}::*", prefix.join("::"))));
                        self.facts.glob_uses.push(path);
                    }
                }
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(t, prefix, public);
                }
            }
        }
    }

    fn use_leaf(&mut self, path: &[String], seen_as: String, public: bool) {
        let Some(absolute) = self.absolute(path) else { return };
        if public && self.depth == 0 {
            self.facts.reexports.insert(seen_as, absolute);
        } else {
            self.facts.uses.push((absolute, path.join("::")));
        }
    }

    /// Paths inside macro calls (`format!`, `matches!`) are tokens to syn: find `crate :: a :: b` runs in them.
    fn tokens(&mut self, tokens: proc_macro2::TokenStream) {
        let mut run: Vec<String> = Vec::new();
        let mut after_colons = false;
        let mut colon = 0;
        for token in tokens {
            match token {
                proc_macro2::TokenTree::Ident(i) => {
                    let name = i.to_string();
                    if run.is_empty() || !after_colons {
                        if run.len() > 1 {
                            let done = std::mem::take(&mut run);
                            self.record(&done);
                        }
                        run.clear();
                        if ["crate", "super", "self"].contains(&name.as_str()) || self.children.contains(&name) {
                            run.push(name);
                        }
                    } else {
                        run.push(name);
                    }
                    after_colons = false;
                    colon = 0;
                }
                proc_macro2::TokenTree::Punct(p) if p.as_char() == ':' => {
                    colon += 1;
                    if colon == 2 {
                        after_colons = true;
                        colon = 0;
                    }
                }
                proc_macro2::TokenTree::Group(g) => {
                    if run.len() > 1 {
                        let done = std::mem::take(&mut run);
                        self.record(&done);
                    }
                    run.clear();
                    self.tokens(g.stream());
                    after_colons = false;
                    colon = 0;
                }
                _ => {
                    if run.len() > 1 {
                        let done = std::mem::take(&mut run);
                        self.record(&done);
                    }
                    run.clear();
                    after_colons = false;
                    colon = 0;
                }
            }
        }
        if run.len() > 1 {
            self.record(&run);
        }
    }
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if is_test_only(item_attrs(item)) {
            return;
        }
        if self.depth == 0 {
            let name = match item {
                syn::Item::Const(i) => Some(&i.ident),
                syn::Item::Enum(i) => Some(&i.ident),
                syn::Item::Fn(i) => Some(&i.sig.ident),
                syn::Item::Static(i) => Some(&i.ident),
                syn::Item::Struct(i) => Some(&i.ident),
                syn::Item::Trait(i) => Some(&i.ident),
                syn::Item::Type(i) => Some(&i.ident),
                syn::Item::Union(i) => Some(&i.ident),
                syn::Item::Macro(i) => i.ident.as_ref(),
                _ => None,
            };
            if let Some(name) = name {
                self.facts.defines.insert(name.to_string());
            }
        }
        match item {
            syn::Item::Use(u) => {
                let public = is_public(&u.vis);
                self.use_tree(&u.tree, &mut Vec::new(), public);
            }
            syn::Item::Mod(m) if m.content.is_some() => {
                // An inline module: walked as part of this file, its paths relative to it.
                let saved = std::mem::take(&mut self.children);
                self.here.push(m.ident.to_string());
                self.depth += 1;
                if let Some((_, items)) = &m.content {
                    for i in items {
                        if let syn::Item::Mod(c) = i {
                            self.children.insert(c.ident.to_string());
                        }
                    }
                    for i in items {
                        self.visit_item(i);
                    }
                }
                self.depth -= 1;
                self.here.pop();
                self.children = saved;
            }
            _ => syn::visit::visit_item(self, item),
        }
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs = match item {
            syn::ImplItem::Const(i) => &i.attrs,
            syn::ImplItem::Fn(i) => &i.attrs,
            syn::ImplItem::Type(i) => &i.attrs,
            syn::ImplItem::Macro(i) => &i.attrs,
            _ => return syn::visit::visit_impl_item(self, item),
        };
        if !is_test_only(attrs) {
            syn::visit::visit_impl_item(self, item);
        }
    }

    fn visit_stmt(&mut self, stmt: &'ast syn::Stmt) {
        if let syn::Stmt::Item(item) = stmt {
            // Items inside function bodies (`use` in a fn) are walked like any other.
            return self.visit_item(item);
        }
        syn::visit::visit_stmt(self, stmt);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 {
            self.record(&segments);
        } else if let Some(name) = segments.first() {
            self.facts.bare.insert(name.clone());
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

fn module_of(relative: &Path) -> ModPath {
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(".rs").to_owned();
    }
    if parts.first().is_some_and(|p| p == "bin") {
        // src/bin/dataverse-mi/main.rs is the binary's root; src/bin/dataverse-mi/x.rs its module x.
        parts.remove(0);
        if !parts.is_empty() {
            parts.remove(0);
        }
        let mut path = vec!["bin".to_owned()];
        path.extend(parts.into_iter().filter(|p| p != "mod" && p != "main"));
        return path;
    }
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("src/ is readable").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every file's facts, keyed by its module path.
fn read_crate() -> BTreeMap<ModPath, FileFacts> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = BTreeMap::new();
    for path in files {
        let relative = path.strip_prefix(&src).expect("under src");
        let here = module_of(relative);
        let text = std::fs::read_to_string(&path).expect("a source file is readable");
        let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        let mut facts = FileFacts { file: format!("src/{}", relative.display()), ..FileFacts::default() };
        let mut children = BTreeSet::new();
        for item in &parsed.items {
            if let syn::Item::Mod(m) = item
                && !is_test_only(&m.attrs)
            {
                children.insert(m.ident.to_string());
            }
        }
        facts.children = children.clone();
        let mut collector = Collector { here: here.clone(), facts: &mut facts, children, depth: 0 };
        for item in &parsed.items {
            collector.visit_item(item);
        }
        out.insert(here, facts);
    }
    out
}

/// The file that defines what `path` names: the longest prefix that is a file, then through its re-exports.
fn resolve(files: &BTreeMap<ModPath, FileFacts>, path: &[String], depth: usize) -> Option<ModPath> {
    let mut module: ModPath = path.to_vec();
    while !module.is_empty() && !files.contains_key(&module) {
        module.pop();
    }
    if !files.contains_key(&module) {
        return None;
    }
    let facts = &files[&module];
    let Some(name) = path.get(module.len()) else { return Some(module) };
    if depth < 16 && !facts.defines.contains(name) {
        if let Some(target) = facts.reexports.get(name) {
            let mut next = target.clone();
            next.extend(path[module.len() + 1..].iter().cloned());
            return resolve(files, &next, depth + 1).or(Some(module));
        }
        for glob in &facts.glob_reexports {
            let mut next = glob.clone();
            next.extend(path[module.len()..].iter().cloned());
            if let Some(found) = resolve(files, &next, depth + 1)
                && (&found != glob || files.get(&found).is_some_and(|f| f.defines.contains(name)))
            {
                return Some(found);
            }
        }
    }
    Some(module)
}

fn floor_of(module: &ModPath) -> Option<usize> {
    let top = module.first().map(String::as_str).unwrap_or("");
    FLOORS.iter().position(|floor| floor.contains(&top))
}

fn name(module: &ModPath) -> String {
    if module.is_empty() { "crate root".to_owned() } else { module.join("::") }
}

/// The edges between files: from -> to -> the first path written that made it.
fn edges(files: &BTreeMap<ModPath, FileFacts>) -> BTreeMap<ModPath, BTreeMap<ModPath, String>> {
    let mut out: BTreeMap<ModPath, BTreeMap<ModPath, String>> = BTreeMap::new();
    for (module, facts) in files {
        let entry = out.entry(module.clone()).or_default();
        for (path, written) in &facts.uses {
            let Some(target) = resolve(files, path, 0) else { continue };
            if &target != module {
                entry.entry(target).or_insert_with(|| written.clone());
            }
        }
        // A name the file does not define, used bare, comes through a glob import: an edge to the file that
        // defines it, so that `use super::*` hides no dependency.
        for name in facts.bare.iter().filter(|n| !facts.defines.contains(*n)) {
            for glob in &facts.glob_uses {
                let mut path = glob.clone();
                path.push(name.clone());
                let Some(target) = resolve(files, &path, 0) else { continue };
                let defines = files.get(&target).is_some_and(|f| f.defines.contains(name));
                if defines && &target != module {
                    let written = format!("{name} (through {}::*)", name_of_glob(glob));
                    entry.entry(target).or_insert(written);
                    break;
                }
            }
        }
    }
    out
}

fn name_of_glob(glob: &ModPath) -> String {
    if glob.is_empty() { "crate".to_owned() } else { glob.join("::") }
}

/// Strongly connected components with more than one file (Tarjan).
fn circles(graph: &BTreeMap<ModPath, BTreeMap<ModPath, String>>) -> Vec<Vec<ModPath>> {
    struct State<'g> {
        graph: &'g BTreeMap<ModPath, BTreeMap<ModPath, String>>,
        index: HashMap<&'g ModPath, usize>,
        low: HashMap<&'g ModPath, usize>,
        stack: Vec<&'g ModPath>,
        on_stack: BTreeSet<&'g ModPath>,
        next: usize,
        found: Vec<Vec<ModPath>>,
    }
    fn connect<'g>(s: &mut State<'g>, v: &'g ModPath) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flat_map(|m| m.keys()) {
            let Some((w, _)) = graph.get_key_value(w) else { continue };
            if !s.index.contains_key(w) {
                connect(s, w);
                let low = s.low[w].min(s.low[v]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.index[w].min(s.low[v]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v) {
            connect(&mut state, v);
        }
    }
    state.found
}

#[test]
fn no_import_circle_between_files() {
    let files = read_crate();
    let graph = edges(&files);
    if std::env::var_os("DUMP_IMPORTS").is_some() {
        // `DUMP_IMPORTS=1 cargo test --test architecture -- --nocapture`: every file's imports, for a maintainer.
        for (from, targets) in &graph {
            for (to, written) in targets {
                println!("{} -> {} ({written})", files[from].file, files[to].file);
            }
        }
    }
    let mut report = Vec::new();
    for circle in circles(&graph) {
        let members: BTreeSet<&ModPath> = circle.iter().collect();
        let mut lines = vec![format!("a circle between {} files:", circle.len())];
        for from in &circle {
            for (to, written) in &graph[from] {
                if members.contains(to) {
                    lines.push(format!("  {} uses {written} ({})", files[from].file, files[to].file));
                }
            }
        }
        report.push(lines.join("\n"));
    }
    assert!(report.is_empty(), "{}", report.join("\n\n"));
}

#[test]
fn no_import_runs_up_a_floor() {
    let files = read_crate();
    let graph = edges(&files);
    let mut report = Vec::new();
    for (from, targets) in &graph {
        let Some(from_floor) = floor_of(from) else {
            report.push(format!("{} ({}) is on no floor: give it one in FLOORS", files[from].file, name(from)));
            continue;
        };
        for (to, written) in targets {
            let Some(to_floor) = floor_of(to) else { continue };
            if to_floor > from_floor {
                report.push(format!(
                    "{} ({}) uses {written}, on a floor above it ({})",
                    files[from].file,
                    name(from),
                    files[to].file
                ));
            }
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

/// The check itself finds what it is meant to: a made-up circle and a made-up import up a floor.
#[test]
fn the_check_sees_a_circle_and_an_import_up_a_floor() {
    let mut graph: BTreeMap<ModPath, BTreeMap<ModPath, String>> = BTreeMap::new();
    let a: ModPath = vec!["cert".into()];
    let b: ModPath = vec!["subject".into()];
    let c: ModPath = vec!["guid".into()];
    graph.entry(a.clone()).or_default().insert(b.clone(), "crate::subject::x".into());
    graph.entry(b.clone()).or_default().insert(a.clone(), "crate::cert::y".into());
    graph.entry(c.clone()).or_default();
    assert_eq!(circles(&graph), vec![vec![a.clone(), b.clone()]]);
    assert!(floor_of(&a) < floor_of(&b), "cert is below subject: cert using subject runs up");

    // Re-exports are followed to the file that defines the item.
    let mut files = BTreeMap::new();
    let mut root = FileFacts::default();
    root.reexports.insert("Thing".into(), vec!["inner".into(), "Thing".into()]);
    files.insert(vec![], root);
    let mut inner = FileFacts::default();
    inner.defines.insert("Thing".into());
    files.insert(vec!["inner".to_owned()], inner);
    assert_eq!(resolve(&files, &["Thing".to_owned()], 0), Some(vec!["inner".to_owned()]));
}
