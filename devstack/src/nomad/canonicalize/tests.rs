//! Canonicalize/admit/validate tests (api-facts §1.2 "What Canonicalize:true fills in", §1.3, §1.7).

use serde_json::{Value, json};

use super::*;
use drover_jobspec::parse;

const MINIMAL: &str = r#"
job "web" {
  group "web" {
    network {
      port "http" { to = 8080 }
    }
    service {
      port = "http"
      check {
        type     = "http"
        path     = "/"
        interval = "10s"
        timeout  = "2s"
      }
    }
    task "app" {
      driver = "docker"
      config { image = "nginx" }
      template {
        data        = "x"
        destination = "local/x"
        change_mode = "signal"
      }
      artifact {
        source = "https://example.com/file.tgz"
      }
      volume_mount {
        volume      = "data"
        destination = "/data"
      }
    }
    volume "data" {
      type   = "host"
      source = "data"
    }
  }
}
"#;

fn canon(hcl: &str) -> Value {
    let mut j = parse(hcl, "").unwrap();
    canonicalize(&mut j);
    j
}

#[test]
fn canonicalize_job_defaults_match_api_facts_1_2() {
    let j = canon(MINIMAL);
    assert_eq!(j["Namespace"], "default");
    assert_eq!(j["Priority"], 50);
    assert_eq!(j["Type"], "service");
    assert_eq!(j["Region"], "global");
    assert_eq!(j["Stop"], false);
    assert_eq!(j["AllAtOnce"], false);
    assert_eq!(j["NodePool"], "");
    assert_eq!(j["Version"], 0);
    assert_eq!(j["Status"], "");
    assert_eq!(j["NomadTokenID"], "");
    // Datacenters is NOT filled by parse/canonicalize.
    assert_eq!(j["Datacenters"], Value::Null);
    assert_eq!(
        j["Update"],
        json!({"Stagger": 30_000_000_000_i64, "MaxParallel": 1, "HealthCheck": "checks",
            "MinHealthyTime": 10_000_000_000_i64, "HealthyDeadline": 300_000_000_000_i64,
            "ProgressDeadline": 600_000_000_000_i64, "Canary": 0, "AutoRevert": false, "AutoPromote": false})
    );
}

#[test]
fn canonicalize_group_defaults_match_api_facts_1_2() {
    let j = canon(MINIMAL);
    let g = &j["TaskGroups"][0];
    assert_eq!(g["Count"], 1);
    assert_eq!(
        g["EphemeralDisk"],
        json!({"Sticky": false, "Migrate": false, "SizeMB": 300})
    );
    assert_eq!(g["Update"], j["Update"], "job update merged into the group");
    assert_eq!(
        g["ReschedulePolicy"],
        json!({"Attempts": 0, "Interval": 0, "Delay": 30_000_000_000_i64, "DelayFunction": "exponential",
            "MaxDelay": 3_600_000_000_000_i64, "Unlimited": true})
    );
    assert_eq!(
        g["Migrate"],
        json!({"MaxParallel": 1, "HealthCheck": "checks", "MinHealthyTime": 10_000_000_000_i64,
            "HealthyDeadline": 300_000_000_000_i64})
    );
    assert_eq!(
        g["RestartPolicy"],
        json!({"Interval": 1_800_000_000_000_i64, "Attempts": 2, "Delay": 15_000_000_000_i64,
            "Mode": "fail", "RenderTemplates": false})
    );
    // Canonicalize leaves HostNetwork "" (was "default"; measured on Nomad 2.0.5, api-facts §7).
    assert_eq!(g["Networks"][0]["DynamicPorts"][0]["HostNetwork"], "");
    let svc = &g["Services"][0];
    assert_eq!(
        svc["Name"], "web-web",
        "group service name is <job>-<group>"
    );
    assert_eq!(svc["AddressMode"], "auto");
    assert_eq!(svc["OnUpdate"], "require_healthy");
    assert_eq!(svc["Provider"], "consul");
    assert_eq!(svc["Cluster"], "default");
    assert_eq!(svc["Checks"][0]["OnUpdate"], "require_healthy");
}

