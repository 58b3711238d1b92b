//! Loading a desired-state repository: app.yaml schema, native HashiCorp files, per-app errors.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drover::desired::{
    self, App, Diagnostic, HookPhase, JobFormat, Loaded, Probe, ProbeCheck, ResourceId,
    ResourceKind, ResourceSpec, VolumeMode,
};
use drover::source::Revision;

/// The project's copy of the few files of the user's repository these tests read.
const BRMARTIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/brmartin");

fn brmartin(rel: &str) -> String {
    let path = Path::new(BRMARTIN).join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing fixture {}: {e}", path.display()))
}

/// The user's whole repository beside the project (or where `DROVER_SHARED_EXAMPLES` says), if
/// present: a clone of the project alone skips the tests that go over all of it.
fn shared_examples() -> Option<PathBuf> {
    let path = std::env::var_os("DROVER_SHARED_EXAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/examples/brmartin")
        });
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!(
            "note: {} is absent; skipping the test over every example jobspec",
            path.display()
        );
        None
    }
}

fn rev(files: &[(&str, &str)]) -> Revision {
    Revision::from_files(
        "test",
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
            .collect(),
    )
}

/// Write files into a temporary directory and load it the way `drover validate` does.
fn load_dir(files: &[(&str, &str)]) -> (tempfile::TempDir, Loaded) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }
    let loaded = common::load_dir(dir.path());
    (dir, loaded)
}

fn ok<'a>(loaded: &'a Loaded, name: &str) -> &'a App {
    let app = loaded
        .app(name)
        .unwrap_or_else(|| panic!("no app {name}: {:?}", loaded.apps));
    match &app.result {
        Ok(a) => a,
        Err(d) => panic!("{name} failed:\n{}", common::render_diagnostics(d)),
    }
}

fn errs<'a>(loaded: &'a Loaded, name: &str) -> &'a [Diagnostic] {
    let app = loaded.app(name).unwrap_or_else(|| panic!("no app {name}"));
    match &app.result {
        Ok(_) => panic!("{name} loaded but should have failed"),
        Err(d) => d,
    }
}

const MINIMAL_JOB: &str =
    "job \"web\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"docker\"\n    }\n  }\n}\n";

