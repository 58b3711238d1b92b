//! Parser tests against the user's real jobspecs: the few in the workspace's
//! `tests/fixtures/brmartin`, and all of them when `../shared/examples/brmartin` (beside the
//! workspace) is present. Hand-written jobspecs cover what api-facts §1.2 and §7 describe.

use serde_json::{Value, json};

use super::*;
use crate::examples::{example_jobspecs, vars_for};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/brmartin");

fn read(rel: &str) -> String {
    let p = format!("{FIXTURES}/{rel}");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("fixture {p} must exist: {e}"))
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

fn find<'a>(arr: &'a Value, name: &str) -> &'a Value {
    arr.as_array()
        .and_then(|a| a.iter().find(|x| x["Name"] == name))
        .unwrap_or_else(|| panic!("no element named {name}"))
}

const OVERSEERR_TEMPLATE: &str = r#"{{ with secret "nomad/default/overseerr" }}
dbs:
  - path: /alloc/data/db/db.sqlite3
    replicas:
      - name: overseerr
        type: s3
        bucket: overseerr-litestream
        path: db
        endpoint: http://minio-minio.virtual.consul
        access-key-id: {{ .Data.data.MINIO_ACCESS_KEY }}
        secret-access-key: {{ .Data.data.MINIO_SECRET_KEY }}
        force-path-style: true
{{ end }}
"#;

/// The Overseerr jobspec through parse (api-facts §1.2, §1.7 key names) and admit.
#[test]
fn overseerr_parses_to_nomad_shapes() {
    let j = parse(&read("modules/overseerr/jobspec.nomad.hcl"), "").unwrap();
    assert_eq!(j["ID"], "overseerr");
    assert_eq!(j["Name"], "overseerr");
    assert_eq!(j["Datacenters"], json!(["dc1"]));
    // Unset pointer fields are null without canonicalize.
    for k in [
        "Priority",
        "Type",
        "Region",
        "Namespace",
        "Update",
        "Status",
    ] {
        assert_eq!(j[k], Value::Null, "{k}");
    }
    let g = &j["TaskGroups"][0];
    assert_eq!(g["Name"], "overseerr");
    assert_eq!(g["Count"], Value::Null);
    let net = &g["Networks"][0];
    assert_eq!(net["Mode"], "bridge");
    assert_eq!(net["ReservedPorts"], Value::Null);
    // IgnoreCollision false is measured on Nomad 2.0.5 (api-facts §7).
    assert_eq!(
        net["DynamicPorts"],
        json!([{"Label": "overseerr", "Value": 0, "To": 5055, "HostNetwork": "", "IgnoreCollision": false},
               {"Label": "envoy_metrics", "Value": 0, "To": 9102, "HostNetwork": "", "IgnoreCollision": false}])
    );
    assert_eq!(
        g["EphemeralDisk"],
        json!({"Sticky": true, "Migrate": true, "SizeMB": 200})
    );
    assert_eq!(
        g["Volumes"]["config"],
        json!({"Name": "config", "Type": "csi", "Source": "glusterfs_overseerr_config", "ReadOnly": false,
            "Sticky": false, "AccessMode": "single-node-writer", "AttachmentMode": "file-system",
            "MountOptions": null, "PerAlloc": false})
    );
    let tasks = &g["Tasks"];
    let restore = find(tasks, "litestream-restore");
    assert_eq!(
        restore["Lifecycle"],
        json!({"Hook": "prestart", "Sidecar": false})
    );
    assert_eq!(restore["Config"]["image"], "litestream/litestream:0.5");
    assert_eq!(restore["Config"]["entrypoint"], json!(["/bin/sh"]));
    let script = restore["Config"]["args"][1].as_str().unwrap();
    assert!(
        script.starts_with("set -e\n\nDB_DIR=\"/alloc/data/db\"\n"),
        "{script:?}"
    );
    assert!(
        script.contains("\nif [ -f \"$DB_FILE\" ]; then\n  echo \"Database already exists"),
        "{script:?}"
    );
    // A whitespace-only heredoc line keeps its spaces (Go HCL's flush rule).
    assert!(
        script.contains("echo \"Restoring database from S3...\"\n          \nif litestream"),
        "{script:?}"
    );
    assert!(script.ends_with("echo \"Restore complete\"\n"));
    assert_eq!(restore["Templates"][0]["EmbeddedTmpl"], OVERSEERR_TEMPLATE);
    assert_eq!(restore["Templates"][0]["DestPath"], "local/litestream.yml");
    assert_eq!(restore["Templates"][0]["ChangeMode"], "restart");
    assert_eq!(restore["Templates"][0]["Envvars"], Value::Null);
    assert_eq!(restore["Vault"]["Env"], true);
    assert_eq!(restore["Vault"]["DisableFile"], false);
    assert_eq!(restore["Vault"]["ChangeMode"], "restart");
    assert_eq!(restore["Vault"]["Policies"], Value::Null);
    assert_eq!(restore["Resources"]["MemoryMaxMB"], 512);
    assert_eq!(restore["Resources"]["MemoryMB"], 256);
    assert_eq!(restore["Resources"]["CPU"], 100);
    let replicate = find(tasks, "litestream");
    assert_eq!(
        replicate["Lifecycle"],
        json!({"Hook": "poststart", "Sidecar": true})
    );
    let main = find(tasks, "overseerr");
    assert_eq!(main["Lifecycle"], Value::Null);
    assert_eq!(main["Env"], json!({"TZ": "Europe/London"}));
    assert_eq!(main["Resources"]["MemoryMaxMB"], 512);
    assert_eq!(
        main["VolumeMounts"],
        json!([{"Volume": "config", "Destination": "/app/config", "ReadOnly": null,
            "PropagationMode": null, "SELinuxLabel": null}])
    );
    let svc = &g["Services"][0];
    assert_eq!(svc["Name"], "overseerr");
    assert_eq!(svc["PortLabel"], "5055");
    assert_eq!(svc["Provider"], "consul");
    assert_eq!(
        svc["Meta"],
        json!({"envoy_metrics_port": "${NOMAD_HOST_PORT_envoy_metrics}"})
    );
    assert_eq!(
        svc["Tags"],
        json!([
            "traefik.enable=true",
            "traefik.http.routers.overseerr.rule=Host(`overseerr.brmartin.co.uk`)",
            "traefik.http.routers.overseerr.entrypoints=websecure",
            "traefik.consulcatalog.connect=true"
        ])
    );
    let check = &svc["Checks"][0];
    assert_eq!(check["Name"], "overseerr-alive");
    assert_eq!(check["Type"], "http");
    assert_eq!(check["Path"], "/api/v1/status");
    assert_eq!(check["Expose"], true);
    assert_eq!(check["Interval"], 30_000_000_000_i64);
    assert_eq!(check["Timeout"], 5_000_000_000_i64);
    let proxy = &svc["Connect"]["SidecarService"]["Proxy"];
    assert_eq!(
        proxy["TransparentProxy"],
        json!({"UID": "", "OutboundPort": 0, "ExcludeInboundPorts": null, "ExcludeOutboundPorts": null,
            "ExcludeOutboundCIDRs": null, "ExcludeUIDs": null, "NoDNS": false})
    );
    assert_eq!(proxy["Upstreams"], Value::Null);
    assert_eq!(svc["Connect"]["SidecarTask"], Value::Null);
}

