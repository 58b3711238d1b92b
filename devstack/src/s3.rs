//! A real S3 server for the demo and tests: `s3s` + `s3s-fs` (SigV4-checked) on loopback. Not a
//! simulator: it is an S3 implementation storing objects in a folder.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

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

/// One request the S3 server answered, for tests that check what was read or written and when.
#[derive(Debug, Clone)]
pub struct S3Request {
    /// HTTP method.
    pub method: String,
    /// Path (`/bucket` or `/bucket/key`).
    pub path: String,
    /// Query string (`versioning`, `tagging`, …), empty if none.
    pub query: String,
    /// HTTP status of the answer (500 if the service failed).
    pub status: u16,
    /// When the request arrived.
    pub arrived: SystemTime,
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

/// The S3 service, recording each request it answers.
#[derive(Clone)]
struct LoggedService {
    inner: s3s::service::S3Service,
    log: Arc<Mutex<Vec<S3Request>>>,
}

type S3Response = <s3s::service::S3Service as hyper::service::Service<
    http::Request<hyper::body::Incoming>,
>>::Response;
type S3ServiceError = <s3s::service::S3Service as hyper::service::Service<
    http::Request<hyper::body::Incoming>,
>>::Error;

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for LoggedService {
    type Response = S3Response;
    type Error = S3ServiceError;
    type Future = Pin<Box<dyn Future<Output = Result<S3Response, S3ServiceError>> + Send>>;

    fn call(&self, request: http::Request<hyper::body::Incoming>) -> Self::Future {
        let arrived = SystemTime::now();
        let method = request.method().to_string();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let answer = hyper::service::Service::call(&self.inner, request);
        let log = Arc::clone(&self.log);
        Box::pin(async move {
            let answer = answer.await;
            let status = answer.as_ref().map_or(500, |r| r.status().as_u16());
            if let Ok(mut log) = log.lock() {
                log.push(S3Request {
                    method,
                    path,
                    query,
                    status,
                    arrived,
                });
            }
            answer
        })
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
    stop: CancellationToken,
    task: JoinHandle<()>,
    log: Arc<Mutex<Vec<S3Request>>>,
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
        let log = Arc::new(Mutex::new(Vec::new()));
        let service = LoggedService {
            inner: builder.build(),
            log: Arc::clone(&log),
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
            stop,
            task,
            log,
        })
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<S3Request> {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
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
        let seen: Vec<(&str, &str, &str)> = logged
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str(), r.query.as_str()))
            .collect();
        assert_eq!(
            seen,
            [("HEAD", "/media", ""), ("GET", "/media", "versioning")]
        );
        assert!(logged.iter().all(|r| r.is_read() && r.bucket() == "media"));
        server.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("drover-s3-log-{}", uuid::Uuid::new_v4()))
    }
}
