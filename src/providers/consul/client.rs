//! `ConsulClient`: one reqwest client, the CLI's environment, retries on transient errors only,
//! config entries read with blocking queries and written with `cas`.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::config::ConsulConfig;
use super::entry::ConfigEntry;
use super::error::ConsulError;
use crate::providers::http::{client_builder, path_segment};
use crate::providers::nomad::{Indexed, QueryOptions};
use crate::telemetry::metrics::RequestCounter;

/// A Consul API client (config entries so far).
#[derive(Debug, Clone)]
pub struct ConsulClient {
    http: reqwest::Client,
    config: ConsulConfig,
    /// Where each request is counted (`None`: nowhere), by status code.
    requests: Option<RequestCounter>,
}

impl ConsulClient {
    /// Build a client; reads certificate files now so a bad path fails early.
    pub fn new(config: ConsulConfig) -> Result<ConsulClient, ConsulError> {
        let http = client_builder(&config.tls)
            .and_then(|b| b.build().map_err(|e| format!("building HTTP client: {e}")))
            .map_err(ConsulError::Config)?;
        Ok(ConsulClient {
            http,
            config,
            requests: None,
        })
    }

    /// The same client, counting every request it (and its clones) sends in `requests`.
    pub fn counting_requests(mut self, requests: RequestCounter) -> ConsulClient {
        self.requests = Some(requests);
        self
    }

    /// The settings in use.
    pub fn config(&self) -> &ConsulConfig {
        &self.config
    }

    /// `GET /v1/config/:kind`, blocking when `query.index > 0`: Consul holds the request until
    /// the kind's entries change or the wait (default 5 min, capped at 10) elapses; either way
    /// the answer carries `X-Consul-Index`, which is never 0.
    pub async fn list_config_entries(
        &self,
        kind: &str,
        query: QueryOptions,
    ) -> Result<Indexed<Vec<ConfigEntry>>, ConsulError> {
        let mut params = Vec::new();
        if query.index > 0 {
            params.push(("index", query.index.to_string()));
            if let Some(wait) = query.wait {
                params.push(("wait", format!("{}ms", wait.as_millis())));
            }
        }
        let path = format!("/v1/config/{}", path_segment(kind));
        let blocking_wait = (query.index > 0).then(|| query.wait.unwrap_or(DEFAULT_WAIT));
        let answer: Indexed<Option<Vec<ConfigEntry>>> = self
            .send(Method::GET, &path, &params, None, blocking_wait)
            .await?;
        Ok(Indexed {
            value: answer.value.unwrap_or_default(),
            index: answer.index,
        })
    }

    /// `GET /v1/config/:kind/:name`; `None` on 404.
    pub async fn read_config_entry(
        &self,
        kind: &str,
        name: &str,
    ) -> Result<Option<ConfigEntry>, ConsulError> {
        let path = format!("/v1/config/{}/{}", path_segment(kind), path_segment(name));
        match self.send(Method::GET, &path, &[], None, None).await {
            Ok(answer) => Ok(Some(answer.value)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /v1/config?cas=<cas>`: create when `cas` is 0 (only if absent), else replace the
    /// entry only if its `ModifyIndex` is still `cas`. `Ok(false)` means the CAS lost: someone
    /// else wrote the entry; it is never retried blindly. (Consul answers `true` without a
    /// write when the entry already has exactly this content, whatever the index.)
    pub async fn write_config_entry(&self, entry: &Value, cas: u64) -> Result<bool, ConsulError> {
        self.send(
            Method::PUT,
            "/v1/config",
            &[("cas", cas.to_string())],
            Some(entry),
            None,
        )
        .await
        .map(|answer| answer.value)
    }

    /// `DELETE /v1/config/:kind/:name?cas=<modify_index>`: `Ok(false)` when the entry changed
    /// since `modify_index` was read.
    pub async fn delete_config_entry(
        &self,
        kind: &str,
        name: &str,
        modify_index: u64,
    ) -> Result<bool, ConsulError> {
        let path = format!("/v1/config/{}/{}", path_segment(kind), path_segment(name));
        self.send(
            Method::DELETE,
            &path,
            &[("cas", modify_index.to_string())],
            None,
            None,
        )
        .await
        .map(|answer| answer.value)
    }

    /// Send with retries (exponential backoff with jitter) on transient errors only. A CAS write
    /// retried after it did land still answers `true`: Consul skips a write that changes nothing.
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: Option<&Value>,
        blocking_wait: Option<Duration>,
    ) -> Result<Indexed<T>, ConsulError> {
        let attempt = || async {
            self.send_once(method.clone(), path, params, body, blocking_wait)
                .await
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(self.config.max_retries)
            .with_jitter();
        attempt
            .retry(backoff)
            .when(ConsulError::is_transient)
            .notify(|error, after| {
                tracing::warn!(%error, retry_in = ?after, "consul call failed; retrying");
            })
            .await
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: Option<&Value>,
        blocking_wait: Option<Duration>,
    ) -> Result<Indexed<T>, ConsulError> {
        let transport = |source| ConsulError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            source,
        };
        let mut request = self
            .http
            .request(method.clone(), format!("{}{}", self.config.address, path))
            .query(params);
        if let Some(namespace) = &self.config.namespace {
            request = request.query(&[("ns", namespace)]);
        }
        if let Some(token) = &self.config.token {
            request = request.header("X-Consul-Token", token.expose());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        // A blocking query may take its whole wait plus Consul's jitter of wait/16.
        let timeout = match blocking_wait {
            Some(wait) => wait + wait / 16 + self.config.request_timeout,
            None => self.config.request_timeout,
        };
        let sent = request.timeout(timeout).send().await;
        if let Some(requests) = &self.requests {
            match &sent {
                Ok(response) => requests.answered(response.status().as_u16()),
                Err(_) => requests.unanswered(),
            }
        }
        let response = sent.map_err(transport)?;
        let status = response.status();
        // Consul never sends 0; the documented client rule reads anything below 1 as 1.
        let index = response
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            .max(1);
        let bytes = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(ConsulError::Status {
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).trim().to_string(),
            });
        }
        let value = serde_json::from_slice(&bytes).map_err(|source| ConsulError::Decode {
            method: method.to_string(),
            path: path.to_string(),
            source,
        })?;
        Ok(Indexed { value, index })
    }
}

/// Consul's default blocking wait, used to size the timeout when the caller gives none.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// The index to block on next, by Consul's documented client rules: start over (0) when the
/// index went backwards (a snapshot restore, a new cluster), and never block on less than 1.
pub fn next_blocking_index(previous: u64, answered: u64) -> u64 {
    if answered < previous {
        0
    } else {
        answered.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_that_goes_backwards_starts_over() {
        assert_eq!(next_blocking_index(10, 12), 12);
        assert_eq!(next_blocking_index(10, 10), 10);
        assert_eq!(next_blocking_index(10, 3), 0);
        assert_eq!(next_blocking_index(0, 0), 1);
    }
}
