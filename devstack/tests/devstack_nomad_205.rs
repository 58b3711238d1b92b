//! The devstack's Nomad API against what was measured on a real Nomad 2.0.5
//! (api-facts.md §7). Every expectation here is a measured value, not the devstack's own output.

use drover_devstack::{Devstack, DevstackConfig};
use serde_json::{Value, json};

struct Api {
    _ds: Devstack,
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        // reqwest is built without a default rustls provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ds = Devstack::start(DevstackConfig {
            time_scale: 0.01,
            ..Default::default()
        })
        .await
        .expect("devstack starts");
        Api {
            base: ds.nomad_url().to_string(),
            _ds: ds,
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.http.request(m, format!("{}{}", self.base, path));
        if let Some(b) = body {
            rb = rb.body(b.to_string());
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, resp.text().await.expect("body"), headers)
    }

    /// `PUT /v1/jobs/parse`; the status and the body (JSON, or the error text).
    async fn parse_raw(&self, hcl: &str, canonicalize: bool) -> (u16, Value) {
        let (s, t, _) = self
            .send(
                "PUT",
                "/v1/jobs/parse",
                Some(json!({"JobHCL": hcl, "Canonicalize": canonicalize})),
            )
            .await;
        (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
    }

    async fn parse(&self, hcl: &str, canonicalize: bool) -> Value {
        let (s, v) = self.parse_raw(hcl, canonicalize).await;
        assert_eq!(s, 200, "parse: {v}");
        v
    }

    /// The error text of a parse Nomad refuses.
    async fn parse_error(&self, hcl: &str) -> String {
        let (s, v) = self.parse_raw(hcl, false).await;
        assert_eq!(s, 400, "parse should fail: {v}");
        v.as_str().expect("a text error").to_string()
    }
}

