//! A real S3 server for the demo and tests: `s3s` + `s3s-fs` (SigV4-checked) on loopback. Not a
//! simulator: it is an S3 implementation storing objects in a folder.

use std::net::SocketAddr;
use std::path::Path;

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
        let service = builder.build();
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
        })
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop serving.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