#[test]
fn variables_default_override_missing_and_undeclared() {
    let hcl = "variable \"v\" {\n  type    = string\n  default = \"one\"\n}\n\njob \"x\" {\n  meta {\n    v = var.v\n    up = upper(\"${var.v}-x\")\n  }\n  group \"g\" {\n    task \"t\" {\n      driver = \"docker\"\n    }\n  }\n}\n";
    assert_eq!(
        parse(hcl, "").unwrap()["Meta"],
        json!({"v": "one", "up": "ONE-X"})
    );
    assert_eq!(parse(hcl, "v = \"two\"\n").unwrap()["Meta"]["v"], "two");
    let e = parse(hcl, "w = \"two\"\n").unwrap_err();
    assert!(
        e.message
            .starts_with("input.hcl:1,1-2: Undefined variable; A \"w\" variable was passed in"),
        "{e}"
    );
    let elk = read("modules/elk/jobspec.nomad.hcl");
    let e = parse(&elk, "").unwrap_err();
    // No position: measured on Nomad 2.0.5 (api-facts §7), was `input.hcl:1,1-27`.
    assert_eq!(
        e.message,
        "<nil>: Unset variable \"elastic_version\"; A used variable must be set or have a default value; see https://developer.hashicorp.com/nomad/docs/job-specification/hcl2/variables for details."
    );
    let ok = parse(&elk, "elastic_version = \"8.15.0\"").unwrap();
    let image = ok["TaskGroups"][0]["Tasks"][0]["Config"]["image"]
        .as_str()
        .unwrap();
    assert_eq!(
        image,
        "docker.elastic.co/elasticsearch/elasticsearch:8.15.0"
    );
}

