//! The example media stack (`desired-state/`): overseerr through the shipped `litestream_service`
//! pack, minio, glusterfs-csi, and traefik, sonarr, radarr, prowlarr, jellyfin, qbittorrent
//! through `web_service`. `drover demo` brings every app Synced and Healthy with every resource
//! placed on the devstack's nodes, and what the example's Overseerr app renders is the seed's job.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// Every app of desired-state/, sorted as the API lists them.
const STACK: [&str; 9] = [
    "glusterfs-csi",
    "jellyfin",
    "minio",
    "overseerr",
    "prowlarr",
    "qbittorrent",
    "radarr",
    "sonarr",
    "traefik",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_brings_the_whole_media_stack_to_synced_and_healthy() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let demo = common::start_demo(tmp.path(), tmp.path(), &[]).await;
    let http = common::http_client();
    let done = |app: &Value| {
        app["sync"] == "Synced"
            && app["health"] == "Healthy"
            && app["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|r| r["change"] == "unchanged" && r["health"] == "Healthy")
    };
    let deadline = tokio::time::Instant::now() + common::WAIT * 2;
    let mut apps = Value::Null;
    loop {
        if let Ok(response) = http.get(format!("{}api/v1/apps", demo.url)).send().await
            && let Ok(answer) = response.json::<Value>().await
        {
            apps = answer;
        }
        let listed = apps.as_array().cloned().unwrap_or_default();
        let names: Vec<&str> = listed.iter().filter_map(|a| a["name"].as_str()).collect();
        if names == STACK && listed.iter().all(done) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the demo never got the whole stack Synced and Healthy: {apps:#}"
        );
        // Polling the demo's API from outside: there is no event to await across processes.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Each pack app's job is one of its resources, Healthy (its allocations placed and running).
    for app in ["overseerr", "sonarr", "traefik"] {
        let listed = apps
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["name"] == app)
            .unwrap_or_else(|| panic!("{app} missing"));
        let job = format!("nomad_job/default/{app}");
        assert!(
            listed["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["id"] == job.as_str() && r["health"] == "Healthy"),
            "{listed:#}"
        );
    }
}

/// `drover render desired-state --app overseerr` prints the job the pack renders, under a header
/// naming the shipped template: byte for byte the seed's hand-written jobspec (the golden file).
#[test]
fn drover_render_shows_the_overseerr_job_from_the_shipped_pack() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["render", "desired-state", "--app", "overseerr"])
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let header = "# overseerr: nomad_job/default/overseerr (from drover:charts/litestream_service/templates/litestream_service.nomad.tpl)\n";
    let start = stdout
        .find(header)
        .unwrap_or_else(|| panic!("no header: {stdout}"))
        + header.len();
    let golden =
        std::fs::read_to_string(root.join("tests/fixtures/packs/expected/overseerr.nomad"))
            .unwrap_or_else(|e| panic!("{e}"));
    let golden = golden.trim_end();
    let shown = &stdout[start..];
    assert_eq!(&shown[..golden.len().min(shown.len())], golden);
}
