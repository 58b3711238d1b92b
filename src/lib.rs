//! drover keeps a Nomad/Consul/Vault cluster and its S3 store equal to a Git repository.
//!
//! The data flows source → desired → live → plan → apply → health → report:
//! a [`source::Revision`] (a commit's tree) is loaded into [`desired::App`]s, compared against the
//! [`live::LiveStore`] by a pure [`plan`], executed by [`apply`], assessed by [`health`] and
//! published as an `AppStatus`. Start reading at `controller/reconcile.rs`. [`app_stack`]
//! assembles the store, clients, live cache and controller context once, for `drover serve`,
//! `drover plan` and `drover validate` alike.
//!
//! The embedded Nomad/Consul/Vault API server used by tests and `drover demo` is its own crate,
//! `drover_devstack` (`devstack/`): only the binary (`src/main.rs`, `src/demo.rs`) and the tests
//! depend on it; this library reaches it only over HTTP, through the same [`providers`] it uses
//! for a real cluster.

pub mod app_stack;
pub mod apply;
pub mod chart;
pub mod cluster_state;
pub mod config;
pub mod controller;
pub mod desired;
#[doc(hidden)]
pub mod fuzzing;
pub mod ha;
pub mod health;
pub mod import;
pub mod live;
pub mod notify;
pub mod plan;
pub mod providers;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod web;

#[cfg(test)]
mod boundary_tests {
    use std::path::{Path, PathBuf};

    /// Files of the binary, not of this library: they may start a devstack.
    const BINARY_FILES: &[&str] = &["main.rs", "demo.rs"];

    fn library_sources(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                library_sources(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }

    /// The part of a library file that is built into the library: none of a `tests.rs`, and the
    /// rest up to the first `#[cfg(test)]` (test modules sit at the end of a file). Unit tests may
    /// start a devstack; the library itself may not.
    fn non_test_code<'a>(path: &Path, text: &'a str) -> &'a str {
        if path.file_name().is_some_and(|name| name == "tests.rs") {
            return "";
        }
        text.split("#[cfg(test)]").next().unwrap_or(text)
    }

    /// The library talks to a devstack only over HTTP: it must not import the devstack crate,
    /// even though the package depends on it (for the binary and the tests).
    #[test]
    fn the_library_does_not_use_the_devstack_crate() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        library_sources(&src, &mut files);
        // A path or `use` of the crate, not a mention in prose.
        let import = regex::Regex::new(r"\bdrover_devstack\s*(::|as\b|;|,|\})")
            .unwrap_or_else(|e| panic!("pattern: {e}"));
        assert!(
            files.len() > 10,
            "found only {files:?} under {}",
            src.display()
        );
        let offenders: Vec<String> = files
            .iter()
            .filter(|path| {
                path.parent() != Some(src.as_path())
                    || !path
                        .file_name()
                        .is_some_and(|name| BINARY_FILES.iter().any(|bin| name == *bin))
            })
            .filter(|path| {
                let text = std::fs::read_to_string(path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                import.is_match(non_test_code(path, &text))
            })
            .map(|path| path.display().to_string())
            .collect();
        assert!(
            offenders.is_empty(),
            "library files import drover_devstack outside #[cfg(test)] code (the library reaches a \
             devstack over HTTP only; code that starts one belongs in the binary or the tests): \
             {offenders:?}"
        );
        let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
        assert!(
            BINARY_FILES
                .iter()
                .all(|bin| !lib.contains(&format!("mod {};", bin.trim_end_matches(".rs")))),
            "lib.rs declares a binary file as a library module"
        );
    }
}