#[test]
fn canonicalize_task_defaults_match_api_facts_1_2() {
    let j = canon(MINIMAL);
    let t = &j["TaskGroups"][0]["Tasks"][0];
    assert_eq!(t["Resources"]["CPU"], 100);
    assert_eq!(t["Resources"]["Cores"], 0);
    assert_eq!(t["Resources"]["MemoryMB"], 300);
    assert_eq!(t["KillTimeout"], 5_000_000_000_i64);
    assert_eq!(t["LogConfig"]["MaxFiles"], 10);
    assert_eq!(t["LogConfig"]["MaxFileSizeMB"], 10);
    assert_eq!(t["LogConfig"]["Disabled"], false);
    assert_eq!(t["RestartPolicy"], j["TaskGroups"][0]["RestartPolicy"]);
    let tpl = &t["Templates"][0];
    assert_eq!(tpl["ChangeMode"], "signal");
    assert_eq!(tpl["ChangeSignal"], "SIGHUP");
    assert_eq!(tpl["Splay"], 5_000_000_000_i64);
    assert_eq!(tpl["Perms"], "0644");
    assert_eq!(tpl["LeftDelim"], "{{");
    assert_eq!(tpl["RightDelim"], "}}");
    assert_eq!(tpl["Envvars"], false);
    assert_eq!(tpl["ErrMissingKey"], false);
    assert_eq!(tpl["Once"], false);
    assert_eq!(tpl["SourcePath"], "");
    let art = &t["Artifacts"][0];
    assert_eq!(art["GetterMode"], "any");
    assert_eq!(art["RelativeDest"], "local/");
    let vm = &t["VolumeMounts"][0];
    assert_eq!(vm["PropagationMode"], "private");
    assert_eq!(vm["ReadOnly"], false);
    assert_eq!(vm["SELinuxLabel"], "");
}

#[test]
fn canonicalize_cores_zeroes_cpu_and_batch_policies() {
    let j = canon(
        r#"job "b" {
  type = "batch"
  group "g" {
    scaling {
      min = 2
      max = 5
    }
    task "t" {
      driver = "exec"
      resources { cores = 2 }
      lifecycle {}
    }
  }
}"#,
    );
    assert_eq!(j["Update"], Value::Null, "batch jobs get no default update");
    let g = &j["TaskGroups"][0];
    assert_eq!(g["Count"], 2, "count defaults to scaling.min");
    assert_eq!(g["Migrate"], Value::Null);
    assert_eq!(
        g["ReschedulePolicy"],
        json!({"Attempts": 1, "Interval": 86_400_000_000_000_i64, "Delay": 5_000_000_000_i64,
            "DelayFunction": "constant", "MaxDelay": 0, "Unlimited": false})
    );
    assert_eq!(g["RestartPolicy"]["Attempts"], 3);
    assert_eq!(g["RestartPolicy"]["Interval"], 86_400_000_000_000_i64);
    let t = &g["Tasks"][0];
    assert_eq!(t["Resources"]["CPU"], 0);
    assert_eq!(t["Resources"]["Cores"], 2);
    assert_eq!(
        t["Lifecycle"],
        Value::Null,
        "an empty lifecycle block is dropped"
    );
}

#[test]
fn canonicalize_merges_job_update_under_group_update() {
    let j = canon(
        r#"job "u" {
  update {
    max_parallel = 2
    canary       = 1
  }
  group "g" {
    update { canary = 3 }
    task "t" { driver = "docker" }
  }
}"#,
    );
    let u = &j["TaskGroups"][0]["Update"];
    assert_eq!(u["MaxParallel"], 2);
    assert_eq!(u["Canary"], 3);
    assert_eq!(u["HealthCheck"], "checks");
}

