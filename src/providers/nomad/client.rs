//! `NomadClient`: one reqwest client, the CLI's environment, retries on transient errors only.

use std::time::Duration;

use crate::telemetry::metrics::RequestCounter;
use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::config::NomadConfig;
use super::error::NomadError;
use super::job_body;
use super::types::{
    AllocListStub, CsiPlugin, CsiVolume, CsiVolumeRequest, CsiVolumeStub, Deployment, EventBatch,
    Job, JobListStub, JobPlanResponse, JobRegisterResponse,
};

/// Longest line of the event stream kept in memory (a job of thousands of groups is large, but
/// not this large); a longer one ends the stream.
const MAX_EVENT_LINE: usize = 64 * 1024 * 1024;

/// An open `GET /v1/event/stream`, read one NDJSON line at a time.
#[derive(Debug)]
pub struct EventStream {
    response: reqwest::Response,
    buf: Vec<u8>,
    idle: Duration,
}

impl EventStream {
    /// The next line: a batch of events, or a heartbeat (`index` 0, no events). `Ok(None)` when
    /// the server ended the stream or sent nothing, not even a heartbeat, for the idle limit.
    pub async fn next_batch(&mut self) -> Result<Option<EventBatch>, NomadError> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return serde_json::from_slice(&line).map(Some).map_err(|source| {
                    NomadError::Decode {
                        method: "GET".into(),
                        path: EVENT_STREAM_PATH.into(),
                        source,
                    }
                });
            }
            if self.buf.len() > MAX_EVENT_LINE {
                return Ok(None);
            }
            let chunk = match tokio::time::timeout(self.idle, self.response.chunk()).await {
                Err(_) => return Ok(None),
                Ok(chunk) => chunk.map_err(|source| NomadError::Transport {
                    method: "GET".into(),
                    path: EVENT_STREAM_PATH.into(),
                    source,
                })?,
            };
            match chunk {
                Some(bytes) => self.buf.extend_from_slice(&bytes),
                None => return Ok(None),
            }
        }
    }
}

const EVENT_STREAM_PATH: &str = "/v1/event/stream";

/// Blocking-query options: return when the index passes `index`, or after `wait`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// Last index seen; 0 returns at once.
    pub index: u64,
    /// Longest wait (Nomad caps it at 5 minutes).
    pub wait: Option<Duration>,
}

/// A response with its `X-Nomad-Index`.
#[derive(Debug, Clone, PartialEq)]
pub struct Indexed<T> {
    /// The body.
    pub value: T,
    /// `X-Nomad-Index`.
    pub index: u64,
}

/// Options of a job registration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegisterOptions {
    /// Compare-and-set: the `JobModifyIndex` the job must still have (0: must not exist).
    pub enforce_index: Option<u64>,
    /// Keep the live counts of groups (for groups an autoscaler owns).
    pub preserve_counts: bool,
    /// The original jobspec, stored for `nomad job inspect`/the UI (`Submission`).
    pub submission_source: Option<String>,
    /// Format of `submission_source` (`hcl2` or `json`).
    pub submission_format: Option<String>,
    /// Var-file content sent with the submission.
    pub submission_variables: Option<String>,
}

/// A typed Nomad API client.
#[derive(Debug, Clone)]
pub struct NomadClient {
    http: reqwest::Client,
    config: NomadConfig,
    base: String,
    /// Where each request is counted (`None`: nowhere), by status code.
    requests: Option<RequestCounter>,
}

