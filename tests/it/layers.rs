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

/// The layers `code` names through `crate::<layer>`, with the byte offset of each, including
/// grouped imports over several lines such as `use crate::{\n    agents::x,\n    domain::y,\n};`
/// (only the group's own items count, not those of groups nested in it).
fn layers_named(code: &str) -> Vec<(usize, &'static str)> {
    let head = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let layer = |name: &str| LAYERS.iter().find(|l| **l == name).copied();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at + "crate::".len();
        from = start;
        let rest = &code[start..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's items at depth 1, split on the commas between them.
            let mut depth = 1;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        if let Some(l) = layer(&head(&group[item_start..i])) {
                            found.push((start, l));
                        }
                        item_start = i + 1;
                        if c == '}' {
                            break;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
        } else if let Some(l) = layer(&head(rest)) {
            found.push((start, l));
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
        // Comments say what they like; only code counts.
        let code: String = text
            .lines()
            .map(|line| line.split("//").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        for (at, layer) in layers_named(&code) {
            if !may_use.contains(&layer) {
                let number = code[..at].matches('\n').count() + 1;
                let line = code.lines().nth(number - 1).unwrap_or_default();
                wrong.push(format!(
                    "src/{}:{number}: `{top}` may not use `{layer}`: {}",
                    relative.display(),
                    line.trim()
                ));
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
    let names =
        |code: &str| -> Vec<&str> { layers_named(code).into_iter().map(|(_, l)| l).collect() };
    assert_eq!(names("use crate::agents::ledger;"), vec!["agents"]);
    assert_eq!(
        names("use crate::{campaign::x, domain::y};"),
        vec!["campaign", "domain"]
    );
    assert_eq!(
        names("use crate::{\n    api::x,\n    domain::{campaign::Goal, kb},\n    market,\n};"),
        vec!["api", "domain", "market"],
        "a group over several lines, without the items of a nested group"
    );
    assert_eq!(
        names("let b = crate::api::metrics::Metrics::get();"),
        vec!["api"]
    );
    assert!(names("use super::ledger;").is_empty());
}