#[test]
fn locals_and_runtime_interpolations() {
    let hcl = r#"locals {
  b = "${local.a}-b"
  a = "a"
}
job "x" {
  group "g" {
    task "t" {
      driver = "docker"
      env {
        A    = local.b
        HOST = "${attr.unique.hostname}:${NOMAD_PORT_http}"
        DC   = "${node.datacenter}"
        J    = jsonencode({ k = 1 })
        F    = format("%s-%d", "x", 3)
      }
    }
  }
}
"#;
    let j = parse(hcl, "").unwrap();
    assert_eq!(
        j["TaskGroups"][0]["Tasks"][0]["Env"],
        json!({"A": "a-b", "HOST": "${attr.unique.hostname}:${NOMAD_PORT_http}", "DC": "${node.datacenter}",
            "J": "{\"k\":1}", "F": "x-3"})
    );
}

#[test]
fn top_level_task_is_wrapped_in_a_group() {
    let j = parse(
        "job \"x\" {\n  task \"solo\" {\n    driver = \"exec\"\n  }\n}\n",
        "",
    )
    .unwrap();
    let g = &j["TaskGroups"][0];
    assert_eq!(g["Name"], "solo");
    assert_eq!(g["Tasks"][0]["Name"], "solo");
    assert_eq!(g["Count"], Value::Null);
}

#[test]
fn parse_errors_carry_input_hcl_positions() {
    let e = parse("job \"x\" {\n  group \"g\" {\n    foo = 1\n  }\n}\n", "").unwrap_err();
    assert_eq!(
        e.message,
        "input.hcl:3,5-8: Unsupported argument; An argument named \"foo\" is not expected here."
    );
    let e = parse("job \"x\" {\n  groop \"g\" {}\n}\n", "").unwrap_err();
    assert_eq!(
        e.message,
        "input.hcl:2,3-8: Unsupported block type; Blocks of type \"groop\" are not expected here. Did you mean \"group\"?"
    );
    let e = parse("job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      kill_timeout = \"5 parsecs\"\n    }\n  }\n}\n", "").unwrap_err();
    // The range covers the value inside the quotes (measured on Nomad 2.0.5, api-facts §7).
    assert!(
        e.message
            .starts_with("input.hcl:4,23-32: Unsuitable value type;"),
        "{e}"
    );
    let e = parse(
        "job \"x\" {\n  meta = { a = file(\"/etc/passwd\") }\n}\n",
        "",
    )
    .unwrap_err();
    assert!(
        e.message
            .contains("Call to function \"file\" failed: filesystem function disabled"),
        "{e}"
    );
    let e = parse(
        "job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      drivr = \"docker\"\n    }\n  }\n}\n",
        "",
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "input.hcl:4,7-12: Unsupported argument; An argument named \"drivr\" is not expected here. Did you mean \"driver\"?"
    );
    let e = parse("job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      resources = { cpu = 1 }\n    }\n  }\n}\n", "").unwrap_err();
    assert!(
        e.message
            .ends_with("Did you mean to define a block of type \"resources\"?"),
        "{e}"
    );
    let e = parse("job x y {\n}\n", "").unwrap_err();
    assert_eq!(
        e.message,
        "input.hcl:1,7-8: Extraneous label for job; Only 1 labels (name) are expected for job blocks."
    );
    let e = parse("job \"x\" {\n  group {\n  }\n}\n", "").unwrap_err();
    assert_eq!(
        e.message,
        "input.hcl:2,3-8: Missing name for group; All group blocks must have 1 labels (name)."
    );
    let e = parse("job \"x\" {\n  group \"g\" {\n", "").unwrap_err();
    assert!(e.message.starts_with("input.hcl:"), "{e}");
    let e = parse("", "").unwrap_err();
    assert!(e.message.contains("Missing job block"), "{e}");
}

#[test]
fn levant_templates_are_rejected_clearly() {
    let e = parse(
        "job [[ .name ]] {\n  datacenters = [[ .dcs | toJson ]]\n}\n",
        "",
    )
    .unwrap_err();
    assert!(e.message.contains("Levant"), "{e}");
}

#[test]
fn ports_constraints_and_durations() {
    let j = parse(
        r#"job "x" {
  constraint {
    distinct_hosts = true
  }
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }
  group "g" {
    network {
      port "s" { static = 8080 }
      port "d" {}
    }
    restart {
      interval = "1h30m"
      delay    = "500ms"
    }
    task "t" { driver = "docker" }
  }
}"#,
        "",
    )
    .unwrap();
    assert_eq!(
        j["Constraints"],
        json!([{"LTarget": "", "RTarget": "", "Operand": "distinct_hosts"},
               {"LTarget": "${attr.kernel.name}", "RTarget": "linux", "Operand": "="}])
    );
    let n = &j["TaskGroups"][0]["Networks"][0];
    assert_eq!(
        n["ReservedPorts"],
        json!([{"Label": "s", "Value": 8080, "To": 0, "HostNetwork": "", "IgnoreCollision": false}])
    );
    assert_eq!(
        n["DynamicPorts"],
        json!([{"Label": "d", "Value": 0, "To": 0, "HostNetwork": "", "IgnoreCollision": false}])
    );
    let rp = &j["TaskGroups"][0]["RestartPolicy"];
    assert_eq!(rp["Interval"], 5_400_000_000_000_i64);
    assert_eq!(rp["Delay"], 500_000_000);
}

