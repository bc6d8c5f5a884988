//! Embeds the shipped agent definitions, example campaigns and tenant guidelines in the binary, so
//! that `campaignd run` works on a machine with no files. The lists are generated from the folders:
//! adding `agents/<name>.toml` (or a campaign, or a tenant) needs no change to any code.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const FOLDERS: [(&str, &str); 3] = [
    ("AGENTS", "agents"),
    ("CAMPAIGNS", "config/campaigns"),
    ("TENANTS", "config/tenants"),
];

fn main() {
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut code = String::new();
    for (constant, folder) in FOLDERS {
        let dir = root.join(folder);
        println!("cargo:rerun-if-changed={}", dir.display());
        let _ = writeln!(
            code,
            "/// Every `{folder}/*.toml` of the source tree: (file stem, text), sorted by stem."
        );
        let _ = writeln!(code, "pub const {constant}: &[(&str, &str)] = &[");
        for (stem, path) in toml_files(&dir) {
            let _ = writeln!(
                code,
                "    ({stem:?}, include_str!({:?})),",
                path.display().to_string()
            );
        }
        let _ = writeln!(code, "];");
    }
    std::fs::write(Path::new(&out_dir).join("embedded.rs"), code)
        .expect("write the embedded file list");
}

fn toml_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .filter_map(|path| Some((path.file_stem()?.to_str()?.to_owned(), path)))
        .collect();
    files.sort();
    files
}