#[test]
fn admit_fills_server_defaults_api_facts_1_3() {
    let mut j = parse(MINIMAL, "").unwrap();
    admit(&mut j, "eu-west");
    assert_eq!(j["Datacenters"], json!(["*"]));
    assert_eq!(j["NodePool"], "default");
    assert_eq!(j["Region"], "eu-west", "global maps to the agent region");
    assert_eq!(j["Namespace"], "default");
    for k in ["Status", "StatusDescription", "NomadTokenID"] {
        assert_eq!(j[k], "", "{k}");
    }
    for k in [
        "Version",
        "SubmitTime",
        "CreateIndex",
        "ModifyIndex",
        "JobModifyIndex",
    ] {
        assert_eq!(j[k], 0, "{k}");
    }
    assert_eq!(j["Stable"], false);
    assert_eq!(j["Stop"], false);
    assert_eq!(j["Dispatched"], false);
    assert!(j.as_object().unwrap().contains_key("VersionTag"));
    assert_eq!(j["VersionTag"], Value::Null);
    assert_eq!(j["Spreads"], Value::Null, "nil collections stay null");
    // Consul services imply a consul version constraint on the group.
    let cons = j["TaskGroups"][0]["Constraints"].as_array().unwrap();
    assert!(
        cons.iter()
            .any(|c| c["LTarget"] == "${attr.consul.version}")
    );
    assert!(validate(&j).is_ok(), "{:?}", validate(&j));
}

#[test]
fn admit_keeps_explicit_datacenters_and_region() {
    let mut j = parse("job \"x\" {\n  region = \"r1\"\n  datacenters = [\"dc2\"]\n  group \"g\" {\n    task \"t\" { driver = \"docker\" }\n  }\n}\n", "").unwrap();
    admit(&mut j, "eu-west");
    assert_eq!(j["Datacenters"], json!(["dc2"]));
    assert_eq!(j["Region"], "r1");
    // No consul services and no vault: no implicit constraints.
    assert_eq!(j["TaskGroups"][0]["Constraints"], Value::Null);
}

#[test]
fn validate_reports_nomad_multierror_text() {
    let mut j = parse(
        "job \"x\" {\n  group \"web\" {\n    count = -1\n    task \"a\" {}\n    task \"a\" {\n      driver = \"docker\"\n    }\n  }\n}\n",
        "",
    )
    .unwrap();
    admit(&mut j, "global");
    let e = validate(&j).unwrap_err();
    assert_eq!(
        e,
        "1 error occurred:\n\t* Task group web validation failed: 3 errors occurred:\n\t* Task group count can't be negative\n\t* Task 2 redefines 'a' from task 1\n\t* Task a validation failed: 1 error occurred:\n\t* Missing task driver\n\n\n\n\n\n"
    );
    let mut bad = j.clone();
    bad["Type"] = json!("daemon");
    bad["Datacenters"] = json!([]);
    let e = validate(&bad).unwrap_err();
    assert!(e.starts_with("3 errors occurred:\n\t* Invalid job type: \"daemon\"\n\t* Missing job datacenters\n\t* Task group web"), "{e}");
}

/// A file of the user's repository, from the project's own copy (the workspace's
/// tests/fixtures/brmartin).
fn example(rel: &str) -> String {
    let p = format!(
        "{}/../tests/fixtures/brmartin/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("example {p} must exist: {e}"))
}

#[test]
fn canonicalize_vault_and_csi_plugin_defaults() {
    let mut j = parse(&example("modules/overseerr/jobspec.nomad.hcl"), "").unwrap();
    canonicalize(&mut j);
    let v = &j["TaskGroups"][0]["Tasks"][0]["Vault"];
    assert_eq!(
        v,
        &json!({"Policies": null, "Role": "", "Namespace": "", "Cluster": "default", "Env": true,
            "DisableFile": false, "ChangeMode": "restart", "ChangeSignal": "SIGHUP",
            "AllowTokenExpiration": false})
    );
    let mut p = parse(&example("modules/plugin-csi/jobspec-nodes.nomad.hcl"), "").unwrap();
    canonicalize(&mut p);
    assert_eq!(p["Type"], "system");
    let c = &p["TaskGroups"][0]["Tasks"][0]["CSIPluginConfig"];
    assert_eq!(
        c,
        &json!({"ID": "martinibar", "Type": "node", "MountDir": "/csi",
            "StagePublishBaseDir": "/local/csi", "HealthTimeout": 30_000_000_000_i64})
    );
    assert_eq!(
        p["TaskGroups"][0]["ReschedulePolicy"],
        Value::Null,
        "system jobs get no reschedule policy"
    );
}

/// A sparse JSON job from the register API gets the same stored shape as a parsed jobspec.
#[test]
fn admit_fills_the_full_shape_of_sparse_json_jobs() {
    let mut sparse = json!({"ID": "x", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "docker",
        "Config": {"image": "nginx"}}]}]});
    admit(&mut sparse, "global");
    let mut parsed = parse(
        "job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"docker\"\n      config {\n        image = \"nginx\"\n      }\n    }\n  }\n}\n",
        "",
    )
    .unwrap();
    admit(&mut parsed, "global");
    assert_eq!(sparse, parsed);
    assert!(
        sparse["TaskGroups"][0]["Tasks"][0]
            .as_object()
            .unwrap()
            .contains_key("Templates")
    );
}

