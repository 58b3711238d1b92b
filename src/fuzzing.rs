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

/// `data` as a pack's chart values: a `variables.hcl`, then a line `%%`, then a var file whose
/// format the first byte picks (`j` JSON, `y` YAML, anything else HCL): declarations parsed,
/// values read, merged and type-checked as a `pack:` app's are.
pub fn pack_values(data: &[u8]) {
    let _ = resolve_pack_values(data);
}

/// [`pack_values`]' work: `None` when the input stops before the merge (not UTF-8, a declaration
/// or value file that does not parse), else the merge's result.
fn resolve_pack_values(
    data: &[u8],
) -> Option<Result<crate::chart::variables::Resolved, crate::chart::ChartError>> {
    use crate::chart::variables::{GivenValues, parse_var_file, parse_variables, resolve};
    let (&format, rest) = data.split_first()?;
    let text = std::str::from_utf8(rest).ok()?;
    let (declarations, values) = text.split_once("\n%%\n").unwrap_or((text, ""));
    let decls = parse_variables("variables.hcl", declarations).ok()?;
    let values_file = match format {
        b'j' => "values.json",
        b'y' => "values.yaml",
        _ => "values.hcl",
    };
    let mut given = GivenValues::default();
    parse_var_file(values_file, values, &mut given).ok()?;
    Some(resolve("fuzz", &decls, &[], &given))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/pack_values")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The seeds from desired-state reach the merge and pass it in all three formats, so the
    /// fuzzer starts from inputs that exercise the whole path, not the parsers' first error.
    #[test]
    fn pack_value_seeds_reach_the_merge() {
        for app in ["overseerr", "jellyfin", "traefik"] {
            for format in ["yaml", "json", "hcl"] {
                let name = format!("{app}-{format}");
                match resolve_pack_values(&seed(&name)) {
                    Some(Ok((values, _))) => assert!(!values.is_empty(), "{name}"),
                    other => panic!("{name}: {other:?}"),
                }
            }
        }
        let mismatch = resolve_pack_values(&seed("hostile-type-mismatch-hcl"));
        assert!(matches!(mismatch, Some(Err(_))), "{mismatch:?}");
    }
}