/// A periodic job with ports, a group `scaling` policy with nested labelled blocks, a Docker
/// `config` with nested blocks, a `resources` block and a vertical `scaling "cpu"` policy.
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
      resources {
        cpu = 100
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

/// A task with nothing optional: no identity, no CSI plugin.
const PLAIN: &str = r#"
job "plain" {
  group "g" {
    task "t" {
      driver = "docker"
      config {
        image = "nginx"
      }
    }
  }
}
"#;

fn has(v: &Value, key: &str) -> bool {
    v.as_object().is_some_and(|o| o.contains_key(key))
}

// Measured on Nomad 2.0.5, api-facts §7 (shapes, Canonicalize false): the job-level
// ConsulToken/VaultToken are absent (removed from the API), Dispatched is false, a group has
// MaxRunDuration null, an unset CSIPluginConfig and Identities are absent.
#[tokio::test]
async fn parse_job_group_and_task_keys_match_nomad_2_0_5() {
    let api = Api::start().await;
    let j = api.parse(PLAIN, false).await;
    assert!(!has(&j, "ConsulToken"), "ConsulToken must be absent: {j}");
    assert!(!has(&j, "VaultToken"), "VaultToken must be absent: {j}");
    assert_eq!(j["Dispatched"], json!(false));
    let g = &j["TaskGroups"][0];
    assert!(has(g, "MaxRunDuration"), "MaxRunDuration must be present");
    assert_eq!(g["MaxRunDuration"], Value::Null);
    let t = &g["Tasks"][0];
    assert!(!has(t, "CSIPluginConfig"), "unset CSIPluginConfig: {t}");
    assert!(!has(t, "Identities"), "unset Identities: {t}");
}

// Measured on Nomad 2.0.5, api-facts §7 (shapes): Identity.ExtraClaims null; ports'
// IgnoreCollision false; ScalingPolicies[].{ID,Namespace} ""; Periodic.SpecType "cron".
#[tokio::test]
async fn parse_identity_ports_scaling_and_periodic_match_nomad_2_0_5() {
    let api = Api::start().await;
    let j = api.parse(SHAPES, false).await;
    let g = &j["TaskGroups"][0];
    let t = &g["Tasks"][0];
    assert!(has(&t["Identity"], "ExtraClaims"), "{}", t["Identity"]);
    assert_eq!(t["Identity"]["ExtraClaims"], Value::Null);
    let net = &g["Networks"][0];
    assert_eq!(net["DynamicPorts"][0]["IgnoreCollision"], json!(false));
    assert_eq!(net["ReservedPorts"][0]["IgnoreCollision"], json!(false));
    let sp = &t["ScalingPolicies"][0];
    assert_eq!(sp["ID"], json!(""));
    assert_eq!(sp["Namespace"], json!(""));
    assert_eq!(j["Periodic"]["SpecType"], json!("cron"));
}

// Measured on Nomad 2.0.5, api-facts §7 (shapes, Canonicalize true): ports' HostNetwork "",
// LogConfig.Enabled null, Resources.MemoryMaxMB null, and with a `resources` block
// Resources.{DiskMB,IOPS,SecretsMB,Networks,Devices,NUMA} null; Periodic.Specs absent.
#[tokio::test]
async fn parse_canonicalized_shapes_match_nomad_2_0_5() {
    let api = Api::start().await;
    let j = api.parse(SHAPES, true).await;
    let g = &j["TaskGroups"][0];
    let net = &g["Networks"][0];
    assert_eq!(net["DynamicPorts"][0]["HostNetwork"], json!(""));
    assert_eq!(net["ReservedPorts"][0]["HostNetwork"], json!(""));
    let t = &g["Tasks"][0];
    assert!(has(&t["LogConfig"], "Enabled"), "{}", t["LogConfig"]);
    assert_eq!(t["LogConfig"]["Enabled"], Value::Null);
    let r = &t["Resources"];
    for k in [
        "MemoryMaxMB",
        "DiskMB",
        "IOPS",
        "SecretsMB",
        "Networks",
        "Devices",
        "NUMA",
    ] {
        assert!(has(r, k), "Resources.{k} must be present: {r}");
        assert_eq!(r[k], Value::Null, "Resources.{k}");
    }
    let cron = api
        .parse(
            &PLAIN.replace("group", "periodic {\n    cron = \"@daily\"\n  }\n  group"),
            true,
        )
        .await;
    assert!(!has(&cron["Periodic"], "Specs"), "{}", cron["Periodic"]);
}

// Measured on Nomad 2.0.5, api-facts §7 (shapes): a block inside a driver `config` is a list of
// objects, and nested blocks inside a scaling `policy` are lists at every level, labels included.
#[tokio::test]
async fn parse_nested_blocks_are_lists_like_nomad_2_0_5() {
    let api = Api::start().await;
    let j = api.parse(SHAPES, false).await;
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

/// A group with a Consul Connect gateway service: `gateway_body` goes inside `gateway { … }`.
fn gateway_job(gateway_body: &str) -> String {
    format!(
        r#"
job "gw" {{
  group "g" {{
    network {{
      mode = "bridge"
      port "inbound" {{
        static = 8080
      }}
    }}
    service {{
      name = "gw"
      port = "8080"
      connect {{
        gateway {{
          proxy {{
            connect_timeout = "5s"
          }}
          {gateway_body}
        }}
      }}
    }}
  }}
}}
"#
    )
}

// Measured on Nomad 2.0.5, api-facts §7: Consul Connect gateways (ingress, terminating, mesh,
// with a proxy block) are accepted by `/v1/jobs/parse`.
#[tokio::test]
async fn parse_accepts_connect_gateways_like_nomad_2_0_5() {
    let api = Api::start().await;
    let ingress = r#"ingress {
            listener {
              port     = 8080
              protocol = "http"
              service {
                name  = "web"
                hosts = ["web.example"]
              }
            }
          }"#;
    let terminating = r#"terminating {
            service {
              name = "legacy"
            }
          }"#;
    for (kind, body) in [
        ("Ingress", ingress),
        ("Terminating", terminating),
        ("Mesh", "mesh {}"),
    ] {
        let j = api.parse(&gateway_job(body), false).await;
        let gw = &j["TaskGroups"][0]["Services"][0]["Connect"]["Gateway"];
        assert!(gw[kind].is_object(), "{kind} gateway: {gw}");
        assert!(gw["Proxy"].is_object(), "gateway proxy: {gw}");
    }
}