#[test]
fn dynamic_blocks_expand() {
    let hcl = r#"locals {
  ports = { http = 80, metrics = 9100 }
}
job "x" {
  group "g" {
    network {
      dynamic "port" {
        for_each = local.ports
        labels   = [port.key]
        content {
          to = port.value
        }
      }
    }
    task "t" {
      driver = "docker"
      scaling "cpu" {
        max = 500
      }
    }
  }
}
"#;
    let j = parse(hcl, "").unwrap();
    assert_eq!(
        j["TaskGroups"][0]["Networks"][0]["DynamicPorts"],
        json!([{"Label": "http", "Value": 0, "To": 80, "HostNetwork": "", "IgnoreCollision": false},
               {"Label": "metrics", "Value": 0, "To": 9100, "HostNetwork": "", "IgnoreCollision": false}])
    );
    let sp = &j["TaskGroups"][0]["Tasks"][0]["ScalingPolicies"][0];
    assert_eq!(sp["Type"], "vertical_cpu");
    assert_eq!(sp["Max"], 500);
}

#[test]
fn escaped_interpolation_stays_literal_once() {
    let j = parse(&read("modules/nextcloud/jobspec.nomad.hcl"), "").unwrap();
    let tags = j["TaskGroups"][0]["Services"][0]["Tags"]
        .as_array()
        .unwrap();
    assert!(
        tags.iter().any(|t| t == "traefik.http.middlewares.nextcloud-redirectregex.redirectRegex.replacement=https://${1}/remote.php/dav"),
        "{tags:?}"
    );
}

#[test]
fn id_argument_overrides_the_label() {
    let j = parse("job \"label\" {\n  id = \"other\"\n  group \"g\" {\n    task \"t\" { driver = \"docker\" }\n  }\n}\n", "").unwrap();
    assert_eq!(j["ID"], "other");
    assert_eq!(j["Name"], "label");
}

/// `[[runners]]` inside a heredoc is TOML, not a Levant marker.
#[test]
fn toml_double_brackets_in_heredocs_are_not_levant() {
    let j = parse(&read("modules/gitlab-runner/jobspec.nomad.hcl"), "").unwrap();
    let text = serde_json::to_string(&j).unwrap();
    assert!(
        text.contains("[[runners]]\\n  name = \\\"nomad-amd64\\\""),
        "{text}"
    );
}

#[test]
fn heredoc_escapes_and_flush_rules() {
    let hcl = "job \"x\" {\n  meta {\n    a = <<-EOT\n      line $${NOT} %%{x}\n        indented ${NOMAD_ALLOC_ID}\n    \n      end\n    EOT\n    b = <<EOT\n  keep\nEOT\n    c = \"x ${~ \"  y  \" ~} z\"\n  }\n  group \"g\" {\n    task \"t\" { driver = \"docker\" }\n  }\n}\n";
    let j = parse(hcl, "").unwrap();
    assert_eq!(
        j["Meta"]["a"],
        "line ${NOT} %{x}\n  indented ${NOMAD_ALLOC_ID}\n    \nend\n"
    );
    assert_eq!(j["Meta"]["b"], "  keep\n");
    assert_eq!(
        j["Meta"]["c"], "x  y  z",
        "strip markers trim the literals, not the value"
    );
}

/// A Terraform `templatefile` jobspec fails on its directives instead of half-parsing.
#[test]
fn terraform_template_directives_are_errors() {
    let hcl = "job \"x\" {\n  meta {\n    a = \"%{ if enable_x }on%{ endif }\"\n  }\n}\n";
    let e = parse(hcl, "").unwrap_err();
    assert!(
        e.message
            .starts_with("input.hcl:3,16-24: Invalid template if condition;"),
        "{e}"
    );
    let hcl = "job \"x\" {\n  meta {\n    a = \"%{ for d in dcs }${d}%{ endfor }\"\n  }\n}\n";
    let e = parse(hcl, "").unwrap_err();
    assert!(
        e.message.contains("Iteration over non-iterable value"),
        "{e}"
    );
}

#[test]
fn duplicate_single_blocks_name_the_first_one() {
    let e = parse("job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      resources {}\n      resources {}\n    }\n  }\n}\n", "").unwrap_err();
    assert_eq!(
        e.message,
        "input.hcl:5,7-16: Duplicate resources block; Only one resources block is allowed. Another was defined at input.hcl:4,7-16."
    );
}

