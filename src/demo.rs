//! `drover demo`: the devstack, a real S3 server, a local Git repo seeded from `desired-state/`
//! (the media stack), and drover itself serving its status page.
//!
//! A module of the binary, not of the `drover` library: it starts the devstack, and the library
//! talks to a devstack only over HTTP (it does not depend on the `drover_devstack` crate).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use drover::config::Settings;
use drover::controller::ControllerSettings;
use drover::controller::runtime::{self, Running, StartError};
use drover::providers::nomad::NomadConfig;
use drover::providers::vault::VaultConfig;
use drover::source::{SourceConfig, SourceError};
use drover_devstack::s3::{S3Error, S3Server};
use drover_devstack::seed::{Seed, SeedVaultMount, SeedVaultSecret};
use drover_devstack::{Devstack, DevstackConfig, DevstackError};

/// The example desired-state repository (`desired-state/`), built into the binary so an installed
/// drover's demo works anywhere: `(path, contents)`. `example_files_match_desired_state` fails
/// when a file there is missing from this list.
macro_rules! example_files {
    ($($path:literal),* $(,)?) => {
        &[$((
            $path,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/desired-state/", $path)),
        )),*]
    };
}
/// See [`example_files!`].
pub const EXAMPLE_FILES: &[(&str, &[u8])] = example_files![
    "drover.yaml",
    "apps/glusterfs-csi/app.yaml",
    "apps/glusterfs-csi/jobspec-controller.nomad.hcl",
    "apps/glusterfs-csi/jobspec-nodes.nomad.hcl",
    "apps/minio/app.yaml",
    "apps/minio/jobspec.nomad.hcl",
    "apps/minio/minio-intentions.hcl",
    "apps/minio/minio-service-defaults.hcl",
    "apps/minio/minio-service-resolver.hcl",
    "apps/overseerr/app.yaml",
    "apps/overseerr/overseerr-intentions.hcl",
    "apps/overseerr/seed.nomad.hcl",
    "apps/jellyfin/app.yaml",
    "apps/prowlarr/app.yaml",
    "apps/qbittorrent/app.yaml",
    "apps/radarr/app.yaml",
    "apps/sonarr/app.yaml",
    "apps/traefik/app.yaml",
];

/// Write the built-in example repository's files under `dir`.
pub fn write_example(dir: &Path) -> Result<(), DemoError> {
    for (path, contents) in EXAMPLE_FILES {
        let target = dir.join(path);
        let written = match target.parent() {
            Some(parent) => std::fs::create_dir_all(parent),
            None => Ok(()),
        }
        .and_then(|()| std::fs::write(&target, contents));
        written.map_err(|source| DemoError::WriteExample {
            path: target.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The example desired-state repository to seed from (`None`: the one built in).
    pub example_dir: Option<PathBuf>,
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
    /// The built-in example could not be written.
    #[error("cannot write {path}")]
    WriteExample {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
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
    /// The API token the page's buttons and the CLI need (`DROVER_API_TOKEN`, or generated).
    pub api_token: String,
    /// Whether the repository's post-commit hook calls drover's Git webhook (false when the
    /// repository has a post-commit hook of its own, or it could not be written).
    pub commit_hook: bool,
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
        let example = match &options.example_dir {
            Some(dir) => dir.clone(),
            None => {
                write_example(&repo)?;
                repo.clone()
            }
        };
        drover::source::init_repo_from_dir(&example, &repo).map_err(|source| DemoError::Seed {
            dir: example.display().to_string(),
            source,
        })?;
    }
    let mut settings = demo_settings(&options, &repo, &devstack);
    // Buckets are managed on the embedded S3 server (it has no versioning, policy, lifecycle or
    // tagging: bucket ownership is kept in drover's store).
    settings.s3 = Some(drover::providers::s3::S3Config {
        endpoint: Some(s3.url()),
        credentials: Some(drover::providers::s3::StaticCredentials::new(
            DEMO_S3_ACCESS_KEY,
            &secret_key,
        )),
        ..drover::providers::s3::S3Config::default()
    });
    // The demo's changes need a token like any drover's: the caller's, or a fresh random one.
    let api_token = std::env::var(drover::config::API_TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 24]>()));
    settings.web.api_token = Some(drover::telemetry::Redacted(api_token.clone()));
    // A push webhook like a Git forge's: the repository's post-commit hook calls it, so a commit
    // applies at once rather than at the next poll.
    let webhook_secret = std::env::var("DROVER_WEBHOOK_SECRET")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 24]>()));
    settings.web.webhook_secret = Some(drover::telemetry::Redacted(webhook_secret.clone()));
    let running = runtime::start(settings, CancellationToken::new()).await?;
    let commit_hook = match install_commit_hook(&repo, running.web_addr, &webhook_secret) {
        Ok(installed) => installed,
        Err(error) => {
            // The poll still applies commits; only the shortcut is lost.
            tracing::warn!(%error, "cannot install the demo's post-commit hook");
            false
        }
    };
    Ok(Demo {
        devstack,
        s3,
        running,
        repo,
        api_token,
        commit_hook,
    })
}