#[test]
fn admit_treats_empty_meta_env_and_config_as_nil() {
    let mut a = parse("job \"x\" {\n  meta {}\n  group \"g\" {\n    meta {}\n    task \"t\" {\n      driver = \"docker\"\n      env {}\n      config {}\n    }\n  }\n}\n", "").unwrap();
    let mut b = parse("job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"docker\"\n    }\n  }\n}\n", "").unwrap();
    assert_eq!(a["Meta"], json!({}), "parse keeps the empty block");
    admit(&mut a, "global");
    admit(&mut b, "global");
    assert_eq!(a, b);
}

/// The server's implied constraints: signals for change_mode "signal", Nomad service discovery.
#[test]
fn admit_adds_signal_and_nomad_service_constraints() {
    let mut j = parse(&example("modules/dummy/jobspec.hcl"), "").unwrap();
    admit(&mut j, "global");
    let cons = &j["TaskGroups"][0]["Constraints"];
    assert_eq!(
        cons,
        &json!([{"LTarget": "${attr.nomad.service_discovery}", "RTarget": "true", "Operand": "="}]),
        "provider = nomad services need native service discovery, not consul"
    );
    let mut j = parse(MINIMAL, "").unwrap();
    admit(&mut j, "global");
    let cons = j["TaskGroups"][0]["Constraints"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        cons,
        vec![
            json!({"LTarget": "${attr.os.signals}", "RTarget": "SIGHUP", "Operand": "set_contains"}),
            json!({"LTarget": "${attr.consul.version}", "RTarget": ">= 1.8.0", "Operand": "semver"}),
        ]
    );
}

#[test]
fn overseerr_admit_injects_connect_sidecar() {
    let mut j = parse(&example("modules/overseerr/jobspec.nomad.hcl"), "").unwrap();
    admit(&mut j, "global");
    let g = &j["TaskGroups"][0];
    let tasks = g["Tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4);
    let proxy = tasks
        .iter()
        .find(|t| t["Name"] == "connect-proxy-overseerr")
        .expect("the injected sidecar task");
    assert_eq!(proxy["Kind"], "connect-proxy:overseerr");
    assert_eq!(proxy["Driver"], "docker");
    assert_eq!(
        proxy["Lifecycle"],
        json!({"Hook": "prestart", "Sidecar": true})
    );
    assert_eq!(
        g["Services"][0]["Connect"]["SidecarService"]["Port"],
        "connect-proxy-overseerr"
    );
    let cons = g["Constraints"].as_array().unwrap();
    assert!(
        cons.iter().any(|c| c["LTarget"] == "${attr.vault.version}"),
        "vault tasks imply a vault constraint"
    );
    assert!(
        cons.iter()
            .any(|c| c["LTarget"] == "${attr.consul.version}")
    );
    // Admitting twice does not inject a second sidecar.
    let mut again = j.clone();
    admit(&mut again, "global");
    assert_eq!(again, j);
}