#[test]
fn a_key_twice_is_lenient_in_driver_config_only() {
    // Measured on Nomad 2.0.5 (api-facts §7): a driver config body accepts a key twice; the
    // jobspec's own attribute blocks do not.
    let job = |inner: &str| {
        format!(
            "job \"j\" {{\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"docker\"\n{inner}\n    }}\n  }}\n}}\n"
        )
    };
    let ok = parse(
        &job("      config {\n        image = \"a\"\n        image = \"b\"\n      }"),
        "",
    )
    .unwrap();
    assert_eq!(ok["TaskGroups"][0]["Tasks"][0]["Config"]["image"], "b");
    let e = parse(
        &job("      env {\n        A = \"1\"\n        A = \"2\"\n      }"),
        "",
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "input.hcl:7,9-10: Attribute redefined; The argument \"A\" was already set at input.hcl:6,9-10. Each argument may be set only once."
    );
    let e = parse(&job("      user = \"a\"\n      user = \"b\""), "").unwrap_err();
    assert!(
        e.message
            .starts_with("input.hcl:6,7-11: Attribute redefined;"),
        "{e}"
    );
}

/// Errors carry the start of their range and which input it is in, so a caller can point at
/// the user's own file.
#[test]
fn errors_locate_their_input() {
    let job = "job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"docker\"\n      config { image = \"nginx:${var.tag}\" }\n      resources {\n        memory = \"lots\"\n      }\n    }\n  }\n}\n";
    let e = parse(job, "").unwrap_err();
    assert_eq!(
        e.location,
        Some(Location {
            input: Input::Jobspec,
            line: 5,
            column: 36
        }),
        "{e}"
    );
    // HCL's error for a traversal into the `var` object (the range is `.tag`).
    assert_eq!(
        e.description,
        "Unsupported attribute; This object does not have an attribute named \"tag\"."
    );
    let declared = format!("variable \"tag\" {{\n  type = string\n}}\n{job}");
    let e = parse(&declared, "tag = \"1.27\"\n").unwrap_err();
    assert_eq!(
        e.location,
        Some(Location {
            input: Input::Jobspec,
            line: 10,
            column: 19
        }),
        "{e}"
    );
    assert_eq!(
        e.description,
        "Unsuitable value type; Unsuitable value: a number is required"
    );
    let e = parse(&declared, "tag = \n").unwrap_err();
    assert_eq!(e.location.map(|l| l.input), Some(Input::Variables), "{e}");
    let e = parse("job \"x\" {\n  group \"g\" {\n    count = \n  }\n}\n", "").unwrap_err();
    assert_eq!(
        e.location.map(|l| (l.line, l.input)),
        Some((3, Input::Jobspec)),
        "{e}"
    );
    assert!(e.description.starts_with("Invalid syntax;"), "{e}");
    let e = parse(&declared, "").unwrap_err();
    assert_eq!(e.location, None, "{e}");
}

// ---------------------------------------------------------------------------------------------
// What Nomad 2.0.5 accepts and how it answers (api-facts §7, measured), parser side
// (`Canonicalize: false`; the canonicalized shapes are the devstack's, tested there).

/// A job with every §7 shape: periodic, ports, a scaling policy with nested blocks, driver
/// config blocks, a default identity, a task scaling policy.
const SHAPES: &str = r#"
job "shapes" {
  periodic {
    crons = ["0 * * * *"]
  }
  group "g" {
    network {
      port "http" {
        to = 80
      }
      port "admin" {
        static = 8080
      }
    }
    scaling {
      min = 1
      max = 3
      policy {
        check "x" {
          source = "prometheus"
          strategy "target-value" {
            target = 1
          }
        }
      }
    }
    task "t" {
      driver = "docker"
      config {
        image = "nginx"
        labels {
          traefik_enable = "true"
        }
        sysctl {
          somaxconn = "16384"
        }
        logging {
          type = "json-file"
          config {
            max-size = "1m"
          }
        }
      }
      identity {
        env = true
      }
      scaling "cpu" {
        min = 100
        max = 500
        policy {
          cooldown = "1m"
        }
      }
    }
  }
}
"#;

/// A task with nothing optional.
const PLAIN: &str = "job \"plain\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"docker\"\n      config {\n        image = \"nginx\"\n      }\n    }\n  }\n}\n";

fn has(v: &Value, key: &str) -> bool {
    v.as_object().is_some_and(|o| o.contains_key(key))
}