// Measured on Nomad 2.0.5, api-facts §7: the same key twice inside a driver `config` map block
// (a Docker `labels { … }`) is accepted; only the jobspec's own attribute blocks refuse it.
#[tokio::test]
async fn parse_accepts_a_key_twice_in_a_driver_config_block_like_nomad_2_0_5() {
    let api = Api::start().await;
    let labels = PLAIN.replace(
        "image = \"nginx\"",
        "image = \"nginx\"\n        labels {\n          a = \"x\"\n          b = \"y\"\n          a = \"x\"\n        }",
    );
    let j = api.parse(&labels, false).await;
    assert_eq!(
        j["TaskGroups"][0]["Tasks"][0]["Config"]["labels"],
        json!([{"a": "x", "b": "y"}])
    );
    let twice = PLAIN.replace(
        "driver = \"docker\"",
        "driver = \"docker\"\n      driver = \"docker\"",
    );
    let err = api.parse_error(&twice).await;
    assert!(err.contains("Attribute redefined"), "{err}");
}

// Measured on Nomad 2.0.5, api-facts §7 (errors): an unset variable has no position:
// `Failed to parse job: <nil>: Unset variable "x"; …`.
#[tokio::test]
async fn parse_unset_variable_error_has_no_position_like_nomad_2_0_5() {
    let api = Api::start().await;
    let hcl = format!("variable \"x\" {{\n  type = string\n}}\n{PLAIN}");
    let err = api.parse_error(&hcl).await;
    assert!(
        err.starts_with("Failed to parse job: <nil>: Unset variable \"x\"; "),
        "{err}"
    );
}

// Measured on Nomad 2.0.5, api-facts §7 (errors): `pathexpand()` and `file()` are known
// filesystem functions that are disabled; an unknown name is `Call to unknown function`.
#[tokio::test]
async fn parse_filesystem_and_unknown_function_errors_like_nomad_2_0_5() {
    let api = Api::start().await;
    for func in ["pathexpand", "file"] {
        let hcl = PLAIN.replace("\"nginx\"", &format!("{func}(\"~/x\")"));
        let err = api.parse_error(&hcl).await;
        assert!(
            err.contains(&format!(
                "Call to function \"{func}\" failed: filesystem function disabled."
            )),
            "{func}: {err}"
        );
    }
    let hcl = PLAIN.replace("\"nginx\"", "nosuchfunction(\"x\")");
    let err = api.parse_error(&hcl).await;
    assert!(err.contains("Call to unknown function"), "{err}");
}

// Measured on Nomad 2.0.5, api-facts §7 (errors): a wrong type is `Unsuitable value: a number
// is required`, and the range covers the value only (inside the quotes).
#[tokio::test]
async fn parse_wrong_type_error_like_nomad_2_0_5() {
    let api = Api::start().await;
    // Line 3 is `    count = "three"`: the quotes are at columns 13 and 19.
    let hcl = "job \"j\" {\n  group \"g\" {\n    count = \"three\"\n    task \"t\" {\n      driver = \"docker\"\n    }\n  }\n}\n";
    let err = api.parse_error(hcl).await;
    assert!(
        err.contains("Unsuitable value: a number is required"),
        "{err}"
    );
    assert!(err.contains("input.hcl:3,14-19:"), "{err}");
}