#[test]
fn good_app_loads_with_every_field() {
    let job = "variable \"image_tag\" {\n  type = string\n}\nvariable \"replicas\" {\n  default = 1\n}\nvariable \"extra\" {\n  default = {}\n}\n\njob \"web\" {\n  group \"g\" {\n    volume \"data\" {\n      type   = \"csi\"\n      source = \"web_data\"\n    }\n    task \"t\" {\n      driver = \"docker\"\n      config { image = \"nginx:${var.image_tag}\" }\n      template {\n        data = \"{{ with secret \\\"kv/data/web/creds\\\" }}{{ .Data.data.user }}{{ end }}\"\n        destination = \"local/x\"\n      }\n    }\n  }\n}\n";
    let app_yaml = r#"
name: web
namespace: apps
depends_on: [db]
sync: { auto: false, self_heal: false, prune: true }
resources:
  - nomad_job:
      file: web.nomad.hcl
      var_files: [web.vars.hcl]
      variables: { image_tag: "1.2", extra: { a: [1, true, "q\"uote"] } }
  - csi_volume:
      id: web_data
      name: Web data
      plugin_id: glusterfs
      capacity_min: 100MiB
      capacity_max: 10GB
      capabilities:
        - { access_mode: single-node-writer, attachment_mode: file-system }
        - { access_mode: multi-node-reader-only, attachment_mode: file-system }
      mount_options: { fs_type: ext4, mount_flags: [noatime] }
      parameters: { server: 10.0.0.1, port: 24007 }
      secrets: { password: hunter2 }
      context: { share: web }
      prevent_destroy: true
  - csi_volume: { id: imported, plugin_id: nfs, external_id: "nfs://x/y", capabilities: [{ access_mode: multi-node-multi-writer, attachment_mode: file-system }] }
  - bucket: { name: web-backups, versioning: true, tags: { team: media }, prevent_destroy: true, lifecycle: { rules: [{ id: expire, days: 30 }] }, policy: '{"Version": "2012-10-17", "Statement": []}' }
  - vault_secret: { mount: kv, path: web/creds, keys: [user, password] }
  - consul_config_entry: { file: defaults.hcl }
  - consul_config_entry: { kind: service-intentions, name: web, sources: [{ name: other, action: allow }] }
probes:
  - { http: { url: "https://web.example.org/health" } }
  - { http: { url: "http://web.example.org/", expect_status: 301, name: redirect, interval: 1m, timeout: 3s } }
  - { tls: { host: web.example.org, port: 8443, warn_days: 14 } }
  - { backup_freshness: { bucket: web-backups, prefix: db/, max_age: 5m } }
hooks:
  - { pre_sync: { nomad_job: { file: seed.nomad.hcl }, once: true } }
  - { post_sync: { nomad_job: { file: seed.nomad.hcl } } }
  - { sync_fail: { nomad_job: { file: seed.nomad.hcl }, timeout: 90s } }
"#;
    let (_dir, loaded) = load_dir(&[
        ("apps/web/app.yaml", app_yaml),
        ("apps/web/web.nomad.hcl", job),
        (
            "apps/web/web.vars.hcl",
            "image_tag = \"1.0\"\nreplicas = 3\n",
        ),
        (
            "apps/web/defaults.hcl",
            "kind = \"service-defaults\"\nname = \"web\"\nprotocol = \"http\"\n",
        ),
        (
            "apps/web/seed.nomad.hcl",
            "job \"seed\" {\n  type = \"batch\"\n  group \"g\" {\n    task \"t\" {\n      driver = \"exec\"\n    }\n  }\n}\n",
        ),
        ("apps/db/app.yaml", "namespace: apps\n"),
    ]);
    assert!(loaded.repo_errors.is_empty(), "{:?}", loaded.repo_errors);
    let app = ok(&loaded, "web");
    assert_eq!(app.name, "web");
    assert_eq!(app.dir, "apps/web");
    assert_eq!(app.namespace, "apps");
    assert_eq!(app.depends_on, vec!["db"]);
    assert_eq!(
        (app.sync.auto, app.sync.self_heal, app.sync.prune),
        (false, false, true)
    );
    assert!(app.pack.is_none(), "no pack: only the listed resources");
    assert_eq!(app.resources.len(), 7);

    let job = &app.resources[0];
    assert_eq!(job.id.to_string(), "nomad_job/apps/web");
    assert_eq!(job.origin.file, "apps/web/web.nomad.hcl");
    assert_eq!(job.origin.line, 11);
    let ResourceSpec::NomadJob(spec) = &job.spec else {
        panic!()
    };
    assert_eq!(spec.format, JobFormat::Hcl2);
    assert_eq!(spec.job_id, "web");
    assert!(spec.source.contains("${var.image_tag}"), "kept as written");
    // Var file first, then app.yaml wins; values are HCL literals.
    assert_eq!(
        spec.variables,
        "image_tag = \"1.2\"\nreplicas = 3\nextra = { \"a\" = [1, true, \"q\\\"uote\"] }\n"
    );
    let parsed: hcl::Value = hcl::from_str(&spec.variables).unwrap();
    assert_eq!(
        serde_json::to_value(parsed).unwrap()["extra"]["a"][2],
        "q\"uote"
    );

    let ResourceSpec::CsiVolume(vol) = &app.resources[1].spec else {
        panic!()
    };
    assert_eq!(app.resources[1].id.to_string(), "csi_volume/apps/web_data");
    assert_eq!(vol.name, "Web data");
    assert_eq!(vol.mode, VolumeMode::Create);
    assert_eq!(vol.capacity_min, Some(100 * 1024 * 1024));
    assert_eq!(vol.capacity_max, Some(10_000_000_000));
    assert_eq!(vol.capabilities.len(), 2);
    assert_eq!(
        vol.mount_options.as_ref().unwrap().mount_flags,
        vec!["noatime"]
    );
    assert_eq!(vol.parameters["port"], "24007");
    assert_eq!(format!("{:?}", vol.secrets["password"]), "<redacted>");
    assert!(vol.prevent_destroy);
    let ResourceSpec::CsiVolume(imported) = &app.resources[2].spec else {
        panic!()
    };
    assert_eq!(imported.mode, VolumeMode::Register);
    assert_eq!(imported.name, "imported");

    let ResourceSpec::Bucket(b) = &app.resources[3].spec else {
        panic!()
    };
    assert_eq!(app.resources[3].id.to_string(), "bucket/web-backups");
    assert_eq!(b.versioning, Some(true));
    assert_eq!(b.policy.as_ref().unwrap()["Version"], "2012-10-17");
    assert_eq!(b.lifecycle.as_ref().unwrap()[0].expire_days, Some(30));
    assert_eq!(b.tags["team"], "media");

    assert_eq!(app.resources[4].id.to_string(), "vault_secret/kv/web/creds");
    let ResourceSpec::ConsulConfigEntry(defaults) = &app.resources[5].spec else {
        panic!()
    };
    assert_eq!(
        defaults.body,
        serde_json::json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"})
    );
    assert_eq!(
        app.resources[6].id.to_string(),
        "consul_config_entry/service-intentions/web"
    );
    let ResourceSpec::ConsulConfigEntry(intentions) = &app.resources[6].spec else {
        panic!()
    };
    assert_eq!(intentions.body["Sources"][0]["Action"], "allow");

    assert_eq!(
        app.probes,
        vec![
            Probe {
                name: None,
                interval_secs: 30,
                check: ProbeCheck::Http {
                    url: "https://web.example.org/health".into(),
                    expect_status: 200,
                    timeout_secs: 10,
                },
            },
            Probe {
                name: Some("redirect".into()),
                interval_secs: 60,
                check: ProbeCheck::Http {
                    url: "http://web.example.org/".into(),
                    expect_status: 301,
                    timeout_secs: 3,
                },
            },
            Probe {
                name: None,
                interval_secs: 30,
                check: ProbeCheck::Tls {
                    host: "web.example.org".into(),
                    port: 8443,
                    warn_days: 14,
                },
            },
            Probe {
                name: None,
                interval_secs: 30,
                check: ProbeCheck::BackupFreshness {
                    bucket: "web-backups".into(),
                    prefix: "db/".into(),
                    max_age_secs: 300,
                },
            },
        ]
    );
    assert_eq!(app.hooks.len(), 3);
    assert_eq!(app.hooks[0].phase, HookPhase::PreSync);
    assert!(app.hooks[0].once);
    assert_eq!(app.hooks[0].job.job_id, "seed");
    assert_eq!(app.hooks[0].timeout_secs, 300, "the default timeout");
    assert_eq!(app.hooks[1].phase, HookPhase::PostSync);
    assert!(!app.hooks[1].once);
    assert_eq!(app.hooks[2].phase, HookPhase::SyncFail);
    assert_eq!(app.hooks[2].timeout_secs, 90);

    // Implicit ordering: the job waits for the volume it mounts and the secret it reads;
    // intentions wait for the service's defaults.
    let deps = desired::resource_dependencies(app);
    let id = |s: &str| ResourceId::parse(s).unwrap();
    assert_eq!(
        deps,
        vec![
            (id("nomad_job/apps/web"), id("csi_volume/apps/web_data")),
            (id("nomad_job/apps/web"), id("vault_secret/kv/web/creds")),
            (
                id("consul_config_entry/service-intentions/web"),
                id("consul_config_entry/service-defaults/web")
            ),
        ]
    );

    // Repo defaults apply when an app sets nothing.
    let db = ok(&loaded, "db");
    assert_eq!(db.sync, desired::SyncPolicy::default());
}

