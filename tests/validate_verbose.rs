//! `drover validate --verbose` lists what each app requires of Vault: its `vault_secret`s merged
//! per path with the secrets its job templates read, paths and key names only.

use std::path::Path;
use std::process::Command;

#[test]
fn verbose_lists_listed_and_template_vault_requirements_merged_per_path() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/brmartin/modules/overseerr/jobspec.nomad.hcl");
    let job = std::fs::read_to_string(&fixture).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let app = dir.path().join("apps/overseerr");
    std::fs::create_dir_all(&app).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        app.join("app.yaml"),
        "name: overseerr\nresources:\n  - nomad_job: { file: job.nomad.hcl }\n  - vault_secret: { mount: nomad, path: default/overseerr, keys: [MINIO_ACCESS_KEY, REGION] }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(app.join("job.nomad.hcl"), job).unwrap_or_else(|e| panic!("{e}"));
    let run = |verbose: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_drover"));
        command
            .arg("validate")
            .arg(dir.path())
            .env_remove("NOMAD_ADDR");
        if verbose {
            command.arg("--verbose");
        }
        let out = command.output().unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, text) = run(true);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "  vault secret nomad/default/overseerr: keys MINIO_ACCESS_KEY, MINIO_SECRET_KEY, REGION (required by apps/overseerr/app.yaml:4, apps/overseerr/job.nomad.hcl:87, apps/overseerr/job.nomad.hcl:128)"
        ),
        "{text}"
    );
    let (code, text) = run(false);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("vault secret"), "{text}");
}
