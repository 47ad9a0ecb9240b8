//! The documentation of the settings against the code: `.env.example` and the README tables
//! list exactly the variables the two services read (each service's `Settings::variables`,
//! read off its own settings code), with who reads each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `NAME=` lines (commented lines are not settings).
fn env_example_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, _)| name.trim())
        .filter(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
        .map(str::to_owned)
        .collect()
}

/// The rows of the first table under `heading`: the backticked names of the first cell, with
/// the second cell.
fn table_rows(markdown: &str, heading: &str) -> Vec<(Vec<String>, String)> {
    let section = markdown
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no section `{heading}`"))
        .1;
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let names = cells[1]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            (names, cells.get(2).copied().unwrap_or_default().to_owned())
        })
        .collect()
}

fn who_reads() -> BTreeMap<String, &'static str> {
    let gateway = frontend_gateway::Settings::variables();
    let backend = backend_api::Settings::variables();
    gateway
        .union(&backend)
        .map(|name| {
            let who = match (gateway.contains(name), backend.contains(name)) {
                (true, true) => "both",
                (true, false) => "gateway",
                _ => "backend",
            };
            (name.clone(), who)
        })
        .collect()
}

#[test]
fn env_example_lists_exactly_the_variables_the_services_read() {
    let code: BTreeSet<String> = who_reads().into_keys().collect();
    let documented = env_example_names(&read(".env.example"));
    let missing: Vec<_> = code.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&code).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        ".env.example misses {missing:?} and lists {unknown:?}, which no service reads"
    );
}

#[test]
fn the_readme_configuration_table_lists_every_variable_once_with_who_reads_it() {
    let code = who_reads();
    let mut documented = BTreeMap::new();
    for (names, used_by) in table_rows(&read("README.md"), "## Configuration") {
        for name in names {
            assert!(
                documented.insert(name.clone(), used_by.clone()).is_none(),
                "README.md lists {name} twice"
            );
        }
    }
    let code_names: BTreeSet<_> = code.keys().collect();
    let readme_names: BTreeSet<_> = documented.keys().collect();
    assert_eq!(
        readme_names, code_names,
        "README.md's configuration table against the code"
    );
    for (name, who) in &code {
        assert_eq!(
            documented[name], *who,
            "README.md says {name} is read by the wrong service"
        );
    }
}

#[test]
fn the_gateway_readme_documents_every_setting_only_the_gateway_reads() {
    let code = who_reads();
    let rows = table_rows(
        &read("crates/frontend-gateway/README.md"),
        "## Configuration",
    );
    let documented: BTreeSet<String> = rows.into_iter().flat_map(|(names, _)| names).collect();
    for name in &documented {
        assert!(
            matches!(code.get(name), Some(&"gateway" | &"both")),
            "the gateway README documents {name}, which the gateway does not read"
        );
    }
    for (name, who) in &code {
        if *who == "gateway" {
            assert!(
                documented.contains(name),
                "the gateway README misses {name}"
            );
        }
    }
}