/// §7 shapes: ConsulToken/VaultToken absent, Dispatched false, MaxRunDuration null, unset
/// CSIPluginConfig and Identities absent.
#[test]
fn job_group_and_task_keys_are_nomad_2_0_5s() {
    let j = parse(PLAIN, "").unwrap();
    assert!(!has(&j, "ConsulToken") && !has(&j, "VaultToken"), "{j}");
    assert_eq!(j["Dispatched"], json!(false));
    let g = &j["TaskGroups"][0];
    assert!(has(g, "MaxRunDuration"), "{g}");
    assert_eq!(g["MaxRunDuration"], Value::Null);
    let t = &g["Tasks"][0];
    assert!(!has(t, "CSIPluginConfig") && !has(t, "Identities"), "{t}");
}

/// §7 shapes: Identity.ExtraClaims null, ports' IgnoreCollision false, ScalingPolicies[].{ID,
/// Namespace} "", Periodic.SpecType "cron".
#[test]
fn identity_ports_scaling_and_periodic_are_nomad_2_0_5s() {
    let j = parse(SHAPES, "").unwrap();
    let g = &j["TaskGroups"][0];
    let t = &g["Tasks"][0];
    assert!(has(&t["Identity"], "ExtraClaims"), "{}", t["Identity"]);
    assert_eq!(t["Identity"]["ExtraClaims"], Value::Null);
    let net = &g["Networks"][0];
    assert_eq!(net["DynamicPorts"][0]["IgnoreCollision"], json!(false));
    assert_eq!(net["ReservedPorts"][0]["IgnoreCollision"], json!(false));
    let sp = &t["ScalingPolicies"][0];
    assert_eq!((&sp["ID"], &sp["Namespace"]), (&json!(""), &json!("")));
    assert_eq!(j["Periodic"]["SpecType"], json!("cron"));
}

/// §7 shapes: a block inside a driver `config` is a list of objects (nested ones too), and the
/// blocks inside a scaling `policy` are lists at every level, labels included.
#[test]
fn blocks_in_driver_config_and_scaling_policy_are_lists() {
    let j = parse(SHAPES, "").unwrap();
    let g = &j["TaskGroups"][0];
    let config = &g["Tasks"][0]["Config"];
    assert_eq!(config["labels"], json!([{"traefik_enable": "true"}]));
    assert_eq!(config["sysctl"], json!([{"somaxconn": "16384"}]));
    assert_eq!(
        config["logging"],
        json!([{"type": "json-file", "config": [{"max-size": "1m"}]}])
    );
    assert_eq!(
        g["Scaling"]["Policy"]["check"],
        json!([{"x": [{"source": "prometheus",
            "strategy": [{"target-value": [{"target": 1}]}]}]}])
    );
}

/// §7: the same key twice inside a driver `config` map block (a Docker `labels { … }`) is
/// accepted, the last value winning; the jobspec's own attribute blocks still refuse it.
#[test]
fn a_key_twice_in_a_driver_config_map_block_is_accepted() {
    let labels = PLAIN.replace(
        "image = \"nginx\"",
        "image = \"nginx\"\n        labels {\n          a = \"x\"\n          b = \"y\"\n          a = \"z\"\n        }",
    );
    let j = parse(&labels, "").unwrap();
    assert_eq!(
        j["TaskGroups"][0]["Tasks"][0]["Config"]["labels"],
        json!([{"a": "z", "b": "y"}])
    );
    let meta = PLAIN.replace(
        "driver = \"docker\"",
        "driver = \"docker\"\n      meta {\n        a = \"x\"\n        a = \"y\"\n      }",
    );
    let e = parse(&meta, "").unwrap_err();
    assert!(e.message.contains("Attribute redefined"), "{e}");
}

/// A group with a Consul Connect gateway service: `gateway_body` goes inside `gateway { … }`.
fn gateway_job(gateway_body: &str) -> String {
    format!(
        "job \"gw\" {{\n  group \"g\" {{\n    network {{\n      mode = \"bridge\"\n      port \"inbound\" {{\n        static = 8080\n      }}\n    }}\n    service {{\n      name = \"gw\"\n      port = \"8080\"\n      connect {{\n        gateway {{\n          proxy {{\n            connect_timeout = \"5s\"\n          }}\n          {gateway_body}\n        }}\n      }}\n    }}\n  }}\n}}\n"
    )
}

