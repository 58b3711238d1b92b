//! consul_config_entry end to end: entries created from Git, drift healed or reported, a lost
//! CAS reported as a conflict (never overwritten), prune of owned entries only.

mod common;

use std::time::Duration;

use common::{TestEnv, WAIT};
use reqwest::Method;
use serde_json::{Value, json};

const APP: &str = "mesh";

/// An app with a service-defaults entry inline and a service-intentions entry in an HCL file
/// (as `consul config write` takes it).
fn mesh_app(env: &TestEnv, sync: &str, protocol: &str) {
    env.write(
        "apps/mesh/app.yaml",
        &format!(
            "name: mesh\nsync: {sync}\nresources:\n  \
             - consul_config_entry: {{ Kind: service-defaults, Name: web, Protocol: {protocol} }}\n  \
             - consul_config_entry: {{ file: intentions.hcl }}\n"
        ),
    );
    env.write(
        "apps/mesh/intentions.hcl",
        "Kind = \"service-intentions\"\nName = \"web\"\nSources = [\n  { Name = \"api\", Action = \"allow\" },\n  { Name = \"*\", Action = \"deny\" },\n]\n",
    );
}

async fn consul(env: &TestEnv, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = env
        .http
        .request(method, format!("{}{}", env.devstack.consul_url(), path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("consul {path}: {e}"));
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn entry(env: &TestEnv, kind: &str, name: &str) -> Option<Value> {
    let (status, body) = consul(env, Method::GET, &format!("/v1/config/{kind}/{name}"), None).await;
    (status == 200).then_some(body)
}

/// Write an entry behind drover's back (no cas), as `consul config write` would.
async fn write_behind(env: &TestEnv, body: Value) {
    let (status, answer) = consul(env, Method::PUT, "/v1/config", Some(body)).await;
    assert_eq!((status, answer), (200, json!(true)));
}

/// Change service-defaults/web's protocol behind drover's back, then wait until drover has
/// written it back to Git's `http`.
async fn change_behind_and_wait_healed(env: &TestEnv) {
    write_behind(
        env,
        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc",
               "Meta": {"drover.app": APP}}),
    )
    .await;
    wait_entry(env, "service-defaults", "web", "healed", |e| {
        e.is_some_and(|e| e["Protocol"] == "http")
    })
    .await;
}

/// Wait until the entry satisfies `ok`, observed through Consul's own API.
async fn wait_entry(
    env: &TestEnv,
    kind: &str,
    name: &str,
    what: &str,
    ok: impl Fn(Option<&Value>) -> bool,
) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let e = entry(env, kind, name).await;
        if ok(e.as_ref()) {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{kind}/{name} never {what}; last: {e:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sync_of(status: &drover::controller::AppStatus) -> String {
    format!("{:?}", status.sync)
}

fn writes(requests: &[(String, String)]) -> usize {
    requests
        .iter()
        .filter(|(method, path)| method == "PUT" && path == "/v1/config")
        .count()
}

/// The message drover shows on one resource.
fn message_of(status: &drover::controller::AppStatus, id: &str) -> String {
    status
        .resources
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.message.clone())
        .unwrap_or_default()
}

async fn synced(env: &mut TestEnv, sync: &str) {
    mesh_app(env, sync, "http");
    env.commit("mesh: config entries");
    env.start_drover().await;
    env.wait_synced_healthy(APP, None).await;
}

#[tokio::test]
async fn config_entries_are_created_from_git_owned_in_meta_and_drift_is_healed() {
    let mut env = TestEnv::new().await;
    synced(&mut env, "{ self_heal: true }").await;

    let defaults = entry(&env, "service-defaults", "web").await;
    let defaults = defaults.unwrap_or_else(|| panic!("service-defaults/web created"));
    assert_eq!(defaults["Protocol"], "http");
    assert_eq!(defaults["Meta"]["drover.app"], APP);
    let intentions = entry(&env, "service-intentions", "web").await;
    let intentions = intentions.unwrap_or_else(|| panic!("service-intentions/web created"));
    assert_eq!(intentions["Meta"]["drover.app"], APP);
    assert_eq!(intentions["Sources"].as_array().map(Vec::len), Some(2));

    // Unchanged: what Consul adds (Precedence, Type, re-sorted sources, indexes) is no change,
    // and the live state comes from the held blocking lists: a whole cycle costs no request.
    let before = env.consul_requests().await;
    assert_eq!(writes(&before), 2, "one cas write per entry: {before:?}");
    let status = env.wait_full_cycle(APP).await;
    assert_eq!(sync_of(&status), "Synced");
    assert_eq!(
        env.consul_requests().await,
        before,
        "an unchanged cycle costs no Consul request"
    );

    // Changed behind drover's back: healed.
    change_behind_and_wait_healed(&env).await;
    // Deleted behind drover's back: recreated.
    let (status, _) = consul(
        &env,
        Method::DELETE,
        "/v1/config/service-intentions/web",
        None,
    )
    .await;
    assert_eq!(status, 200);
    wait_entry(&env, "service-intentions", "web", "recreated", |e| {
        e.is_some()
    })
    .await;
    env.wait_synced_healthy(APP, None).await;
    env.shutdown().await;
}

#[tokio::test]
async fn drift_is_reported_with_its_diff_and_left_alone_when_self_heal_is_off() {
    let mut env = TestEnv::new().await;
    synced(&mut env, "{ self_heal: false }").await;

    write_behind(
        &env,
        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc",
               "Meta": {"drover.app": APP}}),
    )
    .await;
    let status = env
        .wait_app(APP, "OutOfSync", |s| sync_of(s) == "OutOfSync")
        .await;
    let diff = status
        .resources
        .iter()
        .find(|r| r.id == "consul_config_entry/service-defaults/web")
        .and_then(|r| r.diff.clone())
        .unwrap_or_default();
    assert!(
        diff.contains("+/- Protocol: \"grpc\" => \"http\""),
        "the diff shows the drift: {diff}"
    );
    let status = env.wait_full_cycle(APP).await;
    assert_eq!(sync_of(&status), "OutOfSync");
    let live = entry(&env, "service-defaults", "web")
        .await
        .unwrap_or_default();
    assert_eq!(live["Protocol"], "grpc", "self_heal off: the drift stays");
    env.shutdown().await;
}

