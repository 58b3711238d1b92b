//! The user's real jobspecs as test fixtures (`test-support` feature, also used by the
//! devstack's tests): every one of them when `../shared/examples/brmartin` is present beside the
//! workspace, none otherwise.

/// The user's whole repository beside the workspace (or where `DROVER_SHARED_EXAMPLES` says), if
/// present: a clone of the project alone skips the tests that go over all of it.
pub fn shared_examples() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("DROVER_SHARED_EXAMPLES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/examples/brmartin")
        });
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!(
            "note: {} is absent; skipping the checks over every example jobspec",
            path.display()
        );
        None
    }
}

/// Every real jobspec (modules and the seaweedfs deploy files), minus volume specs; none when
/// the shared examples are absent.
pub fn example_jobspecs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(examples) = shared_examples() else {
        return out;
    };
    let modules = std::fs::read_dir(examples.join("modules")).expect("examples/modules must exist");
    for m in modules {
        let m = m.unwrap().path();
        for f in std::fs::read_dir(&m).unwrap() {
            let f = f.unwrap().path();
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".hcl") && !name.starts_with("volume-") {
                out.push((
                    f.display().to_string(),
                    std::fs::read_to_string(&f).unwrap(),
                ));
            }
        }
    }
    for name in [
        "example-seaweedfs-app.hcl",
        "seaweedfs-csi.hcl",
        "seaweedfs.hcl",
    ] {
        let rel = format!("drivers/seaweedfs-csi-driver/deploy/nomad/{name}");
        let text = std::fs::read_to_string(examples.join(&rel)).expect("example must exist");
        out.push((rel, text));
    }
    out.sort();
    assert!(
        out.len() >= 30,
        "expected the brmartin jobspecs, found {}",
        out.len()
    );
    out
}

/// Var-file values the Terraform modules pass for declared variables without defaults.
pub fn vars_for(hcl: &str) -> &'static str {
    if hcl.contains("variable \"elastic_version\"") {
        "elastic_version = \"8.15.0\"\n"
    } else {
        ""
    }
}
