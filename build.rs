//! Compiles the shipped packs (`charts/`) into the binary: `$OUT_DIR/shipped_charts.rs` lists
//! every file under charts/ with its text (src/chart/shipped.rs).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let charts = root.join("charts");
    println!("cargo:rerun-if-changed=charts");
    let mut files = Vec::new();
    walk(&charts, &mut files);
    files.sort();
    let mut code =
        String::from("/// Path under charts/ → text.\npub static FILES: &[(&str, &str)] = &[\n");
    for file in files {
        let Ok(rel) = file.strip_prefix(&charts) else {
            continue;
        };
        // Text files only: a pack is HCL and templates.
        if std::fs::read_to_string(&file).is_err() {
            continue;
        }
        let rel = rel.to_string_lossy().replace('\\', "/");
        let _ = writeln!(
            code,
            "    ({rel:?}, include_str!({:?})),",
            file.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    if let Err(e) = std::fs::write(out.join("shipped_charts.rs"), code) {
        panic!("writing shipped_charts.rs: {e}");
    }
}
