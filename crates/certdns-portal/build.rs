//! Embeds the customer docs (`docs/**/*.md` at the repository's root) into the
//! portal, so the binary serves them from any directory: writes
//! `$OUT_DIR/docs_files.rs`, a list of (path under docs/, contents) pairs.

use std::path::{Path, PathBuf};

fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            markdown_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "md") {
            found.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let docs = manifest.join("../../docs").canonicalize().expect("the docs/ folder beside crates/");
    println!("cargo:rerun-if-changed={}", docs.display());
    let mut files = Vec::new();
    markdown_files(&docs, &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for file in &files {
        // A new file in a sub-folder changes that folder, not docs/ itself.
        if let Some(parent) = file.parent() {
            println!("cargo:rerun-if-changed={}", parent.display());
        }
        println!("cargo:rerun-if-changed={}", file.display());
        let relative = file.strip_prefix(&docs).expect("under docs/").to_string_lossy().replace('\\', "/");
        out.push_str(&format!("    ({relative:?}, include_str!({:?})),\n", file.display().to_string()));
    }
    out.push_str("]\n");
    let target = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("docs_files.rs");
    std::fs::write(target, out).expect("write docs_files.rs");
}