#[test]
fn root_drover_yaml_sets_defaults_and_rejects_unknown_keys() {
    let loaded = desired::load(&rev(&[
        ("drover.yaml", "namespace: media\nsync: { prune: true }\n"),
        ("apps/a/app.yaml", "sync: { auto: false }\n"),
    ]));
    let a = ok(&loaded, "a");
    assert_eq!(a.namespace, "media");
    assert_eq!(
        (a.sync.auto, a.sync.self_heal, a.sync.prune),
        (false, true, true)
    );

    let loaded = desired::load(&rev(&[
        ("drover.yaml", "namespace: media\nnamespaces: x\n"),
        ("apps/a/app.yaml", ""),
    ]));
    assert_eq!(loaded.repo_errors.len(), 1);
    let d = &loaded.repo_errors[0];
    assert_eq!((d.file.as_str(), d.line, d.column), ("drover.yaml", 2, 1));
    assert_eq!(d.hint.as_deref(), Some("did you mean \"namespace\"?"));
    // A bad repo file does not stop the apps from loading.
    ok(&loaded, "a");
}

#[test]
fn bad_yaml_unknown_keys_and_bad_hcl_fail_only_their_app() {
    let (_dir, loaded) = load_dir(&[
        (
            "apps/good/app.yaml",
            "resources:\n  - nomad_job: { file: job.nomad.hcl }\n",
        ),
        ("apps/good/job.nomad.hcl", MINIMAL_JOB),
        (
            "apps/yaml/app.yaml",
            "name: yaml\nresources:\n  - nomad_job: { file: x\n",
        ),
        (
            "apps/typo/app.yaml",
            "name: typo\nsync:\n  auto: true\n  self_heel: true\nresorces: []\n",
        ),
        (
            "apps/hcl/app.yaml",
            "resources:\n  - nomad_job: { file: job.nomad.hcl }\n",
        ),
        (
            "apps/hcl/job.nomad.hcl",
            "job \"hcl\" {\n  group \"g\" {\n    count = \n  }\n}\n",
        ),
    ]);
    ok(&loaded, "good");

    let yaml = errs(&loaded, "yaml");
    assert_eq!(yaml.len(), 1);
    assert_eq!(yaml[0].file, "apps/yaml/app.yaml");
    assert!(yaml[0].line >= 3, "{:?}", yaml[0]);
    assert!(yaml[0].column > 0);
    assert!(yaml[0].message.starts_with("invalid YAML"), "{}", yaml[0]);

    let typo = errs(&loaded, "typo");
    assert_eq!(typo.len(), 2, "all errors of the app at once: {typo:?}");
    assert_eq!(
        typo[0].to_string(),
        "apps/typo/app.yaml:4:3: sync.self_heel: unknown key \"self_heel\" (did you mean \"self_heal\"?)"
    );
    assert_eq!(
        (typo[1].line, typo[1].column, typo[1].hint.as_deref()),
        (5, 1, Some("did you mean \"resources\"?"))
    );

    let hcl = errs(&loaded, "hcl");
    assert_eq!(hcl.len(), 1);
    assert_eq!(hcl[0].file, "apps/hcl/job.nomad.hcl");
    assert_eq!((hcl[0].line, hcl[0].column), (3, 13));
    assert!(hcl[0].message.contains("HCL syntax error"), "{}", hcl[0]);

    let rendered = common::render_diagnostics(&common::all_diagnostics(&loaded));
    assert!(rendered.ends_with("4 errors\n"), "{rendered}");
    assert!(rendered.contains("apps/hcl/job.nomad.hcl:3:13: HCL syntax error"));
}

#[test]
fn field_errors_are_collected_with_positions() {
    let loaded = desired::load(&rev(&[(
        "apps/bad/app.yaml",
        r#"name: Bad_Name
namespace: "not a namespace"
sync: { auto: yes }
resources:
  - {}
  - nomad_job: { file: job.nomad.hcl }
    bucket: { name: x }
  - csi_volume: { id: v, plugin_id: p, capacity_min: 2GiB, capacity_max: 1GiB, capabilities: [{ access_mode: single-node-writter, attachment_mode: file-system }] }
  - csi_volume: { id: v2, plugin_id: p, capacity_min: 12 parsecs, capabilities: [{ access_mode: single-node-writer, attachment_mode: file-system }] }
  - bucket: { name: UPPER }
  - vault_secret: { mount: kv, path: /abs }
  - csi_volume: { file: ../../../etc/volume.hcl }
probes:
  - { http: { url: "ftp://x", expect_status: 999 } }
  - { backup_freshness: { bucket: b, max_age: soon } }
  - { tls: { host: h, port: 70000, interval: 0s, name: "" } }
  - { http: { url: "https://user:hunter2@x/?token=abc%", timeout: fast } }
hooks:
  - { pre_sync: { once: true } }
"#,
    )]));
    let d = errs(&loaded, "Bad_Name");
    let find = |field: &str| {
        d.iter()
            .find(|x| x.field.as_deref() == Some(field))
            .unwrap_or_else(|| panic!("no error for {field}: {d:#?}"))
    };
    assert_eq!(find("name").line, 1);
    assert_eq!(find("namespace").line, 2);
    assert_eq!(
        find("sync.auto").hint.as_deref(),
        Some("write true or false")
    );
    assert!(find("resources[0]").message.contains("empty"));
    assert!(find("resources[1]").message.contains("exactly one"));
    let access = find("resources[2].csi_volume.capabilities[0].access_mode");
    assert_eq!(
        access.hint.as_deref(),
        Some("did you mean \"single-node-writer\"?")
    );
    assert_eq!((access.line, access.column), (8, 110));
    assert!(
        find("resources[3].csi_volume.capacity_min")
            .message
            .contains("parsecs")
    );
    assert!(
        find("resources[4].bucket.name")
            .message
            .contains("bucket name")
    );
    assert!(find("resources[5].vault_secret.path").message.contains("/"));
    assert!(
        find("resources[6].csi_volume.file")
            .message
            .contains("escapes the repository")
    );
    assert!(find("probes[0].http.url").message.contains("http(s)"));
    assert!(find("probes[0].http.expect_status").message.contains("999"));
    assert!(
        find("probes[1].backup_freshness.max_age")
            .message
            .contains("soon")
    );
    let port = find("probes[2].tls.port");
    assert!(port.message.contains("70000"), "{port:?}");
    assert_eq!(port.line, 16);
    assert!(
        find("probes[2].tls.interval")
            .message
            .contains("at least 1s")
    );
    find("probes[2].tls.name");
    let timeout = find("probes[3].http.timeout");
    assert!(timeout.message.contains("fast"), "{timeout:?}");
    assert_eq!(timeout.line, 17);
    assert!(
        find("hooks[0].pre_sync.nomad_job")
            .message
            .contains("nomad_job")
    );
}