impl NomadClient {
    /// Build a client; reads certificate files now so a bad path fails early.
    pub fn new(config: NomadConfig) -> Result<NomadClient, NomadError> {
        crate::providers::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("drover/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_cert {
            let pem = read_file(path)?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| NomadError::Config(format!("{}: {e}", path.display())))?;
            builder = builder.tls_certs_only([cert]);
        }
        if let (Some(cert), Some(key)) = (&config.client_cert, &config.client_key) {
            let mut pem = read_file(cert)?;
            pem.push(b'\n');
            pem.extend(read_file(key)?);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| NomadError::Config(format!("{}: {e}", cert.display())))?;
            builder = builder.identity(identity);
        }
        if config.skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let mut base = config.address.clone();
        if let Some(server_name) = &config.tls_server_name {
            // Verify the certificate against the server name while connecting to the address.
            let url = url::Url::parse(&config.address)
                .map_err(|e| NomadError::Config(format!("NOMAD_ADDR {}: {e}", config.address)))?;
            let addrs = url
                .socket_addrs(|| Some(4646))
                .map_err(|e| NomadError::Config(format!("resolving {}: {e}", config.address)))?;
            if let Some(addr) = addrs.first() {
                builder = builder.resolve(server_name, *addr);
                let mut rewritten = url.clone();
                rewritten
                    .set_host(Some(server_name))
                    .map_err(|e| NomadError::Config(format!("NOMAD_TLS_SERVER_NAME: {e}")))?;
                base = rewritten.as_str().trim_end_matches('/').to_string();
            }
        }
        let http = builder
            .build()
            .map_err(|e| NomadError::Config(format!("building HTTP client: {e}")))?;
        Ok(NomadClient {
            http,
            config,
            base,
            requests: None,
        })
    }

    /// The same client, counting every request it (and its clones) sends in `requests`.
    pub fn counting_requests(mut self, requests: RequestCounter) -> NomadClient {
        self.requests = Some(requests);
        self
    }

    /// The settings in use.
    pub fn config(&self) -> &NomadConfig {
        &self.config
    }

    /// `POST /v1/jobs/parse`: let the cluster's own parser turn HCL2 into job JSON.
    pub async fn parse_job(
        &self,
        hcl: &str,
        variables: Option<&str>,
        canonicalize: bool,
    ) -> Result<Value, NomadError> {
        let body = JobsParseRequest {
            job_hcl: hcl,
            canonicalize,
            variables: variables.filter(|v| !v.trim().is_empty()),
        };
        self.send(Method::POST, "/v1/jobs/parse", &[], Some(&body))
            .await
            .map(|r| r.value)
    }

    /// `POST /v1/job/:id/plan` with `Diff: true`: the server decides what would change.
    pub async fn plan_job(&self, job: &Value) -> Result<JobPlanResponse, NomadError> {
        let (id, ns) = job_body::identity(job, &self.config.namespace);
        let body = JobPlanRequest { job, diff: true };
        self.send(
            Method::POST,
            &format!("/v1/job/{}/plan", enc(&id)),
            &[("namespace", ns)],
            Some(&body),
        )
        .await
        .map(|r| r.value)
    }

    /// `POST /v1/jobs`: register, with `EnforceIndex` when asked (a conflict is a 500 whose text
    /// starts with `Enforcing job modify index`; see [`NomadError::is_enforce_index_conflict`]).
    pub async fn register_job(
        &self,
        job: &Value,
        options: &RegisterOptions,
    ) -> Result<JobRegisterResponse, NomadError> {
        let (_, ns) = job_body::identity(job, &self.config.namespace);
        let body = JobRegisterRequest {
            job,
            enforce_index: options.enforce_index.is_some(),
            job_modify_index: options.enforce_index,
            preserve_counts: options.preserve_counts,
            submission: options
                .submission_source
                .as_deref()
                .map(|source| JobSubmission {
                    source,
                    format: options.submission_format.as_deref().unwrap_or("hcl2"),
                    variables: options.submission_variables.as_deref().unwrap_or_default(),
                }),
        };
        // A register is not idempotent in its side effects (evaluations), so it is retried
        // only when the request never reached the server.
        self.send_once(Method::POST, "/v1/jobs", &[("namespace", ns)], Some(&body))
            .await
            .map(|r| r.value)
    }

    /// `GET /v1/job/:id` (the fields drover reads); `None` on 404.
    pub async fn read_job(&self, namespace: &str, id: &str) -> Result<Option<Job>, NomadError> {
        self.optional(self.get(
            &format!("/v1/job/{}", enc(id)),
            namespace,
            QueryOptions::default(),
        ))
        .await
    }

    /// `GET /v1/job/:id` as the server sends it, every field kept (for `drover import nomad`);
    /// `None` on 404.
    pub async fn read_job_json(
        &self,
        namespace: &str,
        id: &str,
    ) -> Result<Option<Value>, NomadError> {
        self.optional(self.get(
            &format!("/v1/job/{}", enc(id)),
            namespace,
            QueryOptions::default(),
        ))
        .await
    }

    /// `GET /v1/job/:id/submission`: the jobspec source stored with the job's current version
    /// (`Source`, `Format`, `VariableFlags`, `Variables`); `None` when Nomad keeps none (404).
    pub async fn read_job_submission(
        &self,
        namespace: &str,
        id: &str,
    ) -> Result<Option<Value>, NomadError> {
        self.optional(self.get(
            &format!("/v1/job/{}/submission", enc(id)),
            namespace,
            QueryOptions::default(),
        ))
        .await
    }

    /// `GET /v1/jobs` (with `meta=true`), blocking when `query.index > 0`. `namespace` may be `*`.
    pub async fn list_jobs(
        &self,
        namespace: &str,
        query: QueryOptions,
    ) -> Result<Indexed<Vec<JobListStub>>, NomadError> {
        let mut params = vec![
            ("namespace", namespace.to_string()),
            ("meta", "true".into()),
        ];
        push_blocking(&mut params, query);
        self.send(Method::GET, "/v1/jobs", &params, None::<&()>)
            .await
    }

    /// One job's list stub (`GET /v1/jobs?prefix=<id>`), `None` when it does not exist.
    pub async fn job_stub(
        &self,
        namespace: &str,
        id: &str,
    ) -> Result<Option<JobListStub>, NomadError> {
        let params = vec![
            ("namespace", namespace.to_string()),
            ("meta", "true".into()),
            ("prefix", id.to_string()),
        ];
        let listed: Indexed<Vec<JobListStub>> = self
            .send(Method::GET, "/v1/jobs", &params, None::<&()>)
            .await?;
        Ok(listed.value.into_iter().find(|j| j.id == id))
    }

    /// Open `GET /v1/event/stream` for `topics` in every namespace, replaying from `index`.
    /// `idle` ends the stream when not even a heartbeat (30 s in Nomad) arrives for that long.
    pub async fn event_stream(
        &self,
        topics: &[&str],
        index: u64,
        idle: Duration,
    ) -> Result<EventStream, NomadError> {
        let mut params: Vec<(&str, String)> =
            topics.iter().map(|t| ("topic", t.to_string())).collect();
        params.push(("namespace", "*".into()));
        params.push(("index", index.to_string()));
        let mut request = self
            .http
            .get(format!("{}{EVENT_STREAM_PATH}", self.base))
            .query(&params);
        if let Some(region) = &self.config.region {
            request = request.query(&[("region", region)]);
        }
        if let Some(token) = &self.config.token {
            request = request.header("X-Nomad-Token", token.expose());
        }
        // No total timeout (the body never ends); the headers must come within the usual one.
        let sent = tokio::time::timeout(self.config.request_timeout, request.send()).await;
        if let Some(requests) = &self.requests {
            match &sent {
                Ok(Ok(response)) => requests.answered(response.status().as_u16()),
                _ => requests.unanswered(),
            }
        }
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(source)) => {
                return Err(NomadError::Transport {
                    method: "GET".into(),
                    path: EVENT_STREAM_PATH.into(),
                    source,
                });
            }
            Err(_) => {
                return Err(NomadError::Status {
                    method: "GET".into(),
                    path: EVENT_STREAM_PATH.into(),
                    status: StatusCode::GATEWAY_TIMEOUT.as_u16(),
                    body: "no answer within the request timeout".into(),
                });
            }
        };
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default().trim().to_string();
            return Err(NomadError::Status {
                method: "GET".into(),
                path: EVENT_STREAM_PATH.into(),
                status,
                body,
            });
        }
        Ok(EventStream {
            response,
            buf: Vec::new(),
            idle,
        })
    }

    /// `DELETE /v1/job/:id` (stop), or with `purge` remove it and its history.
    pub async fn deregister_job(
        &self,
        namespace: &str,
        id: &str,
        purge: bool,
    ) -> Result<JobRegisterResponse, NomadError> {
        self.send(
            Method::DELETE,
            &format!("/v1/job/{}", enc(id)),
            &[
                ("namespace", namespace.into()),
                ("purge", purge.to_string()),
            ],
            None::<&()>,
        )
        .await
        .map(|r| r.value)
    }

    /// `GET /v1/job/:id/deployment`: the latest deployment, `None` when there is none.
    pub async fn latest_deployment(
        &self,
        namespace: &str,
        id: &str,
    ) -> Result<Option<Deployment>, NomadError> {
        let found: Option<Option<Deployment>> = self
            .optional(self.get(
                &format!("/v1/job/{}/deployment", enc(id)),
                namespace,
                QueryOptions::default(),
            ))
            .await?;
        Ok(found.flatten())
    }

    /// `GET /v1/job/:id/allocations` (`[]` for an unknown job).
    pub async fn job_allocations(
        &self,
        namespace: &str,
        id: &str,
    ) -> Result<Vec<AllocListStub>, NomadError> {
        let found: Option<Option<Vec<AllocListStub>>> = self
            .optional(self.get(
                &format!("/v1/job/{}/allocations", enc(id)),
                namespace,
                QueryOptions::default(),
            ))
            .await?;
        Ok(found.flatten().unwrap_or_default())
    }

    /// `GET /v1/job/:id/allocations`, blocking when `query.index > 0` (`[]` for an unknown job).
    pub async fn watch_job_allocations(
        &self,
        namespace: &str,
        id: &str,
        query: QueryOptions,
    ) -> Result<Indexed<Vec<AllocListStub>>, NomadError> {
        let found: Indexed<Option<Vec<AllocListStub>>> = self
            .get(
                &format!("/v1/job/{}/allocations", enc(id)),
                namespace,
                query,
            )
            .await?;
        Ok(Indexed {
            value: found.value.unwrap_or_default(),
            index: found.index,
        })
    }

    /// `GET /v1/volumes?type=csi`, blocking when `query.index > 0`.
    pub async fn list_csi_volumes(
        &self,
        namespace: &str,
        query: QueryOptions,
    ) -> Result<Indexed<Vec<CsiVolumeStub>>, NomadError> {
        let mut params = vec![("namespace", namespace.to_string()), ("type", "csi".into())];
        push_blocking(&mut params, query);
        let r: Indexed<Option<Vec<CsiVolumeStub>>> = self
            .send(Method::GET, "/v1/volumes", &params, None::<&()>)
            .await?;
        Ok(Indexed {
            value: r.value.unwrap_or_default(),
            index: r.index,
        })
    }

    /// `GET /v1/volume/csi/:id` (the fields drover compares); `None` on 404.
    pub async fn read_csi_volume(
        &self,
        namespace: &str,
        id: &str,
    ) -> Result<Option<CsiVolume>, NomadError> {
        self.optional(self.get(
            &format!("/v1/volume/csi/{}", enc(id)),
            namespace,
            QueryOptions::default(),
        ))
        .await
    }

    /// `PUT /v1/volume/csi/:id/create` (also updates an existing volume) or, for
    /// `register`, `PUT /v1/volume/csi/:id`. The answer's body is not read.
    pub async fn put_csi_volume(
        &self,
        namespace: &str,
        volume: &CsiVolumeRequest,
        register: bool,
    ) -> Result<(), NomadError> {
        let path = if register {
            format!("/v1/volume/csi/{}", enc(&volume.id))
        } else {
            format!("/v1/volume/csi/{}/create", enc(&volume.id))
        };
        let body = CsiVolumeWrite {
            volumes: std::slice::from_ref(volume),
        };
        self.send::<serde::de::IgnoredAny>(
            Method::PUT,
            &path,
            &[("namespace", namespace.into())],
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    /// `DELETE /v1/volume/csi/:id/delete` (storage and registration) or, with `deregister_only`,
    /// `DELETE /v1/volume/csi/:id`.
    pub async fn delete_csi_volume(
        &self,
        namespace: &str,
        id: &str,
        deregister_only: bool,
    ) -> Result<(), NomadError> {
        let path = if deregister_only {
            format!("/v1/volume/csi/{}", enc(id))
        } else {
            format!("/v1/volume/csi/{}/delete", enc(id))
        };
        self.send_empty(Method::DELETE, &path, &[("namespace", namespace.into())])
            .await
    }

    /// `GET /v1/plugin/csi/:id`; `None` on 404.
    pub async fn read_csi_plugin(&self, id: &str) -> Result<Option<CsiPlugin>, NomadError> {
        self.optional(self.get(
            &format!("/v1/plugin/csi/{}", enc(id)),
            "default",
            QueryOptions::default(),
        ))
        .await
    }

    /// `GET /v1/status/leader`: the leader's RPC address (`""` when there is none).
    pub async fn leader(&self) -> Result<String, NomadError> {
        self.send(Method::GET, "/v1/status/leader", &[], None::<&()>)
            .await
            .map(|r| r.value)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        namespace: &str,
        query: QueryOptions,
    ) -> Result<Indexed<T>, NomadError> {
        let mut params = vec![("namespace", namespace.to_string())];
        push_blocking(&mut params, query);
        self.send(Method::GET, path, &params, None::<&()>).await
    }

    async fn optional<T>(
        &self,
        call: impl Future<Output = Result<Indexed<T>, NomadError>>,
    ) -> Result<Option<T>, NomadError> {
        match call.await {
            Ok(r) => Ok(Some(r.value)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Send with retries (exponential backoff with jitter) on transient errors only.
    pub(super) async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Indexed<T>, NomadError> {
        let attempt = || async { self.send_once(method.clone(), path, params, body).await };
        attempt
            .retry(self.backoff())
            .when(NomadError::is_transient)
            .notify(|error, after| {
                tracing::warn!(%error, retry_in = ?after, "nomad call failed; retrying");
            })
            .await
    }

    pub(super) async fn send_empty(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<(), NomadError> {
        let attempt = || async {
            let response = self
                .request(method.clone(), path, params, None::<&()>, None)
                .await?;
            check_status(&method, path, response).await.map(|_| ())
        };
        attempt
            .retry(self.backoff())
            .when(NomadError::is_transient)
            .await
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(self.config.max_retries)
            .with_jitter()
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Indexed<T>, NomadError> {
        let blocking_wait = params
            .iter()
            .find(|(k, _)| *k == "wait")
            .and_then(|(_, v)| v.strip_suffix("ms"))
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(Duration::from_millis);
        let response = self
            .request(method.clone(), path, params, body, blocking_wait)
            .await?;
        let index = response
            .headers()
            .get("X-Nomad-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bytes = check_status(&method, path, response).await?;
        let value = serde_json::from_slice(&bytes).map_err(|source| NomadError::Decode {
            method: method.to_string(),
            path: path.to_string(),
            source,
        })?;
        Ok(Indexed { value, index })
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
        blocking_wait: Option<Duration>,
    ) -> Result<reqwest::Response, NomadError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path))
            .query(params);
        if let Some(region) = &self.config.region {
            request = request.query(&[("region", region)]);
        }
        if let Some(token) = &self.config.token {
            request = request.header("X-Nomad-Token", token.expose());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        // A blocking query may legitimately take its whole wait (plus Nomad's jitter of wait/16).
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
        sent.map_err(|source| NomadError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            source,
        })
    }
}

async fn check_status(
    method: &Method,
    path: &str,
    response: reqwest::Response,
) -> Result<bytes::Bytes, NomadError> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|source| NomadError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            source,
        })?;
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        return Ok(bytes);
    }
    Err(NomadError::Status {
        method: method.to_string(),
        path: path.to_string(),
        status: status.as_u16(),
        body: String::from_utf8_lossy(&bytes).trim().to_string(),
    })
}

