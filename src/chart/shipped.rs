//! The packs shipped with drover: the repository's `charts/` compiled into the binary (build.rs),
//! so `pack: { name: litestream_service }` works without the pack in the user's repository.

use std::collections::BTreeMap;

use super::pack::PackFiles;

mod files {
    include!(concat!(env!("OUT_DIR"), "/shipped_charts.rs"));
}

/// The prefix origins and errors use for a shipped pack's files (`drover:charts/<name>/…`).
pub const SHIPPED_PREFIX: &str = "drover:charts";

/// The names of the shipped packs, sorted.
pub fn names() -> Vec<String> {
    let mut out: Vec<String> = files::FILES
        .iter()
        .filter_map(|(path, _)| path.strip_suffix("/metadata.hcl"))
        .filter(|name| !name.contains('/'))
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

/// The files of the shipped pack `name`, if drover ships one.
pub fn pack_files(name: &str) -> Option<PackFiles> {
    let prefix = format!("{name}/");
    let files: BTreeMap<String, String> = files::FILES
        .iter()
        .filter_map(|(path, text)| {
            path.strip_prefix(&prefix)
                .map(|rel| (rel.to_string(), (*text).to_string()))
        })
        .collect();
    files.contains_key("metadata.hcl").then(|| PackFiles {
        dir: format!("{SHIPPED_PREFIX}/{name}"),
        files,
    })
}