/// The first line after the shebang of the post-commit hook the demo writes: a hook without it
/// is the user's, and is left alone.
const COMMIT_HOOK_MARK: &str = "# drover demo: post-commit webhook";

/// The hook's script (`{mark}`, `{secret}` and `{url}` filled in). Without curl it does nothing.
const COMMIT_HOOK: &str = r#"#!/bin/sh
{mark} (rewritten at each start; delete this file to stop it).
command -v curl >/dev/null 2>&1 || exit 0
ref=$(git symbolic-ref -q HEAD || echo HEAD)
curl -fsS -m 5 -o /dev/null -X POST -H 'Authorization: Bearer {secret}' \
  -H 'Content-Type: application/json' --data "{\"ref\":\"$ref\"}" '{url}' || true
"#;

/// Write `.git/hooks/post-commit` in the demo's repository: it POSTs the generic Git webhook
/// (the secret in a bearer header) so drover fetches each commit at once. Returns false, writing
/// nothing, when the repository already has a post-commit hook of its own.
fn install_commit_hook(
    repo: &Path,
    web_addr: std::net::SocketAddr,
    secret: &str,
) -> std::io::Result<bool> {
    // Anything but token characters would need shell quoting in the script: no shortcut then.
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if !secret.chars().all(plain) {
        return Ok(false);
    }
    let hooks = repo.join(".git").join("hooks");
    let path = hooks.join("post-commit");
    if let Ok(existing) = std::fs::read_to_string(&path)
        && !existing.contains(COMMIT_HOOK_MARK)
    {
        return Ok(false);
    }
    std::fs::create_dir_all(&hooks)?;
    // The secret is hex and the address `ip:port`: nothing in them needs shell quoting.
    let url = format!(
        "http://{web_addr}{}/webhooks/generic",
        drover::web::API_PREFIX
    );
    let script = COMMIT_HOOK
        .replace("{mark}", COMMIT_HOOK_MARK)
        .replace("{secret}", secret)
        .replace("{url}", &url);
    std::fs::write(&path, script)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Executable, and readable by the owner only: it holds the webhook secret.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(true)
}

fn demo_settings(options: &DemoOptions, repo: &Path, devstack: &Devstack) -> Settings {
    Settings {
        source: SourceConfig {
            url: repo.display().to_string(),
            reference: drover::source::SEED_BRANCH.to_string(),
            poll_interval: options.poll_interval,
            ..SourceConfig::default()
        },
        data_dir: options.work_dir.join("data"),
        listen: options.listen,
        nomad: NomadConfig {
            address: devstack.nomad_url(),
            token: Some(drover::telemetry::Redacted(
                devstack.root_token().to_string(),
            )),
            ..NomadConfig::default()
        },
        consul: Some(drover::providers::consul::ConsulConfig {
            address: devstack.consul_url(),
            token: Some(drover::telemetry::Redacted(
                devstack.root_token().to_string(),
            )),
            ..drover::providers::consul::ConsulConfig::default()
        }),
        controller: ControllerSettings {
            progress_interval: Duration::from_secs(2),
            resync_interval: Duration::from_secs(60),
            ..ControllerSettings::default()
        },
        web: drover::config::WebSettings::default(),
        vault: Some(VaultConfig {
            address: devstack.vault_url(),
            token: Some(drover::telemetry::Redacted(
                devstack.root_token().to_string(),
            )),
            ..VaultConfig::default()
        }),
        s3: None,
        notifications: drover::notify::settings::NotifySettings::default(),
        probes: Default::default(),
        ha: None,
        cluster_state: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            {
                let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path
                        .strip_prefix(root)
                        .unwrap_or_else(|e| panic!("{e}"))
                        .to_string_lossy()
                        .replace('\\', "/");
                    let contents = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
                    files.insert(relative, contents);
                }
            }
        }
        files
    }

    #[test]
    fn example_files_match_desired_state() {
        let written = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write_example(written.path()).unwrap_or_else(|e| panic!("{e}"));
        let source = files_under(&Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state"));
        let extracted = files_under(written.path());
        assert_eq!(
            extracted.keys().collect::<Vec<_>>(),
            source.keys().collect::<Vec<_>>(),
            "EXAMPLE_FILES in src/demo.rs must list every file of desired-state/"
        );
        for (path, contents) in &source {
            assert!(extracted.get(path) == Some(contents), "{path} differs");
        }
    }
}
