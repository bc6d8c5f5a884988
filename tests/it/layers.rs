//! The layers of `src/` depend one way (see the layout in `src/lib.rs`): this test reads every
//! source file and fails, naming the file, line and import, when one reaches a layer above it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each layer and the layers it may use (itself included).
const ALLOWED: &[(&str, &[&str])] = &[
    ("protocol", &["protocol"]),
    ("domain", &["domain", "protocol"]),
    ("runtime", &["runtime", "protocol"]),
    ("kb", &["kb", "protocol"]),
    ("logging", &["logging"]),
    ("market", &["market", "domain"]),
    (
        "settings",
        &["settings", "domain", "kb", "runtime", "protocol", "logging"],
    ),
    (
        "agents",
        &[
            "agents", "settings", "market", "domain", "kb", "runtime", "protocol",
        ],
    ),
    (
        "campaign",
        &[
            "campaign", "agents", "settings", "market", "domain", "kb", "runtime", "protocol",
        ],
    ),
    (
        "api",
        &[
            "api", "campaign", "agents", "settings", "market", "domain", "kb", "runtime",
            "protocol", "logging",
        ],
    ),
];

const LAYERS: &[&str] = &[
    "protocol", "domain", "runtime", "kb", "logging", "market", "settings", "agents", "campaign",
    "api", "daemon",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The layers a line of Rust names through `crate::<layer>`, including grouped imports such as
/// `use crate::{agents, domain::x}`.
fn layers_named(line: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let group = rest
            .strip_prefix('{')
            .map(|g| g.split('}').next().unwrap_or(""));
        let names: Vec<&str> = match group {
            Some(group) => group.split(',').map(str::trim).collect(),
            None => vec![rest],
        };
        for name in names {
            let head: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if let Some(layer) = LAYERS.iter().find(|l| **l == head) {
                found.push(*layer);
            }
        }
    }
    found
}

#[test]
fn no_import_runs_back_up() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs"))
            .unwrap_or_default();
        let Some(may_use) = allowed.get(top) else {
            continue; // the daemon and the binary sit on top and may use anything
        };
        checked += 1;
        let text = std::fs::read_to_string(file).expect("readable source");
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for layer in layers_named(code) {
                if !may_use.contains(&layer) {
                    wrong.push(format!(
                        "src/{}:{}: `{top}` may not use `{layer}`: {}",
                        relative.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} files read under {}",
        src.display()
    );
    assert!(
        wrong.is_empty(),
        "imports that run back up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_imports_in_every_form() {
    assert_eq!(layers_named("use crate::agents::ledger;"), vec!["agents"]);
    assert_eq!(
        layers_named("use crate::{campaign::x, domain::y};"),
        vec!["campaign", "domain"]
    );
    assert_eq!(
        layers_named("let b = crate::api::metrics::Metrics::get();"),
        vec!["api"]
    );
    assert!(layers_named("use super::ledger;").is_empty());
}
