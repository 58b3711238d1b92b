//! `drover demo`: the devstack, a real S3 server, a local Git repo seeded from `desired-state/`
//! (the media stack), and drover itself serving its status page.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::controller::ControllerSettings;
use crate::controller::runtime::{self, Running, StartError};
use crate::devstack::s3::{S3Error, S3Server};
use crate::devstack::seed::{Seed, SeedVaultMount, SeedVaultSecret};
use crate::devstack::{Devstack, DevstackConfig, DevstackError};
use crate::providers::nomad::NomadConfig;
use crate::source::{SourceConfig, SourceError};

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The example desired-state repository to seed from.
    pub example_dir: PathBuf,
    /// Where the Git repo, data and S3 objects go.
    pub work_dir: PathBuf,
    /// Status page address.
    pub listen: SocketAddr,
    /// Devstack time scale (1.0 = real durations).
    pub time_scale: f64,
    /// Git poll interval.
    pub poll_interval: Duration,
}

/// Starting the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The devstack did not start.
    #[error("starting the devstack")]
    Devstack(#[from] DevstackError),
    /// The S3 server did not start.
    #[error("starting the S3 server")]
    S3(#[from] S3Error),
    /// The Git repo could not be seeded.
    #[error("seeding the Git repository from {dir}")]
    Seed {
        /// The example folder.
        dir: String,
        /// The Git error.
        #[source]
        source: SourceError,
    },
    /// drover did not start.
    #[error("starting drover")]
    Start(#[from] StartError),
}

/// The running demo.
pub struct Demo {
    /// The Nomad/Consul/Vault devstack.
    pub devstack: Devstack,
    /// The S3 server.
    pub s3: S3Server,
    /// drover.
    pub running: Running,
    /// The Git repository users commit to.
    pub repo: PathBuf,
}

impl Demo {
    /// The status page URL.
    pub fn status_url(&self) -> String {
        format!("http://{}/", self.running.web_addr)
    }

    /// Stop everything.
    pub async fn stop(self) {
        self.running.stop().await;
        self.s3.shutdown().await;
        self.devstack.shutdown().await;
    }
}

/// The access key the demo's S3 server accepts (also seeded into Vault for Litestream).
pub const DEMO_S3_ACCESS_KEY: &str = "drover-demo";

/// Start the demo.
pub async fn start(options: DemoOptions) -> Result<Demo, DemoError> {
    let secret_key = uuid::Uuid::new_v4().simple().to_string();
    let s3 = S3Server::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        &options.work_dir.join("s3"),
        DEMO_S3_ACCESS_KEY,
        &secret_key,
    )
    .await?;
    let seed = Seed {
        vault_mounts: vec![SeedVaultMount {
            path: "nomad".into(),
            version: 2,
        }],
        vault_secrets: vec![
            SeedVaultSecret {
                mount: "nomad".into(),
                path: "default/overseerr".into(),
                data: BTreeMap::from([
                    ("MINIO_ACCESS_KEY".to_string(), DEMO_S3_ACCESS_KEY.into()),
                    ("MINIO_SECRET_KEY".to_string(), secret_key.clone().into()),
                ]),
            },
            SeedVaultSecret {
                mount: "nomad".into(),
                path: "default/minio".into(),
                data: BTreeMap::from([
                    ("MINIO_ROOT_USER".to_string(), DEMO_S3_ACCESS_KEY.into()),
                    ("MINIO_ROOT_PASSWORD".to_string(), secret_key.clone().into()),
                ]),
            },
        ],
        ..Seed::default()
    };
    let devstack = Devstack::start(DevstackConfig {
        time_scale: options.time_scale,
        seed: Some(seed),
        ..DevstackConfig::default()
    })
    .await?;
    let repo = options.work_dir.join("repo");
    if !repo.join(".git").exists() {
        crate::source::init_repo_from_dir(&options.example_dir, &repo).map_err(|source| {
            DemoError::Seed {
                dir: options.example_dir.display().to_string(),
                source,
            }
        })?;
    }
    let settings = demo_settings(&options, &repo, &devstack);
    let running = runtime::start(settings, CancellationToken::new()).await?;
    Ok(Demo {
        devstack,
        s3,
        running,
        repo,
    })
}

fn demo_settings(options: &DemoOptions, repo: &Path, devstack: &Devstack) -> Settings {
    Settings {
        source: SourceConfig {
            url: repo.display().to_string(),
            reference: crate::source::SEED_BRANCH.to_string(),
            poll_interval: options.poll_interval,
            ..SourceConfig::default()
        },
        data_dir: options.work_dir.join("data"),
        listen: options.listen,
        nomad: NomadConfig {
            address: devstack.nomad_url(),
            token: Some(crate::telemetry::Redacted(
                devstack.root_token().to_string(),
            )),
            ..NomadConfig::default()
        },
        controller: ControllerSettings {
            progress_interval: Duration::from_secs(2),
            resync_interval: Duration::from_secs(60),
            ..ControllerSettings::default()
        },
        web: crate::config::WebSettings::default(),
    }
}
