//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, nightly) and for
//! `tests/fuzz_corpus.rs` (stable), so both run the same code over the same inputs.
//!
//! Each function takes arbitrary bytes and must return without panicking, in bounded time and
//! memory; errors are expected and ignored. Not a stable API.

use std::collections::BTreeMap;

use crate::config::{FileSettings, Settings};
use crate::source::Revision;

/// `data` as the `apps/fuzz/app.yaml` of a one-app repository revision, loaded as `drover
/// validate` and the controller load a commit.
pub fn app_yaml(data: &[u8]) {
    let files = BTreeMap::from([("apps/fuzz/app.yaml".to_string(), data.to_vec())]);
    let revision = Revision::from_files("fuzz", files);
    let _ = crate::desired::load(&revision);
}

/// `data` as a `drover.yaml`: parsed, then resolved against an empty environment.
pub fn drover_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = FileSettings::parse(text, "drover.yaml") else {
        return;
    };
    // Resolving reads the secret files the settings name (`*_file`); the fuzzer must not read
    // the machine's files (`/dev/zero`), so only texts that cannot name one are resolved (a
    // backslash could spell `_file` with an escape).
    if !text.contains("_file") && !text.contains('\\') {
        let _ = Settings::from_file_settings(file, |_| None);
    }
}

/// `data` as a webhook request: the first line is the signature or token header's value, the
/// rest the body; run through every provider's authentication and the push payload's checks.
pub fn webhook(data: &[u8]) {
    crate::web::webhook::fuzz_request(data);
}
