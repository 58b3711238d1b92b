//! Nomad variable locks for leader election (api-facts §1.11): a lock that is not renewed expires
//! after its TTL, and nobody can acquire it again until its lock delay has passed (409 with the
//! current variable meanwhile). Simulated time: TTL 10 s and lock delay 30 s are 100 ms and 300 ms.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{fast_devstack, http_client};

async fn acquire(http: &reqwest::Client, base: &str) -> (u16, Value) {
    let response = http
        .put(format!("{base}/v1/var/drover/leader?lock-acquire"))
        .json(&json!({"Items": {"holder": "a"}, "Lock": {"TTL": "10s", "LockDelay": "30s"}}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_expired_lock_stays_unavailable_for_its_lock_delay() {
    let ds = fast_devstack().await;
    let http = http_client();
    let base = ds.nomad_url();
    let started = tokio::time::Instant::now();
    let (status, first) = acquire(&http, &base).await;
    assert_eq!(status, 200, "{first}");
    let first_id = first["Lock"]["ID"].as_str().unwrap().to_string();
    assert_eq!(first["Lock"]["LockDelay"], "30s");

    // Nobody renews: the lock expires after 100 ms, then the 300 ms lock delay runs.
    let (taken_after, second) = loop {
        let (status, body) = acquire(&http, &base).await;
        if status == 200 {
            break (started.elapsed(), body);
        }
        assert_eq!(status, 409, "{body}");
        assert_eq!(
            body["Path"], "drover/leader",
            "a conflict carries the variable: {body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never acquired"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        taken_after >= Duration::from_millis(400),
        "acquired {taken_after:?} after the first acquire: TTL + lock delay is 400 ms"
    );
    assert_ne!(second["Lock"]["ID"].as_str(), Some(first_id.as_str()));

    // The first holder lost it: its renew is refused.
    let renew = http
        .put(format!("{base}/v1/var/drover/leader?lock-renew"))
        .json(&json!({"Lock": {"ID": first_id}}))
        .send()
        .await
        .unwrap();
    assert_eq!(renew.status().as_u16(), 409);
    ds.shutdown().await;
}
