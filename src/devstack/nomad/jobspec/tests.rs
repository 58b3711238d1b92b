//! Parser tests against the real jobspecs in `shared/examples/brmartin`.

use super::*;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/examples/brmartin");

fn read(rel: &str) -> String {
    let p = format!("{EXAMPLES}/{rel}");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("example {p} must exist: {e}"))
}

/// Every real jobspec (modules and the seaweedfs deploy files), minus volume specs.
pub(crate) fn example_jobspecs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let modules =
        std::fs::read_dir(format!("{EXAMPLES}/modules")).expect("examples/modules must exist");
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
        out.push((rel.clone(), read(&rel)));
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
pub(crate) fn vars_for(hcl: &str) -> &'static str {
    if hcl.contains("variable \"elastic_version\"") {
        "elastic_version = \"8.15.0\"\n"
    } else {
        ""
    }
}

#[test]
fn every_example_jobspec_parses() {
    let mut failures = Vec::new();
    for (path, hcl) in example_jobspecs() {
        match parse(&hcl, vars_for(&hcl)) {
            Ok(j) => {
                assert!(j["ID"].is_string(), "{path}");
                assert!(
                    j["TaskGroups"].as_array().is_some_and(|g| !g.is_empty()),
                    "{path}"
                );
            }
            Err(e) => failures.push(format!("{path}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore]
fn dump_overseerr() {
    let j = parse(&read("modules/overseerr/jobspec.nomad.hcl"), "").unwrap();
    println!("{}", serde_json::to_string_pretty(&j).unwrap());
}