#[test]
fn sizes_are_bytes() {
    // Sizes as Nomad's volume specs read them (go-humanize: SI and IEC units).
    assert_eq!(desired::parse_size("100MiB"), Ok(104_857_600));
    assert_eq!(desired::parse_size("1GiB"), Ok(1_073_741_824));
    assert_eq!(desired::parse_size("10GB"), Ok(10_000_000_000));
    assert_eq!(desired::parse_size("512"), Ok(512));
    let loaded = desired::load(&rev(&[(
        "apps/v/app.yaml",
        "resources:\n  - csi_volume: { id: v, plugin_id: p, capacity_min: 1048576, capacity_max: 5GiB, capabilities: [{ access_mode: single-node-writer, attachment_mode: block-device }] }\n",
    )]));
    let ResourceSpec::CsiVolume(v) = &ok(&loaded, "v").resources[0].spec else {
        panic!()
    };
    assert_eq!(
        (v.capacity_min, v.capacity_max),
        (Some(1 << 20), Some(5 << 30))
    );
}

#[test]
fn duplicate_resources_and_names_error_on_every_claimant() {
    let job = |id: &str| {
        format!(
            "job \"{id}\" {{\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"docker\"\n    }}\n  }}\n}}\n"
        )
    };
    let shared = job("shared");
    let loaded = desired::load(&rev(&[
        (
            "apps/a/app.yaml",
            "resources:\n  - nomad_job: { file: j.nomad.hcl }\n  - bucket: { name: same-bucket }\n  - bucket: { name: same-bucket }\n",
        ),
        ("apps/a/j.nomad.hcl", &shared),
        // Its own copy of the jobspec: nothing tells which app had the job first (one that
        // points into a's folder instead is refused alone, see tests/input_limits.rs).
        (
            "apps/b/app.yaml",
            "resources:\n  - nomad_job: { file: j.nomad.hcl }\n",
        ),
        ("apps/b/j.nomad.hcl", &shared),
        ("apps/c/app.yaml", "name: d\n"),
        ("apps/d/app.yaml", ""),
    ]));
    let a = errs(&loaded, "a");
    assert!(
        a.iter()
            .any(|d| d.message == "bucket/same-bucket is declared twice in this app"),
        "{a:?}"
    );
    assert!(
        a.iter().any(|d| d
            .message
            .starts_with("nomad_job/default/shared is also declared by app b")),
        "{a:?}"
    );
    let b = errs(&loaded, "b");
    assert!(
        b.iter().any(|d| d
            .message
            .starts_with("nomad_job/default/shared is also declared by app a")),
        "{b:?}"
    );
    // Two folders naming the same app: both fail.
    let ds: Vec<&desired::LoadedApp> = loaded.apps.iter().filter(|x| x.name == "d").collect();
    assert_eq!(ds.len(), 2);
    assert!(ds.iter().all(|x| x.result.is_err()));
}

#[test]
fn depends_on_must_name_apps_without_cycles() {
    let loaded = desired::load(&rev(&[
        ("apps/a/app.yaml", "depends_on: [b]\n"),
        ("apps/b/app.yaml", "depends_on: [c]\n"),
        ("apps/c/app.yaml", "depends_on: [a]\n"),
        ("apps/d/app.yaml", "depends_on: [a, mini]\n"),
        ("apps/minio/app.yaml", ""),
        ("apps/e/app.yaml", "depends_on: [e]\n"),
    ]));
    for name in ["a", "b", "c"] {
        let d = errs(&loaded, name);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].message.contains("cycle"), "{}", d[0]);
    }
    assert!(errs(&loaded, "a")[0].message.ends_with("a → b → c → a"));
    assert!(errs(&loaded, "e")[0].message.ends_with("e → e"));
    let d = errs(&loaded, "d");
    assert_eq!(d.len(), 1, "d itself is not in the cycle: {d:?}");
    assert_eq!((d[0].line, d[0].column), (1, 17));
    assert_eq!(d[0].hint.as_deref(), Some("did you mean \"minio\"?"));
    ok(&loaded, "minio");
}