#[tokio::test]
async fn a_write_between_plan_and_apply_is_a_conflict_not_an_overwrite() {
    let mut env = TestEnv::new().await;
    synced(&mut env, "{ self_heal: true }").await;

    // Hold drover's next config write for a while; someone else writes meanwhile.
    let fault = env
        .control(
            "/faults",
            json!({"system": "consul", "method": "PUT", "path": "/v1/config",
                   "kind": "latency", "latency_ms": 1500, "count": 1}),
        )
        .await;
    let fault_id = fault["ID"].as_str().unwrap_or_default().to_string();
    mesh_app(&env, "{ self_heal: true }", "http2");
    env.commit("web speaks http2");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = env
            .http
            .get(format!("{}/_devstack/faults", env.devstack.nomad_url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("faults: {e}"));
        let faults: Value = r.json().await.unwrap_or(Value::Null);
        let fired = faults
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["ID"] == fault_id.as_str() && f["Fired"] == 1);
        if fired {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "drover never wrote");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    write_behind(
        &env,
        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc",
               "Meta": {"drover.app": APP, "by": "someone else"}}),
    )
    .await;
    let status = env
        .wait_app(APP, "a conflict", |s| {
            s.last_sync
                .as_ref()
                .is_some_and(|l| format!("{:?}", l.result) == "Conflict")
        })
        .await;
    let problems = status.last_sync.map(|l| l.problems).unwrap_or_default();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("consul_config_entry/service-defaults/web") && p.contains("cas")),
        "{problems:?}"
    );
    // The conflict is retried from fresh live state on the next cycle: Git wins then, through
    // a cas write on the index that other writer left.
    wait_entry(&env, "service-defaults", "web", "synced to Git", |e| {
        e.is_some_and(|e| e["Protocol"] == "http2")
    })
    .await;
    env.shutdown().await;
}

