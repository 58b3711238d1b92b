//! Unsafe edges: servers that answer blocking queries at once, cross-site requests, broken pipes,
//! unknown apps, log formats and the demo away from the source tree.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Uri};
use drover::live::LiveStore;
use drover::providers::nomad::{NomadClient, NomadConfig};
use tokio_util::sync::CancellationToken;

/// How a fake Nomad sets `X-Nomad-Index` on its immediate `[]` answers.
#[derive(Clone, Copy, Debug)]
enum IndexBehaviour {
    /// The same index every time, whatever `index`/`wait` say (a proxy that drops them).
    Constant,
    /// No `X-Nomad-Index` header at all (a server or proxy that knows nothing of indexes).
    Absent,
    /// A new, higher index on every answer, still at once (a misbehaving server).
    Increasing,
}

/// A fake Nomad on 127.0.0.1:0 that answers every list with `[]` at once; returns its URL and
/// the number of requests per path.
async fn immediate_nomad(behaviour: IndexBehaviour) -> (String, Arc<Mutex<BTreeMap<String, u64>>>) {
    let counts: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let next_index = Arc::new(AtomicU64::new(42));
    let seen = Arc::clone(&counts);
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let seen = Arc::clone(&seen);
        let next_index = Arc::clone(&next_index);
        async move {
            *seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(uri.path().to_string())
                .or_default() += 1;
            let mut headers = HeaderMap::new();
            let index = match behaviour {
                IndexBehaviour::Constant => Some(42),
                IndexBehaviour::Absent => None,
                IndexBehaviour::Increasing => Some(next_index.fetch_add(1, Ordering::SeqCst)),
            };
            if let Some(index) = index {
                headers.insert("X-Nomad-Index", HeaderValue::from(index));
            }
            headers.insert("Content-Type", HeaderValue::from_static("application/json"));
            (headers, "[]")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local addr: {e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), counts)
}

/// Run the LiveStore's watchers against a fake Nomad for `window` of real time; returns the
/// requests per path.
async fn watch_for(behaviour: IndexBehaviour, window: Duration) -> BTreeMap<String, u64> {
    drover::providers::install_crypto_provider();
    let (url, counts) = immediate_nomad(behaviour).await;
    let nomad = NomadClient::new(NomadConfig {
        address: url,
        ..NomadConfig::default()
    })
    .unwrap_or_else(|e| panic!("client: {e}"));
    let live = LiveStore::default();
    let shutdown = CancellationToken::new();
    live.spawn_watchers(nomad, shutdown.clone());
    tokio::time::sleep(window).await;
    shutdown.cancel();
    assert!(
        live.snapshot().ready(),
        "the watchers still fill the cache: {behaviour:?}"
    );
    counts.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn watchers_do_not_hammer_a_server_that_answers_blocking_queries_at_once() {
    let window = Duration::from_secs(3);
    for behaviour in [IndexBehaviour::Constant, IndexBehaviour::Absent] {
        let counts = watch_for(behaviour, window).await;
        for path in ["/v1/jobs", "/v1/volumes"] {
            let n = counts.get(path).copied().unwrap_or(0);
            // Backoff from 0.5 s doubling: about 4 lists in 3 s. Before the fix: hundreds of
            // thousands.
            assert!(
                (1..=8).contains(&n),
                "{behaviour:?}: {n} lists of {path} in {window:?}: {counts:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watchers_cap_their_rate_when_every_answer_has_a_new_index() {
    let window = Duration::from_secs(3);
    let counts = watch_for(IndexBehaviour::Increasing, window).await;
    for path in ["/v1/jobs", "/v1/volumes"] {
        let n = counts.get(path).copied().unwrap_or(0);
        // A burst of 20, then at most 5 a second.
        assert!(
            (1..=20 + 16).contains(&n),
            "{n} lists of {path} in {window:?}: {counts:?}"
        );
    }
}