/// §7: Consul Connect gateways (ingress, terminating, mesh, each with a proxy) parse, in
/// `api.ConsulGateway`'s shape.
#[test]
fn connect_gateways_parse() {
    let gateway = |body: &str| {
        let j = parse(&gateway_job(body), "").unwrap_or_else(|e| panic!("{body}: {e}"));
        j["TaskGroups"][0]["Services"][0]["Connect"]["Gateway"].clone()
    };
    let ingress = gateway(
        "ingress {\n            listener {\n              port     = 8080\n              protocol = \"http\"\n              service {\n                name  = \"web\"\n                hosts = [\"web.example\"]\n              }\n            }\n          }",
    );
    assert_eq!(ingress["Proxy"]["ConnectTimeout"], json!(5_000_000_000_i64));
    let listener = &ingress["Ingress"]["Listeners"][0];
    assert_eq!(listener["Port"], json!(8080));
    assert_eq!(listener["Protocol"], json!("http"));
    assert_eq!(listener["Services"][0]["Name"], json!("web"));
    assert_eq!(listener["Services"][0]["Hosts"], json!(["web.example"]));
    assert_eq!(ingress["Terminating"], Value::Null);
    assert_eq!(ingress["Mesh"], Value::Null);
    let terminating = gateway(
        "terminating {\n            service {\n              name = \"legacy\"\n              ca_file = \"/etc/ca.pem\"\n            }\n          }",
    );
    let linked = &terminating["Terminating"]["Services"][0];
    assert_eq!(linked["Name"], json!("legacy"));
    assert_eq!(linked["CAFile"], json!("/etc/ca.pem"));
    assert_eq!(terminating["Ingress"], Value::Null);
    let mesh = gateway("mesh {}");
    assert!(mesh["Mesh"].is_object(), "{mesh}");
    assert!(mesh["Proxy"].is_object(), "{mesh}");
}

/// §7 errors: Nomad's filesystem functions (go-cty-funcs' eight) are known and disabled; a name
/// Nomad does not have is `Call to unknown function`.
#[test]
fn filesystem_functions_are_disabled_and_others_unknown() {
    for func in [
        "abspath",
        "basename",
        "dirname",
        "file",
        "filebase64",
        "fileexists",
        "fileset",
        "pathexpand",
    ] {
        let hcl = PLAIN.replace("\"nginx\"", &format!("{func}(\"~/x\")"));
        let e = parse(&hcl, "").unwrap_err();
        assert!(
            e.message.contains(&format!(
                "Error in function call; Call to function \"{func}\" failed: filesystem function disabled."
            )),
            "{func}: {e}"
        );
    }
    // Terraform's `templatefile` is not one of Nomad's functions.
    for func in ["nosuchfunction", "templatefile"] {
        let hcl = PLAIN.replace("\"nginx\"", &format!("{func}(\"x\")"));
        let e = parse(&hcl, "").unwrap_err();
        assert!(
            e.message.contains(&format!(
                "Call to unknown function; There is no function named \"{func}\"."
            )),
            "{func}: {e}"
        );
    }
}

/// §7 errors: a wrong type is `Unsuitable value: a number is required`, its range the value
/// inside the quotes.
#[test]
fn a_wrong_type_points_inside_the_quotes() {
    let hcl = "job \"j\" {\n  group \"g\" {\n    count = \"three\"\n    task \"t\" {\n      driver = \"docker\"\n    }\n  }\n}\n";
    let e = parse(hcl, "").unwrap_err();
    assert_eq!(
        e.message,
        "input.hcl:3,14-19: Unsuitable value type; Unsuitable value: a number is required"
    );
}