fn namespace_in(jobspec: &str) -> Option<String> {
    let re = regex::Regex::new(r#"(?m)^\s*"?[Nn]amespace"?\s*[=:]\s*"([^"]+)""#).unwrap();
    re.captures(jobspec).map(|c| c[1].to_string())
}

/// Every jobspec in the user's real repository, loaded as a `nomad_job` resource.
#[test]
fn every_brmartin_jobspec_loads() {
    let Some(examples) = shared_examples() else {
        return;
    };
    let modules = examples.join("modules");
    let mut seen = 0;
    let mut files = BTreeMap::new();
    let mut apps = Vec::new();
    for entry in std::fs::read_dir(&modules).expect("shared examples missing") {
        let dir = entry.unwrap().path();
        let module = dir.file_name().unwrap().to_string_lossy().replace('_', "-");
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let is_jobspec =
                name.starts_with("jobspec") && (name.ends_with(".hcl") || name.ends_with(".json"));
            if !is_jobspec {
                continue;
            }
            seen += 1;
            let app = format!("{module}-{}", name.replace('.', "-")).to_lowercase();
            let vars = if module == "elk" {
                ", variables: { elastic_version: \"9.2.3\" }"
            } else {
                ""
            };
            let text = std::fs::read_to_string(&f).unwrap();
            // A jobspec that names its namespace needs the app to be in it (see the next test).
            let ns = namespace_in(&text)
                .map(|n| format!("namespace: {n}\n"))
                .unwrap_or_default();
            files.insert(
                format!("apps/{app}/app.yaml"),
                format!("{ns}resources:\n  - nomad_job: {{ file: {name}{vars} }}\n").into_bytes(),
            );
            files.insert(format!("apps/{app}/{name}"), text.into_bytes());
            apps.push((app, name));
        }
    }
    assert!(seen >= 35, "only {seen} jobspecs found");
    // Several modules share a job ID (dummy's .hcl/.json pair, media-centre); give each its own
    // namespace so duplicate IDs don't mask load errors.
    let loaded_each: Vec<(String, Loaded)> = apps
        .iter()
        .map(|(app, _)| {
            let one: BTreeMap<String, Vec<u8>> = files
                .iter()
                .filter(|(p, _)| p.starts_with(&format!("apps/{app}/")))
                .map(|(p, b)| (p.clone(), b.clone()))
                .collect();
            (app.clone(), desired::load(&Revision::from_files("t", one)))
        })
        .collect();
    for (app, loaded) in &loaded_each {
        let a = ok(loaded, app);
        let ResourceSpec::NomadJob(job) = &a.resources[0].spec else {
            panic!()
        };
        assert!(!job.job_id.is_empty());
        if job.file.ends_with(".json") {
            assert_eq!(job.format, JobFormat::Json);
        }
    }
    // None of the user's jobspecs needs another templating layer (their templating is Nomad's
    // own consul-template text and HCL2 variables); spot-check IDs.
    let id_of = |prefix: &str| {
        let (_, l) = loaded_each
            .iter()
            .find(|(a, _)| a.starts_with(prefix))
            .unwrap();
        let ResourceSpec::NomadJob(job) = &l.apps[0].result.as_ref().unwrap().resources[0].spec
        else {
            panic!()
        };
        (job.job_id.clone(), job.variables.clone())
    };
    assert_eq!(id_of("overseerr-").0, "overseerr");
    assert_eq!(id_of("gitlab-runner-").0, "gitlab-runner");
    assert_eq!(id_of("coder-").0, "coder");
    assert_eq!(id_of("code-server-").0, "code-server");
    assert_eq!(
        id_of("elk-"),
        (
            "elk".to_string(),
            "elastic_version = \"9.2.3\"\n".to_string()
        )
    );
}

#[test]
fn a_required_hcl2_variable_without_value_is_an_error() {
    // elk declares `variable "elastic_version"` with no default; Nomad refuses the job without it.
    let elk = brmartin("modules/elk/jobspec.nomad.hcl");
    let loaded = desired::load(&rev(&[
        (
            "apps/elk/app.yaml",
            "resources:\n  - nomad_job: { file: jobspec.nomad.hcl, variables: { elastic_versoin: x } }\n",
        ),
        ("apps/elk/jobspec.nomad.hcl", &elk),
    ]));
    let d = errs(&loaded, "elk");
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[0].file, "apps/elk/app.yaml");
    assert_eq!((d[0].line, d[0].column), (2, 56));
    assert_eq!(
        d[0].hint.as_deref(),
        Some("did you mean \"elastic_version\"?")
    );
    assert_eq!(d[1].file, "apps/elk/jobspec.nomad.hcl");
    assert_eq!(d[1].line, 1);
    assert!(d[1].message.contains("no default"));
}

#[test]
fn files_needing_another_templating_layer_are_named_not_half_parsed() {
    let levant = "job \"web\" {\n  group \"g\" {\n    count = [[ .count ]]\n  }\n}\n";
    let levant_str = "job \"web\" {\n  meta { image = \"nginx:[[ .tag ]]\" }\n}\n";
    let jinja = "job \"web\" {\n{% if prod %}\n  datacenters = [\"dc1\"]\n{% endif %}\n}\n";
    let jinja_expr = "job \"web\" {\n  meta { image = \"{{ image }}\" }\n}\n";
    let tf = "job \"web\" {\n  group \"g\" {\n%{ for p in ports ~}\n    network { port \"${p}\" {} }\n%{ endfor ~}\n  }\n}\n";
    let tf_placeholder = "job \"web\" {\n  group \"g\" {\n    task \"t\" {\n      config { image = \"${image}\" }\n    }\n  }\n}\n";
    let loaded = desired::load(&rev(&[
        (
            "apps/a/app.yaml",
            "resources:\n  - nomad_job: { file: j.nomad.hcl }\n",
        ),
        ("apps/a/j.nomad.hcl", levant),
        (
            "apps/b/app.yaml",
            "resources:\n  - nomad_job: { file: j.nomad.hcl }\n",
        ),
        ("apps/b/j.nomad.hcl", levant_str),
        (
            "apps/c/app.yaml",
            "resources:\n  - nomad_job: { file: j.nomad.hcl }\n",
        ),
        ("apps/c/j.nomad.hcl", jinja),
        (
            "apps/d/app.yaml",
            "resources:\n  - nomad_job: { file: j.nomad.hcl }\n",
        ),
        ("apps/d/j.nomad.hcl", jinja_expr),
        (
            "apps/e/app.yaml",
            "resources:\n  - nomad_job: { file: j.nomad.hcl }\n",
        ),
        ("apps/e/j.nomad.hcl", tf),
        (
            "apps/f/app.yaml",
            "resources:\n  - nomad_job: { file: j.nomad.hcl }\n",
        ),
        ("apps/f/j.nomad.hcl", tf_placeholder),
    ]));
    let first = |app: &str| errs(&loaded, app)[0].clone();
    let a = first("a");
    assert_eq!(
        (a.file.as_str(), a.line, a.column),
        ("apps/a/j.nomad.hcl", 3, 13)
    );
    assert!(a.message.contains("`[[ .count ]]` is Levant syntax"), "{a}");
    assert!(a.message.contains("needs another templating layer"));
    assert!(a.hint.as_deref().unwrap().contains("levant render"));
    let b = first("b");
    assert_eq!((b.line, b.column), (2, 25));
    assert!(b.message.contains("Levant"));
    let c = first("c");
    assert_eq!((c.line, c.column), (2, 1));
    assert!(c.message.contains("`{% if prod %}` is Jinja syntax"), "{c}");
    let d = first("d");
    assert!(d.message.contains("`{{ image }}` is Jinja syntax"), "{d}");
    let e = first("e");
    assert_eq!((e.line, e.column), (3, 1));
    assert!(e.message.contains("Terraform templatefile"), "{e}");
    let f = first("f");
    assert_eq!((f.line, f.column), (4, 25));
    assert!(
        f.message
            .contains("`${image}` is Terraform templatefile syntax"),
        "{f}"
    );
    assert!(f.hint.as_deref().unwrap().contains("${var.x}"));
}