/// A service job with a group service, a dynamic port and one task, as the API reads it.
const SERVICE: &str = r#"
job "reads" {
  group "web" {
    network {
      port "http" {
        to = 80
      }
    }
    service {
      name = "reads-web"
      port = "http"
    }
    task "server" {
      driver = "docker"
      config {
        image = "nginx"
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"#;

impl Api {
    /// Parse `SERVICE` and register it; the register response's index.
    async fn register_service(&self) -> u64 {
        let job = self.parse(SERVICE, false).await;
        let (s, t, _) = self
            .send("PUT", "/v1/jobs", Some(json!({"Job": job})))
            .await;
        assert_eq!(s, 200, "register: {t}");
        let v: Value = serde_json::from_str(&t).expect("register JSON");
        v["Index"].as_u64().expect("register index")
    }

    async fn get_ok(&self, path: &str) -> Value {
        let (s, t, _) = self.send("GET", path, None).await;
        assert_eq!(s, 200, "GET {path}: {t}");
        serde_json::from_str(&t).expect("JSON body")
    }
}

/// The keys of a job as `GET /v1/job/:id` and `/versions` serve it, per api-facts §7.
fn assert_served_job_shape(j: &Value) {
    for k in ["ConsulToken", "VaultToken", "Migrate", "Reschedule"] {
        assert!(!has(j, k), "job-level {k} must be absent");
    }
    let g = &j["TaskGroups"][0];
    assert!(has(g, "MaxRunDuration"), "TaskGroups[].MaxRunDuration");
    assert_eq!(g["Services"][0]["Namespace"], json!("default"));
    for t in g["Tasks"].as_array().expect("tasks") {
        let id = &t["Identity"];
        for k in [
            "Name",
            "Audience",
            "ChangeMode",
            "ChangeSignal",
            "Env",
            "File",
            "Filepath",
            "ServiceName",
            "TTL",
            "ExtraClaims",
        ] {
            assert!(has(id, k), "task {} Identity.{k}: {id}", t["Name"]);
        }
    }
    let net = &g["Networks"][0];
    for k in [
        "CIDR",
        "CNI",
        "DNS",
        "Device",
        "Hostname",
        "IP",
        "MBits",
        "ReservedPorts",
    ] {
        assert!(
            !has(net, k),
            "empty network field {k} must be absent: {net}"
        );
    }
    assert!(net["DynamicPorts"].is_array(), "{net}");
}

// Measured on Nomad 2.0.5, api-facts §7 (read paths): `GET /v1/job/:id` and `/versions` give
// every task a default workload Identity, every group service a Namespace, and
// TaskGroups[].MaxRunDuration; they omit the job-level ConsulToken, VaultToken, Migrate and
// Reschedule (a service job without them) and the empty network fields.
#[tokio::test]
async fn job_read_shapes_match_nomad_2_0_5() {
    let api = Api::start().await;
    api.register_service().await;
    let j = api.get_ok("/v1/job/reads").await;
    assert_served_job_shape(&j);
    let versions = api.get_ok("/v1/job/reads/versions").await;
    assert_served_job_shape(&versions["Versions"][0]);
}

// Measured on Nomad 2.0.5, api-facts §7 (read paths): allocation list stubs have
// `DesiredTransition.MigrateDisablePlacement` and no `AllocatedResources`.
#[tokio::test]
async fn job_allocation_stubs_match_nomad_2_0_5() {
    let api = Api::start().await;
    let mut index = api.register_service().await;
    // Blocking reads until the scheduler has placed the allocation.
    let stubs = loop {
        let (s, t, h) = api
            .send(
                "GET",
                &format!("/v1/job/reads/allocations?index={index}&wait=5s"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{t}");
        let v: Value = serde_json::from_str(&t).expect("JSON");
        if v.as_array().is_some_and(|a| !a.is_empty()) {
            break v;
        }
        let next = h
            .get("x-nomad-index")
            .and_then(|x| x.to_str().ok())
            .and_then(|x| x.parse::<u64>().ok())
            .expect("X-Nomad-Index");
        assert!(next >= index, "the index never goes back");
        index = next;
    };
    let stub = &stubs[0];
    assert!(
        has(&stub["DesiredTransition"], "MigrateDisablePlacement"),
        "{}",
        stub["DesiredTransition"]
    );
    assert!(!has(stub, "AllocatedResources"), "{stub}");
}

// Measured on Nomad 2.0.5, api-facts §7 (read paths): the bodies of `GET /v1/job/:id/scale`
// and `PUT /v1/job/:id/plan` have no Index/KnownLeader/LastContact/NextToken.
#[tokio::test]
async fn scale_status_and_plan_bodies_have_no_query_meta_like_nomad_2_0_5() {
    let api = Api::start().await;
    api.register_service().await;
    let scale = api.get_ok("/v1/job/reads/scale").await;
    let job = api.parse(SERVICE, false).await;
    let (s, t, h) = api
        .send(
            "PUT",
            "/v1/job/reads/plan",
            Some(json!({"Job": job, "Diff": true})),
        )
        .await;
    assert_eq!(s, 200, "plan: {t}");
    assert!(
        h.contains_key("x-nomad-index"),
        "the index is in the header"
    );
    let plan: Value = serde_json::from_str(&t).expect("plan JSON");
    for k in ["Index", "KnownLeader", "LastContact", "NextToken"] {
        assert!(!has(&scale, k), "scale body has {k}: {scale}");
        assert!(!has(&plan, k), "plan body has {k}");
    }
}

// Measured on Nomad 2.0.5, api-facts §7 (read paths): `GET /v1/job/nosuch` is 404
// `job not found` with X-Nomad-Index/KnownLeader/LastContact; `GET /v1/agent/self` and
// `/v1/status/leader` have none of those headers.
#[tokio::test]
async fn query_meta_headers_match_nomad_2_0_5() {
    let api = Api::start().await;
    let (s, t, h) = api.send("GET", "/v1/job/nosuch", None).await;
    assert_eq!((s, t.as_str()), (404, "job not found"));
    for k in [
        "x-nomad-index",
        "x-nomad-knownleader",
        "x-nomad-lastcontact",
    ] {
        assert!(h.contains_key(k), "404 job read lacks {k}");
    }
    for path in ["/v1/agent/self", "/v1/status/leader"] {
        let (s, _, h) = api.send("GET", path, None).await;
        assert_eq!(s, 200, "{path}");
        for k in [
            "x-nomad-index",
            "x-nomad-knownleader",
            "x-nomad-lastcontact",
        ] {
            assert!(!h.contains_key(k), "{path} has {k}");
        }
    }
}

// Measured on Nomad 2.0.5, api-facts §7 (read paths): namespaces have Hash,
// OptionalExtraClaims and RequiredExtraClaims; node stubs have
// Drivers.<name>.{Attributes, Detected, Healthy, HealthDescription, UpdateTime} and no
// Attributes/NodeResources/ReservedResources; `GET /v1/jobs` has
// JobSummary.Summary.<group>.{Queued, Complete, Failed, Running, Starting, Lost, Unknown}.
#[tokio::test]
async fn namespace_node_and_job_list_shapes_match_nomad_2_0_5() {
    let api = Api::start().await;
    let namespaces = api.get_ok("/v1/namespaces").await;
    for ns in namespaces.as_array().expect("namespaces") {
        for k in ["Hash", "OptionalExtraClaims", "RequiredExtraClaims"] {
            assert!(has(ns, k), "namespace {k}: {ns}");
        }
    }
    let nodes = api.get_ok("/v1/nodes").await;
    let nodes = nodes.as_array().expect("nodes");
    assert!(!nodes.is_empty());
    for n in nodes {
        for k in ["Attributes", "NodeResources", "ReservedResources"] {
            assert!(!has(n, k), "node stub has {k}");
        }
        let drivers = n["Drivers"].as_object().expect("Drivers");
        assert!(!drivers.is_empty());
        for d in drivers.values() {
            for k in [
                "Attributes",
                "Detected",
                "Healthy",
                "HealthDescription",
                "UpdateTime",
            ] {
                assert!(has(d, k), "driver {k}: {d}");
            }
        }
    }
    api.register_service().await;
    let jobs = api.get_ok("/v1/jobs").await;
    let summary = &jobs[0]["JobSummary"]["Summary"]["web"];
    for k in [
        "Queued", "Complete", "Failed", "Running", "Starting", "Lost", "Unknown",
    ] {
        assert!(summary[k].is_u64(), "Summary.web.{k}: {summary}");
    }
}