/// jobspec2's function table beyond the common string and collection functions, with the
/// values go-cty gives (Terraform's documented examples); Terraform-only names are unknown.
#[test]
fn nomads_other_functions_evaluate() {
    let meta = |exprs: &[(&str, &str)]| {
        let body: String = exprs
            .iter()
            .map(|(k, e)| format!("    {k} = {e}\n"))
            .collect();
        let hcl = format!(
            "job \"f\" {{\n  meta = {{\n{body}  }}\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"docker\"\n    }}\n  }}\n}}\n"
        );
        parse(&hcl, "").unwrap_or_else(|e| panic!("{e}"))["Meta"].clone()
    };
    let m = meta(&[
        ("b64", "base64encode(\"hello\")"),
        ("unb64", "base64decode(\"aGVsbG8=\")"),
        ("md5", "md5(\"hello\")"),
        ("sha1", "sha1(\"hello\")"),
        ("sha256", "sha256(\"hello\")"),
        ("sha512", "substr(sha512(\"hello\"), 0, 16)"),
        ("strlen", "strlen(\"héllo\")"),
        ("log", "log(8, 2)"),
        ("chunks", "jsonencode(chunklist([\"a\", \"b\", \"c\"], 2))"),
        (
            "union",
            "jsonencode(setunion([\"b\", \"a\"], [\"c\", \"a\"]))",
        ),
        (
            "inter",
            "jsonencode(setintersection([\"a\", \"b\"], [\"b\", \"c\"]))",
        ),
        ("product", "jsonencode(setproduct([\"a\", \"b\"], [\"x\"]))"),
        ("csv", "jsonencode(csvdecode(\"a,b\\n1,\\\"2,3\\\"\\n\"))"),
        ("uuidv5", "uuidv5(\"dns\", \"www.example.com\")"),
        ("host", "cidrhost(\"10.12.112.0/20\", 268)"),
        ("last", "cidrhost(\"10.12.112.0/20\", -1)"),
        ("mask", "cidrnetmask(\"172.16.0.0/12\")"),
        ("subnet", "cidrsubnet(\"172.16.0.0/12\", 4, 2)"),
        (
            "subnet6",
            "cidrsubnet(\"fd00:fd12:3456:7890::/56\", 16, 162)",
        ),
        (
            "subnets",
            "join(\" \", cidrsubnets(\"10.1.0.0/16\", 4, 4, 8, 4))",
        ),
        ("later", "timeadd(\"2017-11-22T00:00:00Z\", \"10m\")"),
        (
            "date",
            "formatdate(\"EEEE, DD-MMM-YY hh:mm:ss ZZZ\", \"2018-01-02T23:12:01Z\")",
        ),
        // go-cty: `h` is the 24-hour clock, `H` the 12-hour one.
        (
            "date12",
            "formatdate(\"H:mmaa 'on' MMM D, YYYY (ZZZZZ)\", \"2018-01-02T23:12:01-08:00\")",
        ),
        ("converted", "convert(5, string)"),
    ]);
    assert_eq!(
        m,
        json!({
            "b64": "aGVsbG8=",
            "unb64": "hello",
            "md5": "5d41402abc4b2a76b9719d911017c592",
            "sha1": "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
            "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "sha512": "9b71d224bd62f378",
            // Meta is a map of strings.
            "strlen": "5",
            "log": "3",
            "chunks": "[[\"a\",\"b\"],[\"c\"]]",
            "union": "[\"a\",\"b\",\"c\"]",
            "inter": "[\"b\"]",
            "product": "[[\"a\",\"x\"],[\"b\",\"x\"]]",
            "csv": "[{\"a\":\"1\",\"b\":\"2,3\"}]",
            "uuidv5": "2ed6657d-e927-568b-95e1-2665a8aea6a2",
            "host": "10.12.113.12",
            "last": "10.12.127.255",
            "mask": "255.240.0.0",
            "subnet": "172.18.0.0/16",
            "subnet6": "fd00:fd12:3456:7800:a200::/72",
            "subnets": "10.1.0.0/20 10.1.16.0/20 10.1.32.0/24 10.1.48.0/20",
            "later": "2017-11-22T00:10:00Z",
            "date": "Tuesday, 02-Jan-18 23:12:01 UTC",
            "date12": "11:12pm on Jan 2, 2018 (-08:00)",
            "converted": "5"
        })
    );
    for func in ["tostring", "tonumber", "tolist", "regex"] {
        let hcl = PLAIN.replace("\"nginx\"", &format!("{func}(\"x\")"));
        let e = parse(&hcl, "").unwrap_err();
        assert!(
            e.message.contains("Call to unknown function"),
            "{func}: {e}"
        );
    }
    // Nomad has it; this parser cannot compute a bcrypt hash, and says so.
    let e = parse(&PLAIN.replace("\"nginx\"", "bcrypt(\"x\")"), "").unwrap_err();
    assert!(
        e.message.contains(
            "Call to function \"bcrypt\" failed: drover's jobspec parser cannot evaluate it"
        ),
        "{e}"
    );
}

/// jobspec2 converts a variable's value to its declared type and refuses one that does not
/// fit, at the value (the var file's or the default's).
#[test]
fn variable_values_must_fit_their_type() {
    let hcl = "variable \"n\" {\n  type    = number\n  default = 2\n}\n\njob \"x\" {\n  group \"g\" {\n    count = var.n\n    task \"t\" {\n      driver = \"docker\"\n    }\n  }\n}\n";
    assert_eq!(parse(hcl, "").unwrap()["TaskGroups"][0]["Count"], 2);
    assert_eq!(
        parse(hcl, "n = \"3\"\n").unwrap()["TaskGroups"][0]["Count"],
        3
    );
    let e = parse(hcl, "n = \"three\"\n").unwrap_err();
    assert_eq!(
        e.message,
        "input.hcl:1,5-12: Invalid value for variable; The value for n is not compatible with the variable's type constraint: a number is required."
    );
    assert_eq!(e.location.map(|l| l.input), Some(Input::Variables));
    let e = parse(&hcl.replace("default = 2", "default = \"two\""), "").unwrap_err();
    assert_eq!(
        e.message,
        "input.hcl:3,13-18: Invalid default value for variable; This default value is not compatible with the variable's type constraint: a number is required."
    );
}