fn push_blocking(params: &mut Vec<(&str, String)>, query: QueryOptions) {
    if query.index > 0 {
        params.push(("index", query.index.to_string()));
        if let Some(wait) = query.wait {
            // The Go client sends milliseconds (`wait=300000ms`).
            params.push(("wait", format!("{}ms", wait.as_millis())));
        }
    }
}

/// `POST /v1/jobs/parse`.
#[derive(Serialize)]
struct JobsParseRequest<'a> {
    #[serde(rename = "JobHCL")]
    job_hcl: &'a str,
    #[serde(rename = "Canonicalize")]
    canonicalize: bool,
    #[serde(rename = "Variables", skip_serializing_if = "Option::is_none")]
    variables: Option<&'a str>,
}

/// `POST /v1/job/:id/plan`.
#[derive(Serialize)]
struct JobPlanRequest<'a> {
    #[serde(rename = "Job")]
    job: &'a Value,
    #[serde(rename = "Diff")]
    diff: bool,
}

/// `POST /v1/jobs`: the job itself stays opaque.
#[derive(Serialize)]
struct JobRegisterRequest<'a> {
    #[serde(rename = "Job")]
    job: &'a Value,
    #[serde(rename = "EnforceIndex", skip_serializing_if = "std::ops::Not::not")]
    enforce_index: bool,
    #[serde(rename = "JobModifyIndex", skip_serializing_if = "Option::is_none")]
    job_modify_index: Option<u64>,
    #[serde(rename = "PreserveCounts", skip_serializing_if = "std::ops::Not::not")]
    preserve_counts: bool,
    #[serde(rename = "Submission", skip_serializing_if = "Option::is_none")]
    submission: Option<JobSubmission<'a>>,
}

/// A register's `Submission`: the original jobspec, for `nomad job inspect` and the UI.
#[derive(Serialize)]
struct JobSubmission<'a> {
    #[serde(rename = "Source")]
    source: &'a str,
    #[serde(rename = "Format")]
    format: &'a str,
    #[serde(rename = "Variables")]
    variables: &'a str,
}

/// The body of a CSI volume create or register.
#[derive(Serialize)]
struct CsiVolumeWrite<'a> {
    #[serde(rename = "Volumes")]
    volumes: &'a [CsiVolumeRequest],
}

fn enc(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, NomadError> {
    std::fs::read(path).map_err(|e| NomadError::Config(format!("{}: {e}", path.display())))
}