#[tokio::test]
async fn prune_deletes_only_owned_entries_whose_meta_names_the_app() {
    let mut env = TestEnv::new().await;
    synced(&mut env, "{ self_heal: false, prune: false }").await;

    // prune: false — removed from Git, kept in Consul.
    let only_intentions = "name: mesh\nsync: { self_heal: false, prune: false }\nresources:\n  \
         - consul_config_entry: { file: intentions.hcl }\n";
    env.write("apps/mesh/app.yaml", only_intentions);
    let revision = env.commit("drop service-defaults, prune off");
    env.wait_app(APP, "at the new revision", |s| s.revision == revision)
        .await;
    let status = env.wait_full_cycle(APP).await;
    assert!(
        entry(&env, "service-defaults", "web").await.is_some(),
        "prune off keeps it"
    );
    let message = message_of(&status, "consul_config_entry/service-defaults/web");
    assert!(message.contains("prune is off"), "{message}");

    // prune: true — deleted (owned in the store, Meta names the app).
    env.write(
        "apps/mesh/app.yaml",
        &only_intentions.replace("prune: false", "prune: true"),
    );
    env.commit("prune on");
    wait_entry(&env, "service-defaults", "web", "pruned", |e| e.is_none()).await;

    // An entry drover created but someone rewrote without drover's Meta is never deleted.
    write_behind(
        &env,
        json!({"Kind": "service-intentions", "Name": "web",
               "Sources": [{"Name": "api", "Action": "allow"}]}),
    )
    .await;
    env.write(
        "apps/mesh/app.yaml",
        "name: mesh\nsync: { self_heal: false, prune: true }\nresources: []\n",
    );
    let revision = env.commit("drop the intentions too");
    env.wait_app(APP, "at the last revision", |s| s.revision == revision)
        .await;
    let status = env.wait_full_cycle(APP).await;
    let kept = entry(&env, "service-intentions", "web").await;
    assert!(
        kept.is_some(),
        "an entry without drover's Meta is never deleted"
    );
    let message = message_of(&status, "consul_config_entry/service-intentions/web");
    assert!(
        message.contains("Meta does not say drover.app=mesh"),
        "{message}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn drover_plan_reads_config_entries_from_consul_and_shows_their_diff() {
    let mut env = TestEnv::new().await;
    mesh_app(&env, "{ self_heal: true }", "http");
    env.commit("mesh: config entries");
    let plan = |env: &TestEnv| {
        std::process::Command::new(env!("CARGO_BIN_EXE_drover"))
            .arg("plan")
            .arg(&env.repo)
            .env("NOMAD_ADDR", env.devstack.nomad_url())
            .env("CONSUL_HTTP_ADDR", env.devstack.consul_url())
            .env_remove("NOMAD_TOKEN")
            .env_remove("CONSUL_HTTP_TOKEN")
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let out = tokio::task::block_in_place(|| plan(&env));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains("create consul_config_entry/service-defaults/web"),
        "{stdout}"
    );
    assert!(stdout.contains("+   Protocol: \"http\""), "{stdout}");

    env.start_drover().await;
    env.wait_synced_healthy(APP, None).await;
    let out = tokio::task::block_in_place(|| plan(&env));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "no changes once synced: {stdout}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn an_owned_entry_whose_kind_left_git_is_pruned_after_a_restart() {
    let mut env = TestEnv::new().await;
    synced(&mut env, "{ prune: true }").await;
    env.stop_drover().await;
    // No app declares service-defaults any more; only the store remembers drover's entry.
    env.write(
        "apps/mesh/app.yaml",
        "name: mesh\nsync: { prune: true }\nresources:\n  - consul_config_entry: { file: intentions.hcl }\n",
    );
    env.commit("drop service-defaults while drover is down");
    env.start_drover().await;
    wait_entry(&env, "service-defaults", "web", "pruned", |e| e.is_none()).await;
    assert!(entry(&env, "service-intentions", "web").await.is_some());
    env.shutdown().await;
}

/// An entry changed in Consul is drift to heal as soon as the held list shows it, not at the
/// next resync: the app declaring it is woken and plans again.
#[tokio::test]
async fn an_entry_changed_in_consul_is_healed_at_once_not_at_the_resync() {
    let mut env = TestEnv::new().await;
    mesh_app(&env, "{ self_heal: true }", "http");
    env.commit("mesh: config entries");
    let mut settings = env.settings();
    settings.controller.resync_interval = Duration::from_secs(3600);
    env.start_drover_with(settings).await;
    env.wait_synced_healthy(APP, None).await;
    change_behind_and_wait_healed(&env).await;
    env.shutdown().await;
}

/// Read your writes: while the list of a kind lags drover's own write (here a proxy answers
/// service-defaults lists at once, without blocking, so the watcher polls with a backoff), a
/// cycle woken by the job's progress must not take the entry for missing and write it again.
/// One write per entry.
#[tokio::test]
async fn a_list_that_lags_drovers_write_does_not_make_it_write_again() {
    let mut env = TestEnv::new().await;
    env.control(
        "/faults",
        json!({"system": "consul", "method": "GET", "path": "^/v1/config/service-defaults",
               "kind": "no_block"}),
    )
    .await;
    env.write(
        "apps/web/app.yaml",
        "name: web\nsync: { self_heal: true }\nresources:\n  \
         - nomad_job: { file: job.nomad.hcl }\n  \
         - consul_config_entry: { Kind: service-defaults, Name: web, Protocol: http }\n",
    );
    env.write(
        "apps/web/job.nomad.hcl",
        &common::web_jobspec("web", "nginx:1.27"),
    );
    let revision = env.commit("web with its service-defaults");
    env.start_drover().await;
    env.wait_synced_healthy("web", Some(&revision)).await;
    // Progress cycles ran meanwhile (the job deploying); wait for two more.
    env.wait_full_cycle("web").await;
    let puts = writes(&env.consul_requests().await);
    assert_eq!(
        puts, 1,
        "one write of service-defaults/web, however late the list"
    );
    env.shutdown().await;
}