#[test]
fn matrix_volume_specs_load_with_variables_from_app_yaml() {
    let mut files = vec![(
        "apps/matrix/app.yaml".to_string(),
        "resources:\n".to_string(),
    )];
    for v in ["config", "media-store", "synapse-data", "whatsapp-data"] {
        let name = format!("volume-{v}.hcl");
        files.push((
            format!("apps/matrix/{name}"),
            brmartin(&format!("modules/matrix/{name}")),
        ));
        files[0].1.push_str(&format!(
            "  - csi_volume: {{ file: {name}, prevent_destroy: true, variables: {{ storage_server: 192.168.1.5, storage_network: tcp }} }}\n"
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let loaded = desired::load(&rev(&refs));
    let app = ok(&loaded, "matrix");
    assert_eq!(app.resources.len(), 4);
    let ResourceSpec::CsiVolume(v) = &app.resources[0].spec else {
        panic!()
    };
    assert_eq!(
        app.resources[0].id.to_string(),
        "csi_volume/default/glusterfs_matrix_config"
    );
    assert_eq!(
        app.resources[0].origin.file,
        "apps/matrix/volume-config.hcl"
    );
    assert_eq!(v.plugin_id, "org.gluster.glusterfs");
    assert_eq!(v.capacity_min, Some(100 << 20));
    assert_eq!(v.capacity_max, Some(1 << 30));
    assert_eq!(v.capabilities[0].access_mode, "multi-node-reader-only");
    assert_eq!(v.mount_options.as_ref().unwrap().fs_type, "ext4");
    assert_eq!(v.parameters["server"], "192.168.1.5");
    assert_eq!(v.parameters["network"], "tcp");
    assert_eq!(v.parameters["share"], "glusterfs_matrix_config");
    assert!(v.prevent_destroy);

    // Without the variable: a clear error naming it, at its place in the volume file.
    let spec = brmartin("modules/matrix/volume-config.hcl");
    let loaded = desired::load(&rev(&[
        (
            "apps/m/app.yaml",
            "resources:\n  - csi_volume: { file: volume-config.hcl, variables: { storage_server: x } }\n",
        ),
        ("apps/m/volume-config.hcl", &spec),
    ]));
    let d = errs(&loaded, "m");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].message, "var.storage_network has no value");
    assert_eq!(
        (d[0].file.as_str(), d[0].line, d[0].column),
        ("apps/m/volume-config.hcl", 21, 13)
    );
}

#[test]
fn hcl1_volume_forms_and_register_mode() {
    // Nomad reads volume specs with its HCL1 parser, which takes one-line blocks with several
    // attributes; external_id means `nomad volume register`.
    let spec = "id = \"v1\"\nname = \"vol one\"\ntype = \"csi\"\nplugin_id = \"nfs\"\nexternal_id = \"nfs-123\"\ncapability { access_mode = \"single-node-writer\" attachment_mode = \"file-system\" }\ncapability {\n  access_mode     = \"single-node-reader-only\"\n  attachment_mode = \"file-system\"\n}\nsecrets { token = \"s\" }\ncontext { share = \"${var.share}\" }\n";
    let loaded = desired::load(&rev(&[
        (
            "apps/v/app.yaml",
            "resources:\n  - csi_volume: { file: v.hcl, variables: { share: data } }\n",
        ),
        ("apps/v/v.hcl", spec),
    ]));
    let ResourceSpec::CsiVolume(v) = &ok(&loaded, "v").resources[0].spec else {
        panic!()
    };
    assert_eq!(v.mode, VolumeMode::Register);
    assert_eq!(v.external_id.as_deref(), Some("nfs-123"));
    assert_eq!(v.capabilities.len(), 2);
    assert_eq!(v.context["share"], "data");
    assert_eq!(v.secrets["token"].0, "s");

    let loaded = desired::load(&rev(&[
        (
            "apps/v/app.yaml",
            "resources:\n  - csi_volume: { file: v.hcl }\n",
        ),
        (
            "apps/v/v.hcl",
            "id = \"v1\"\nplugin_id = \"p\"\ncapacity_minimum = \"1GiB\"\ncapability {\n  access_mode = \"single-node-writer\"\n  attachment_mode = \"file-system\"\n}\n",
        ),
    ]));
    let d = errs(&loaded, "v");
    assert_eq!((d[0].line, d[0].column), (3, 1));
    assert_eq!(d[0].hint.as_deref(), Some("did you mean \"capacity_min\"?"));
}

#[test]
fn brmartin_consul_config_entries_load() {
    let mut files = vec![("apps/mesh/app.yaml".to_string(), "resources:\n".to_string())];
    for f in [
        "media-centre-plex-service-defaults.hcl",
        "minio-service-resolver.hcl",
        "minio-service-defaults.hcl",
    ] {
        files.push((
            format!("apps/mesh/{f}"),
            brmartin(&format!("consul-config/{f}")),
        ));
        files[0]
            .1
            .push_str(&format!("  - consul_config_entry: {{ file: {f} }}\n"));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let loaded = desired::load(&rev(&refs));
    let app = ok(&loaded, "mesh");
    let ids: Vec<String> = app.resources.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "consul_config_entry/service-defaults/media-centre-plex",
            "consul_config_entry/service-resolver/minio-minio",
            "consul_config_entry/service-defaults/minio-minio",
        ]
    );
    let ResourceSpec::ConsulConfigEntry(plex) = &app.resources[0].spec else {
        panic!()
    };
    assert_eq!(
        plex.body["UpstreamConfig"]["Overrides"][0],
        serde_json::json!({"Name": "minio-minio", "Protocol": "http", "ConnectTimeoutMs": 30000})
    );
    let ResourceSpec::ConsulConfigEntry(resolver) = &app.resources[1].spec else {
        panic!()
    };
    assert_eq!(resolver.body["RequestTimeout"], "300s");
    // The resolver waits for the service's defaults.
    assert_eq!(
        desired::resource_dependencies(app),
        vec![(app.resources[1].id.clone(), app.resources[2].id.clone())]
    );

    // JSON form and a missing Name.
    let loaded = desired::load(&rev(&[
        (
            "apps/j/app.yaml",
            "resources:\n  - consul_config_entry: { file: e.json }\n  - consul_config_entry: { file: bad.hcl }\n",
        ),
        (
            "apps/j/e.json",
            "{\"Kind\": \"proxy-defaults\", \"Name\": \"global\", \"Config\": {\"protocol\": \"http\"}}",
        ),
        (
            "apps/j/bad.hcl",
            "Kind = \"service-defualts\"\nName = \"x\"\n",
        ),
    ]));
    let d = errs(&loaded, "j");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].file, "apps/j/bad.hcl");
    assert_eq!(
        d[0].hint.as_deref(),
        Some("did you mean \"service-defaults\"?")
    );
}

