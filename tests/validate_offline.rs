//! `drover validate` (and `drover plan` without a cluster) refuse what Nomad's jobspec parser
//! refuses, offline, pointing at the user's file, line and column.

use std::path::Path;
use std::process::{Command, Output};

const APP: &str =
    "name: web\nresources:\n  - nomad_job: { file: web.nomad.hcl, variables: { tag: \"1.27\" } }\n";

/// Line 9 holds the image, line 11 the memory.
const JOB: &str = r#"variable "tag" {
  type = string
}

job "web" {
  group "web" {
    task "web" {
      driver = "docker"
      config { image = "nginx:${var.tag}" }
      resources {
        memory = 128
      }
    }
  }
}
"#;

/// A repository with one app, `web`, whose jobspec is `job`.
fn repo(job: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let app = dir.path().join("apps/web");
    std::fs::create_dir_all(&app).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(app.join("app.yaml"), APP).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(app.join("web.nomad.hcl"), job).unwrap_or_else(|e| panic!("{e}"));
    dir
}

/// `drover <command> <dir>` with no cluster in its environment.
fn drover(command: &str, dir: &Path) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg(command)
        .arg(dir)
        .env_remove("NOMAD_ADDR")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

fn assert_refused(job: &str, expected: &str) {
    let dir = repo(job);
    let (out, text) = drover("validate", dir.path());
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("error web:"), "names the app: {text}");
    assert!(text.contains(expected), "expected {expected:?} in: {text}");
}

#[test]
fn a_valid_stack_with_its_variables_exits_zero() {
    let dir = repo(JOB);
    let (out, text) = drover("validate", dir.path());
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("ok    web"), "{text}");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state");
    let (out, text) = drover("validate", &example);
    assert_eq!(out.status.code(), Some(0), "the demo's example: {text}");
}

#[test]
fn an_undeclared_variable_is_refused_with_its_position() {
    assert_refused(
        &JOB.replace("var.tag", "var.version"),
        "apps/web/web.nomad.hcl:9:36: Unsupported attribute; This object does not have an attribute named \"version\".",
    );
}

#[test]
fn a_memory_that_is_not_a_number_is_refused_with_its_position() {
    assert_refused(
        &JOB.replace("memory = 128", "memory = \"lots\""),
        "apps/web/web.nomad.hcl:11:19: Unsuitable value type; Unsuitable value: a number is required",
    );
}

#[test]
fn an_hcl_syntax_error_is_refused_with_its_position() {
    assert_refused(
        &JOB.replace("memory = 128", "memory = "),
        "apps/web/web.nomad.hcl:11:18: HCL syntax error",
    );
}

#[test]
fn plan_without_a_cluster_checks_offline_first() {
    let dir = repo(&JOB.replace("memory = 128", "memory = \"lots\""));
    let (out, text) = drover("plan", dir.path());
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("apps/web/web.nomad.hcl:11:19: Unsuitable value type"),
        "{text}"
    );
    assert!(
        !text.contains("reading live state from Nomad"),
        "stops before calling a cluster: {text}"
    );
}

/// Nomad 2.0.5 accepts the same key twice inside a driver `config` map block (api-facts §7);
/// so does `validate`. The jobspec's own attribute blocks still refuse it.
#[test]
fn a_key_twice_in_a_driver_config_block_validates() {
    let labels = JOB.replace(
        "config { image = \"nginx:${var.tag}\" }",
        "config {\n        image = \"nginx:${var.tag}\"\n        labels {\n          a = \"x\"\n          a = \"x\"\n        }\n      }",
    );
    let dir = repo(&labels);
    let (out, text) = drover("validate", dir.path());
    assert_eq!(out.status.code(), Some(0), "{text}");
    let meta = JOB.replace(
        "driver = \"docker\"",
        "driver = \"docker\"\n      meta {\n        a = \"x\"\n        a = \"y\"\n      }",
    );
    assert_refused(&meta, "apps/web/web.nomad.hcl:11:9: Attribute redefined;");
}
