//! What `drover render` and `drover charts` print (src/main.rs only parses arguments).

use std::fmt::Write as _;
use std::path::Path;

use super::ChartError;
use super::pack::{PackFiles, load_pack};
use super::render::{RenderedPack, render_pack};
use super::shipped;
use super::variables::{GivenValue, GivenValues, parse_cli_var, parse_var_file};
use crate::desired::{Resource, ResourceSpec};
use crate::source::packs::PackFetcher;
use crate::source::{Revision, redact_url};

/// `drover render --pack DIR [--var k=v]… [--var-file F]…`: the pack rendered as
/// `nomad-pack render` names its outputs (`<pack>/<template without .tpl>`).
pub fn render_pack_dir(
    dir: &Path,
    vars: &[String],
    var_files: &[std::path::PathBuf],
) -> Result<RenderedPack, ChartError> {
    let display = dir.display().to_string();
    let display = display.trim_end_matches('/').to_string();
    let fallback = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "pack".into());
    let pack = load_pack(PackFiles::from_dir(dir, &display)?, &fallback)?;
    let mut given = GivenValues::default();
    for file in var_files {
        let name = file.display().to_string();
        let text =
            std::fs::read_to_string(file).map_err(|e| ChartError::new(&name, 0, e.to_string()))?;
        parse_var_file(&name, &text, &mut given)?;
    }
    for arg in vars {
        let (name, value) = parse_cli_var(arg).map_err(|m| ChartError::new("--var", 0, m))?;
        given.set(
            &name,
            GivenValue {
                value,
                file: format!("--var {name}"),
                line: 0,
            },
        );
    }
    render_pack(&pack, &given)
}

/// The rendered files as `nomad-pack render` prints them (`name:` then the text), outputs last.
pub fn print_rendered(rendered: &RenderedPack) -> String {
    let mut out = String::new();
    for file in &rendered.files {
        let _ = write!(out, "{}:\n\n{}\n\n", file.output_name, file.text.trim_end());
    }
    if let Some(outputs) = &rendered.outputs {
        let _ = write!(out, "outputs:\n\n{}\n", outputs.trim_end());
    }
    out
}

/// `--to-dir OUT`: write each file to `OUT/<output name>`; returns the paths written.
pub fn write_rendered(rendered: &RenderedPack, out: &Path) -> Result<Vec<String>, ChartError> {
    let mut written = Vec::new();
    for file in &rendered.files {
        let path = out.join(&file.output_name);
        let shown = path.display().to_string();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| ChartError::new(&shown, 0, e.to_string()))?;
        }
        std::fs::write(&path, &file.text).map_err(|e| ChartError::new(&shown, 0, e.to_string()))?;
        written.push(shown);
    }
    Ok(written)
}

fn describe(r: &Resource) -> Option<String> {
    match &r.spec {
        ResourceSpec::NomadJob(job) => Some(job.source.clone()),
        _ => None,
    }
}

/// `drover render <dir> [--app A]`: every app's jobs as drover will submit them (pack renders
/// included), each under a `# <app>: <resource> (from <file>)` header; the apps' errors, if any.
pub fn render_repo(dir: &Path, app: Option<&str>) -> Result<(String, usize), ChartError> {
    let shown = dir.display().to_string();
    let rev = Revision::from_dir(dir).map_err(|e| ChartError::new(&shown, 0, e.to_string()))?;
    // Packs from Git registries are read into memory, so their mirror need not outlive this.
    let mirrors = tempfile::tempdir().map_err(|e| ChartError::new(&shown, 0, e.to_string()))?;
    let rev = PackFetcher::new(mirrors.path()).attach(rev);
    let loaded = crate::desired::load(&rev);
    let mut out = String::new();
    for ((url, reference), fetched) in rev.pack_sources().iter() {
        if let Ok(fetched) = fetched {
            let commit = fetched.commit.get(..12).unwrap_or(&fetched.commit);
            let _ = writeln!(
                out,
                "# pack source {} {reference} = {commit}",
                redact_url(url)
            );
        }
    }
    let mut errors = 0;
    for d in &loaded.repo_errors {
        let _ = writeln!(out, "error: {d}");
        errors += 1;
    }
    let mut found = false;
    for a in &loaded.apps {
        if app.is_some_and(|name| name != a.name) {
            continue;
        }
        found = true;
        match &a.result {
            Ok(typed) => {
                for r in &typed.resources {
                    if let Some(text) = describe(r) {
                        let _ = writeln!(out, "# {}: {} (from {})", a.name, r.id, r.origin.file);
                        let _ = writeln!(out, "{}\n", text.trim_end());
                    }
                }
            }
            Err(diags) => {
                for d in diags {
                    let _ = writeln!(out, "error: {}: {d}", a.name);
                    errors += 1;
                }
            }
        }
    }
    if let Some(name) = app
        && !found
    {
        return Err(ChartError::new(
            &shown,
            0,
            format!("no app named \"{name}\""),
        ));
    }
    Ok((out, errors))
}

/// `drover charts [<dir>]`: the shipped packs and the repository's `charts/`, each with its
/// variables (description and default; required ones say so). A repo-local pack overrides a
/// shipped one of the same name.
pub fn list_charts(dir: Option<&Path>) -> Result<String, ChartError> {
    let mut packs: Vec<(String, Result<super::Pack, ChartError>)> = Vec::new();
    let mut local_names = Vec::new();
    if let Some(dir) = dir {
        let charts = dir.join("charts");
        if let Ok(entries) = std::fs::read_dir(&charts) {
            let mut dirs: Vec<_> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            dirs.sort();
            for p in dirs {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let display = format!("charts/{name}");
                let loaded = PackFiles::from_dir(&p, &display).and_then(|f| load_pack(f, &name));
                local_names.push(name.clone());
                packs.push((display, loaded));
            }
        }
    }
    for name in shipped::names() {
        if local_names.contains(&name) {
            continue;
        }
        if let Some(files) = shipped::pack_files(&name) {
            packs.push((files.dir.clone(), load_pack(files, &name)));
        }
    }
    let mut out = String::new();
    for (dir, pack) in packs {
        match pack {
            Ok(p) => {
                let _ = writeln!(out, "{} {} ({dir})", p.name, p.version);
                if !p.description.is_empty() {
                    let _ = writeln!(out, "  {}", p.description);
                }
                for v in &p.variables {
                    let default = match &v.default {
                        Some(d) => format!("default {d}"),
                        None => "required".to_string(),
                    };
                    let _ = writeln!(
                        out,
                        "  - {} ({}, {default}): {}",
                        v.name, v.ty, v.description
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(out, "{dir}: error: {e}");
            }
        }
    }
    Ok(out)
}
