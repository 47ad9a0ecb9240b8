//! The workspace's layout rules, read from the source of every library crate: no two modules
//! depend on each other, directly or in a loop (a module depends on the modules it declares and
//! on those it names through `crate::` or `super::`), and a crate of several modules has a
//! `lib.rs` that only declares modules and re-exports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every crate of the workspace: its name and its `src/` folder.
fn crates() -> Vec<(String, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut crates: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("src/lib.rs").exists())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, path.join("src"))
        })
        .collect();
    crates.sort();
    crates
}

/// Every module of the library in `src`: its path (`""` for the crate root, `routes::me`...)
/// and source.
fn modules(src: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    files
        .into_iter()
        .filter(|f| !f.starts_with(src.join("bin")) && !f.ends_with("main.rs"))
        .map(|file| {
            let rel = file.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            (parts.join("::"), std::fs::read_to_string(&file).unwrap())
        })
        .collect()
}

/// `source` without its line comments and its unit tests (an inline `mod tests`, where
/// `super` is the file's own module), enough to find the paths it names.
fn code(source: &str) -> String {
    let source = source.split("#[cfg(test)]").next().unwrap_or_default();
    source
        .lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> Option<&str> {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// The module paths `code` names after `prefix` (`crate::` or `super::`), with group imports
/// (`crate::{a, b::c}`) split.
fn named_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    fn path_at(s: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = s.trim_start();
        while let Some(id) = ident_at(rest) {
            out.push(id.to_owned());
            rest = &rest[id.len()..];
            match rest.strip_prefix("::") {
                Some(r) => rest = r,
                None => break,
            }
        }
        out
    }
    let mut found = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        if code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
        {
            continue;
        }
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(group.split(',').map(path_at));
        } else {
            found.push(path_at(rest));
        }
    }
    found
}

/// What each module depends on.
fn dependencies(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    // The longest module that is a prefix of `path`.
    let resolve = |path: &[String]| -> String {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].join("::"))
            .find(|m| modules.contains_key(m))
            .unwrap_or_default()
    };
    let mut deps = BTreeMap::new();
    for (module, source) in modules {
        let code = code(source);
        let here: Vec<String> = if module.is_empty() {
            Vec::new()
        } else {
            module.split("::").map(str::to_owned).collect()
        };
        let mut to = BTreeSet::new();
        for path in named_after(&code, "crate::") {
            to.insert(resolve(&path));
        }
        for path in named_after(&code, "super::") {
            let parent = &here[..here.len().saturating_sub(1)];
            to.insert(resolve(&[parent, &path].concat()));
        }
        // Declared submodules.
        for line in code.lines() {
            let line = line.trim();
            let Some(decl) = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("mod "))
            else {
                continue;
            };
            if let Some(name) = ident_at(decl)
                && decl[name.len()..].trim_start().starts_with(';')
            {
                to.insert([here.as_slice(), &[name.to_owned()]].concat().join("::"));
            }
        }
        to.remove(module);
        deps.insert(module.clone(), to);
    }
    deps
}

#[test]
fn lib_rs_only_declares_modules_and_re_exports() {
    for (name, src) in crates() {
        let modules = modules(&src);
        if modules.len() == 1 {
            continue;
        }
        let lib = code(&modules[""]);
        for line in lib.lines().map(str::trim).filter(|l| !l.is_empty()) {
            assert!(
                ["pub mod ", "mod ", "pub use "]
                    .iter()
                    .any(|start| line.starts_with(start)),
                "{name}/src/lib.rs: {line}"
            );
        }
    }
}

#[test]
fn no_two_modules_depend_on_each_other_directly_or_in_a_loop() {
    let crates = crates();
    let names: Vec<&str> = crates.iter().map(|(name, _)| name.as_str()).collect();
    assert!(
        names.contains(&"frontend-gateway") && names.contains(&"backend-api"),
        "{names:?}"
    );
    for (name, src) in &crates {
        no_loop(name, &dependencies(&modules(src)));
    }
    // The checker sees what it must: the gateway's proxy depends on the session wing, the
    // backend's routes on auth, and each startup on what it starts.
    let deps_of = |krate: &str| {
        let (_, src) = crates.iter().find(|(name, _)| name == krate).unwrap();
        dependencies(&modules(src))
    };
    let gateway = deps_of("frontend-gateway");
    assert!(gateway["proxy::handler"].contains("session"), "{gateway:?}");
    assert!(gateway["startup"].contains("identity"), "{gateway:?}");
    let backend = deps_of("backend-api");
    assert!(
        backend["routes::workspaces"].contains("auth"),
        "{backend:?}"
    );
    assert!(backend["startup"].contains("routes"), "{backend:?}");
}

/// Panics with the loop when modules of `krate` depend on each other.
fn no_loop(krate: &str, deps: &BTreeMap<String, BTreeSet<String>>) {
    // Depth-first search for a cycle, reporting the loop.
    fn visit(
        module: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        krate: &str,
    ) {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_owned());
            let names: Vec<&str> = cycle
                .iter()
                .map(|m| if m.is_empty() { "crate" } else { m.as_str() })
                .collect();
            panic!(
                "{krate}: modules depend on each other: {}",
                names.join(" -> ")
            );
        }
        if done.contains(module) {
            return;
        }
        path.push(module.to_owned());
        for next in deps.get(module).into_iter().flatten() {
            visit(next, deps, path, done, krate);
        }
        path.pop();
        done.insert(module.to_owned());
    }
    let mut done = BTreeSet::new();
    for module in deps.keys() {
        visit(module, deps, &mut Vec::new(), &mut done, krate);
    }
}

#[test]
fn the_cycle_check_sees_a_child_naming_its_parent() {
    let modules: BTreeMap<String, String> = [
        ("".to_owned(), "pub mod a;".to_owned()),
        ("a".to_owned(), "pub mod b;\nuse crate::c;".to_owned()),
        ("a::b".to_owned(), "use super::X;".to_owned()),
        ("c".to_owned(), "use crate::{a::b::Y, d};".to_owned()),
        ("d".to_owned(), String::new()),
    ]
    .into();
    let deps = dependencies(&modules);
    assert_eq!(deps["a::b"], BTreeSet::from(["a".to_owned()]));
    assert_eq!(
        deps["a"],
        BTreeSet::from(["a::b".to_owned(), "c".to_owned()])
    );
    assert_eq!(
        deps["c"],
        BTreeSet::from(["a::b".to_owned(), "d".to_owned()])
    );
}
