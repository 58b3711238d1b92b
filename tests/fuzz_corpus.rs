//! The fuzz targets' corpora and regressions (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`)
//! run on stable through the same functions the cargo-fuzz targets call (`fuzz/fuzz_targets/`):
//! an input that panics or runs longer than [`PER_INPUT`] fails the test, naming its file.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Generous for a debug build; a quadratic or runaway input blows through it.
const PER_INPUT: Duration = Duration::from_secs(10);

/// A fuzz target's entry point: arbitrary bytes in, nothing out.
type Target = fn(&[u8]);

/// Every fuzz target and the function it calls.
const TARGETS: &[(&str, Target)] = &[
    ("app_yaml", drover::fuzzing::app_yaml),
    ("drover_yaml", drover::fuzzing::drover_yaml),
    ("webhook", drover::fuzzing::webhook),
    ("jobspec", drover_jobspec::fuzzing::parse),
    ("gotmpl", drover_gotmpl::fuzzing::render),
];

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Run `function` on `data` in its own thread: a panic or a hang fails with the file's name.
fn run_bounded(function: Target, data: Vec<u8>, path: &Path) {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(path.display().to_string())
        .spawn(move || {
            function(&data);
            let _ = done.send(());
        })
        .unwrap_or_else(|e| panic!("spawning a thread: {e}"));
    match finished.recv_timeout(PER_INPUT) {
        Ok(()) => {
            let _ = worker.join();
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{} panicked (see above)", path.display())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "{} ran longer than {PER_INPUT:?} (left running)",
            path.display()
        ),
    }
}

#[test]
fn every_fuzz_input_runs_without_panic_in_bounded_time() {
    let mut total = 0;
    for (target, function) in TARGETS {
        let files = inputs(target);
        assert!(
            !files.is_empty(),
            "fuzz/corpus/{target}/ has no inputs: the target would run nothing"
        );
        for path in files {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            run_bounded(*function, data, &path);
            total += 1;
        }
    }
    assert!(total >= TARGETS.len());
}

/// Every target in `fuzz/fuzz_targets/` is run here, so a new one cannot be forgotten.
#[test]
fn every_cargo_fuzz_target_has_its_corpus_run_here() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            Some(path.file_stem()?.to_str()?.to_string())
        })
        .collect();
    names.sort();
    let mut known: Vec<String> = TARGETS.iter().map(|(t, _)| t.to_string()).collect();
    known.sort();
    assert_eq!(names, known);
}