#[test]
fn overseerr_app_with_implicit_dependencies() {
    let jobspec = brmartin("modules/overseerr/jobspec.nomad.hcl");
    let app_yaml = "depends_on: [minio]\nresources:\n  - nomad_job: { file: jobspec.nomad.hcl }\n  - csi_volume:\n      id: glusterfs_overseerr_config\n      plugin_id: glusterfs\n      capacity_min: 100MiB\n      capacity_max: 1GiB\n      capabilities: [{ access_mode: single-node-writer, attachment_mode: file-system }]\n      prevent_destroy: true\n  - bucket: { name: overseerr-litestream, versioning: false }\n  - vault_secret: { mount: nomad, path: default/overseerr, keys: [MINIO_ACCESS_KEY, MINIO_SECRET_KEY] }\n";
    let loaded = desired::load(&rev(&[
        ("apps/overseerr/app.yaml", app_yaml),
        ("apps/overseerr/jobspec.nomad.hcl", &jobspec),
        ("apps/minio/app.yaml", ""),
    ]));
    let app = ok(&loaded, "overseerr");
    let ResourceSpec::NomadJob(job) = &app.resources[0].spec else {
        panic!()
    };
    assert_eq!(job.source, jobspec, "the jobspec text is kept as written");
    assert_eq!(job.variables, "");
    let refs = desired::job_refs(job);
    assert_eq!(refs.csi_sources, vec!["glusterfs_overseerr_config"]);
    assert_eq!(refs.secret_paths, vec!["nomad/default/overseerr"]);
    let id = |s: &str| ResourceId::parse(s).unwrap();
    assert_eq!(
        desired::resource_dependencies(app),
        vec![
            (
                id("nomad_job/default/overseerr"),
                id("csi_volume/default/glusterfs_overseerr_config")
            ),
            // The job's Litestream template names the bucket.
            (
                id("nomad_job/default/overseerr"),
                id("bucket/overseerr-litestream")
            ),
            (
                id("nomad_job/default/overseerr"),
                id("vault_secret/nomad/default/overseerr")
            ),
        ]
    );
    assert_eq!(app.resources[2].id.kind, ResourceKind::Bucket);
}

#[test]
fn missing_files_and_json_jobs() {
    let loaded = desired::load(&rev(&[
        (
            "apps/a/app.yaml",
            "resources:\n  - nomad_job: { file: jobspec.nomad.hlc }\n",
        ),
        ("apps/a/jobspec.nomad.hcl", MINIMAL_JOB),
        (
            "apps/b/app.yaml",
            "resources:\n  - nomad_job: { file: job.json, variables: { x: 1 } }\n",
        ),
        ("apps/b/job.json", "{\"Job\": {\"ID\": \"b\"}}"),
        (
            "apps/c/app.yaml",
            "resources:\n  - nomad_job: { file: job.json }\n",
        ),
        ("apps/c/job.json", "{\"Name\": \"no id\"}"),
        (
            "apps/d/app.yaml",
            "namespace: prod\nresources:\n  - nomad_job: { file: j.hcl }\n",
        ),
        ("apps/d/j.hcl", "job \"d\" {\n  namespace = \"dev\"\n}\n"),
        (
            "apps/e/app.yaml",
            "resources:\n  - nomad_job: { file: job.json }\n",
        ),
        (
            "apps/e/job.json",
            "{\"ID\": \"e\", \"Namespace\": \"default\"}",
        ),
    ]));
    let a = errs(&loaded, "a");
    assert_eq!((a[0].line, a[0].column), (2, 24));
    assert_eq!(
        a[0].hint.as_deref(),
        Some("did you mean \"jobspec.nomad.hcl\"?")
    );
    assert!(errs(&loaded, "b")[0].message.contains("JSON jobspec"));
    assert!(errs(&loaded, "c")[0].message.contains("no \"ID\""));
    assert!(errs(&loaded, "d")[0].message.contains("namespace \"dev\""));
    let e = ok(&loaded, "e");
    assert_eq!(e.resources[0].id.to_string(), "nomad_job/default/e");
}

