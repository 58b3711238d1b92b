//! A real S3 server for the demo and tests: `s3s` + `s3s-fs` (SigV4-checked) on loopback. Not a
//! simulator: it is an S3 implementation storing objects in a folder. Every request it receives
//! is logged (method, path, query), so tests and the bench count what drover asks of S3.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Starting the S3 server failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The listener could not bind.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The storage folder is unusable.
    #[error("S3 storage folder {path}: {message}")]
    Storage {
        /// The folder.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Request {
    /// HTTP method (`HEAD`, `GET`, `PUT`, …).
    pub method: String,
    /// Path: `/bucket` or `/bucket/key` (path-style addressing).
    pub path: String,
    /// Query string (`versioning`, `tagging`, `list-type=2`, …), `""` without one.
    pub query: String,
}

impl S3Request {
    /// The bucket the request is about (`""` for the service root, e.g. `ListBuckets`).
    pub fn bucket(&self) -> &str {
        self.path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
    }

    /// Whether it only reads (`GET` or `HEAD`).
    pub fn is_read(&self) -> bool {
        self.method == "GET" || self.method == "HEAD"
    }
}

/// The requests served, in arrival order.
type RequestLog = Arc<Mutex<Vec<S3Request>>>;

/// The s3s service with each request logged before it is served.
#[derive(Clone)]
struct Logged {
    inner: s3s::service::S3Service,
    log: RequestLog,
}

type Incoming = http::Request<hyper::body::Incoming>;
type Inner = s3s::service::S3Service;

impl hyper::service::Service<Incoming> for Logged {
    type Response = <Inner as hyper::service::Service<Incoming>>::Response;
    type Error = <Inner as hyper::service::Service<Incoming>>::Error;
    type Future = <Inner as hyper::service::Service<Incoming>>::Future;

    fn call(&self, req: Incoming) -> Self::Future {
        let entry = S3Request {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            query: req.uri().query().unwrap_or_default().to_string(),
        };
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(entry);
        hyper::service::Service::call(&self.inner, req)
    }
}

/// A running S3 server.
pub struct S3Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Access key it accepts.
    pub access_key: String,
    /// Secret key it accepts.
    pub secret_key: String,
    log: RequestLog,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl S3Server {
    /// Serve `root` as S3 on `addr` (port 0 picks one), accepting one key pair.
    pub async fn start(
        addr: SocketAddr,
        root: &Path,
        access_key: &str,
        secret_key: &str,
    ) -> Result<S3Server, S3Error> {
        std::fs::create_dir_all(root).map_err(|e| S3Error::Storage {
            path: root.display().to_string(),
            message: e.to_string(),
        })?;
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| S3Error::Storage {
            path: root.display().to_string(),
            message: format!("{e:?}"),
        })?;
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(
            access_key.to_string(),
            secret_key.to_string(),
        ));
        let log = RequestLog::default();
        let service = Logged {
            inner: builder.build(),
            log: log.clone(),
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| S3Error::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| S3Error::Bind { addr, source })?;
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stopped.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((stream, _)) = accepted else { continue };
                let service = service.clone();
                tokio::spawn(async move {
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    if let Err(error) = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                    {
                        tracing::debug!(%error, "s3 connection ended");
                    }
                });
            }
        });
        Ok(S3Server {
            addr: local,
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            log,
            stop,
            task,
        })
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<S3Request> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Stop serving.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_request_is_logged_with_method_path_and_query_signed_or_not() {
        let dir = tempfile_dir();
        let server = S3Server::start(
            "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
            &dir,
            "access",
            "secret",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        // Unsigned, so refused or not found: counted all the same.
        http.head(format!("{}/media", server.url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        http.get(format!("{}/media?versioning", server.url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let logged = server.requests();
        assert_eq!(
            logged,
            [
                S3Request {
                    method: "HEAD".into(),
                    path: "/media".into(),
                    query: String::new(),
                },
                S3Request {
                    method: "GET".into(),
                    path: "/media".into(),
                    query: "versioning".into(),
                },
            ]
        );
        assert!(logged.iter().all(|r| r.is_read() && r.bucket() == "media"));
        server.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("drover-s3-log-{}", uuid::Uuid::new_v4()))
    }
}