#[test]
fn auto_var_files_apply_only_to_jobs_that_declare_them() {
    let a = "variable \"tag\" {\n  default = \"x\"\n}\njob \"a\" {}\n";
    let b = "job \"b\" {}\n";
    let loaded = desired::load(&rev(&[
        (
            "apps/x/app.yaml",
            "resources:\n  - nomad_job: { file: a.nomad.hcl }\n  - nomad_job: { file: b.nomad.hcl }\n",
        ),
        ("apps/x/a.nomad.hcl", a),
        ("apps/x/b.nomad.hcl", b),
        ("apps/x/prod.vars.hcl", "tag = \"1.0\"\n"),
    ]));
    let app = ok(&loaded, "x");
    let vars: Vec<&str> = app
        .resources
        .iter()
        .map(|r| match &r.spec {
            ResourceSpec::NomadJob(j) => j.variables.as_str(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(vars, ["tag = \"1.0\"\n", ""]);
}

#[test]
fn example_desired_state_repo_loads_clean() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/desired-state");
    let loaded = common::load_dir(Path::new(dir));
    assert!(
        loaded.repo_errors.is_empty() && loaded.apps.iter().all(|a| a.result.is_ok()),
        "{}",
        common::render_diagnostics(&common::all_diagnostics(&loaded))
    );
    let names: Vec<&str> = loaded.apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "glusterfs-csi",
            "jellyfin",
            "minio",
            "overseerr",
            "prowlarr",
            "qbittorrent",
            "radarr",
            "sonarr",
            "traefik"
        ]
    );
    let overseerr = ok(&loaded, "overseerr");
    assert_eq!(overseerr.depends_on, ["minio", "glusterfs-csi"]);
    // The CSI volume, the Vault secret and the Litestream bucket.
    assert_eq!(desired::resource_dependencies(overseerr).len(), 3);
    let minio = ok(&loaded, "minio");
    let ids: Vec<String> = minio.resources.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "nomad_job/default/minio",
            "vault_secret/nomad/default/minio",
            "consul_config_entry/service-defaults/minio-minio",
            "consul_config_entry/service-resolver/minio-minio",
            "consul_config_entry/service-intentions/minio-minio",
            "bucket/plex-litestream",
            "bucket/appflowy",
        ]
    );
    // minio's job reads its root credentials through KV v2's data/ path.
    assert!(
        desired::resource_dependencies(minio)
            .contains(&(minio.resources[0].id.clone(), minio.resources[1].id.clone()))
    );
    let csi = ok(&loaded, "glusterfs-csi");
    assert_eq!(csi.resources.len(), 2);
}

#[test]
fn misnamed_manifest_gets_a_hint() {
    let loaded = desired::load(&rev(&[("apps/x/app.yml", "name: x\n")]));
    assert!(loaded.apps.is_empty());
    assert_eq!(
        loaded.repo_errors[0].hint.as_deref(),
        Some("did you mean \"app.yaml\"?")
    );
}

#[test]
fn seaweedfs_driver_examples_load() {
    // The CSI driver's own Nomad examples: three jobspecs and a `nomad volume create` spec.
    let base = "drivers/seaweedfs-csi-driver/deploy/nomad";
    let files: Vec<(String, String)> = [
        "example-seaweedfs-app.hcl",
        "seaweedfs-csi.hcl",
        "seaweedfs.hcl",
        "example-seaweedfs-volume.hcl",
    ]
    .iter()
    .map(|f| (format!("apps/seaweedfs/{f}"), brmartin(&format!("{base}/{f}"))))
    .chain([(
        "apps/seaweedfs/app.yaml".to_string(),
        "resources:\n  - nomad_job: { file: seaweedfs.hcl }\n  - nomad_job: { file: seaweedfs-csi.hcl }\n  - csi_volume: { file: example-seaweedfs-volume.hcl }\n  - nomad_job: { file: example-seaweedfs-app.hcl }\n".to_string(),
    )])
    .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let loaded = desired::load(&rev(&refs));
    let app = ok(&loaded, "seaweedfs");
    let ids: Vec<String> = app.resources.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(ids[2], "csi_volume/default/example-seaweedfs-volume");
    // The example app mounts the example volume: an implicit edge.
    assert!(
        desired::resource_dependencies(app)
            .contains(&(app.resources[3].id.clone(), app.resources[2].id.clone())),
        "{:?}",
        desired::resource_dependencies(app)
    );
}

#[test]
fn filesystem_functions_are_refused_like_the_parse_api_does() {
    // api-facts 1.2: /v1/jobs/parse runs with filesystem functions disabled (AllowFS=false).
    let job = "job \"web\" {\n  group \"g\" {\n    task \"t\" {\n      template {\n        data = file(\"config.yml\")\n        destination = \"local/c\"\n      }\n      env { X = \"${filebase64(\"k\")}\" }\n    }\n  }\n}\n";
    let loaded = desired::load(&rev(&[
        (
            "apps/a/app.yaml",
            "resources:\n  - nomad_job: { file: j.nomad.hcl }\n",
        ),
        ("apps/a/j.nomad.hcl", job),
    ]));
    let d = errs(&loaded, "a");
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!((d[0].line, d[0].column), (5, 16));
    assert!(
        d[0].message.starts_with("file() reads local files"),
        "{}",
        d[0]
    );
    assert!(d[1].message.starts_with("filebase64()"), "{}", d[1]);
}
