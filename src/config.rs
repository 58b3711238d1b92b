//! Settings: `drover.yaml` plus the `NOMAD_*` environment, like HashiCorp's CLIs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::controller::ControllerSettings;
use crate::providers::consul::ConsulConfig;
use crate::providers::nomad::NomadConfig;
use crate::source::{GitAuth, SourceConfig};

/// Where drover keeps its store when drover.yaml names no `data_dir`.
pub const DEFAULT_DATA_DIR: &str = "drover-data";

/// A bad `drover.yaml`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is invalid or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// serde's message, with line and column.
        message: String,
    },
    /// Settings that cannot work together.
    #[error("drover.yaml: {0}")]
    Invalid(String),
    /// `notifications:` cannot be resolved (a secret file, a variable not set).
    #[error("drover.yaml: {0}")]
    Notifications(#[from] crate::notify::settings::NotifyConfigError),
}

/// `drover.yaml` as written (snake_case; unknown keys are errors).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// The desired-state repository.
    pub repo: RepoSettings,
    /// Where the SQLite store and Git mirror live (default `./drover-data`).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Status page and API address (default `127.0.0.1:8080`).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Apps reconciled at once (default 4).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Requeue of settled apps (default `3m`).
    #[serde(default, with = "opt_duration")]
    pub resync_interval: Option<Duration>,
    /// Requeue while converging (default `5s`).
    #[serde(default, with = "opt_duration")]
    pub progress_interval: Option<Duration>,
    /// Refuse pruning when more than this share of apps leaves Git at once (default 0.5).
    #[serde(default)]
    pub max_prune_share: Option<f64>,
    /// Nomad settings; the `NOMAD_*` environment fills what is not set here.
    #[serde(default)]
    pub nomad: NomadSettings,
    /// Which values diffs hide.
    #[serde(default)]
    pub redact: RedactSettings,
    /// Status page and API settings.
    #[serde(default)]
    pub web: WebSettings,
    /// Alerts: channels, routes, hold-down and re-notification.
    #[serde(default)]
    pub notifications: crate::notify::settings::NotificationsFile,
    /// App probes (`probes:` in app.yaml) settings.
    #[serde(default)]
    pub probes: ProbeSettings,
    /// High availability (`ha:`): absent means one process, as always.
    #[serde(default)]
    pub ha: Option<crate::ha::HaFile>,
    /// Where an HA leader keeps its state in the cluster (`cluster_state: { prefix }`); needs `ha:`.
    #[serde(default)]
    pub cluster_state: Option<crate::cluster_state::ClusterStateFile>,
}

/// `probes:` — how app probes connect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSettings {
    /// A PEM bundle of CA certificates trusted by `http` and `tls` probes besides the system
    /// roots (a homelab CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// `redact:` — values hidden in every diff drover shows (CLI, status page, API).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactSettings {
    /// Key fragments, matched case-insensitively as substrings of `env` and `meta` keys and driver
    /// `config` keys; replaces the default `[password, secret, token, key, credential]`.
    #[serde(default)]
    pub keys: Option<Vec<String>>,
}

/// `web:` — the status page and API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// Host names (besides `localhost` and IP addresses) that requests may name in `Host`, such
    /// as the name of a reverse proxy in front of drover. Any other `Host` is refused, which
    /// stops DNS-rebinding pages from reaching the API.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// File holding the shared secret of the Git webhooks (`/api/v1/webhooks/...`);
    /// `DROVER_WEBHOOK_SECRET` wins over it. Neither set: webhooks are off.
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    /// The webhook secret, resolved from the environment or the file (never from the YAML itself).
    #[serde(skip)]
    pub webhook_secret: Option<crate::telemetry::Redacted<String>>,
    /// File holding the API token that mutating endpoints (sync, refresh, rollback, unpin) require
    /// as `Authorization: Bearer <token>`; `DROVER_API_TOKEN` takes precedence. Without either,
    /// those endpoints are off (403).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Require the token for the read-only API and the status page too (`/healthz` stays open).
    #[serde(default)]
    pub private: bool,
    /// The resolved token (from `DROVER_API_TOKEN` or `token_file`); never read from YAML.
    #[serde(skip)]
    pub api_token: Option<crate::telemetry::Redacted<String>>,
}

/// The environment variable holding the API token (server and CLI).
pub const API_TOKEN_ENV: &str = "DROVER_API_TOKEN";

/// `repo:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoSettings {
    /// Path or URL (file, git, http(s), ssh).
    pub url: String,
    /// Branch, tag or `HEAD` (default).
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// Poll interval (default `60s`, jittered).
    #[serde(default, with = "opt_duration")]
    pub poll_interval: Option<Duration>,
    /// Credentials.
    #[serde(default)]
    pub auth: AuthSettings,
    /// Commit signature verification (off when absent).
    #[serde(default)]
    pub verify: Option<crate::source::verify::VerifyPolicy>,
}

/// `repo.auth:` — where secrets are, never the secrets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Username (HTTPS or SSH).
    #[serde(default)]
    pub username: Option<String>,
    /// File holding an HTTPS token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding an HTTPS token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// SSH private key file.
    #[serde(default)]
    pub ssh_key_file: Option<PathBuf>,
    /// Environment variable holding the key's passphrase.
    #[serde(default)]
    pub ssh_key_passphrase_env: Option<String>,
}

/// `nomad:` — overrides of the `NOMAD_*` environment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NomadSettings {
    /// API address.
    #[serde(default)]
    pub address: Option<String>,
    /// Default namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Region.
    #[serde(default)]
    pub region: Option<String>,
    /// File holding the ACL token (the token itself only ever comes from a file or `NOMAD_TOKEN`).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// Everything `drover serve` needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Git source.
    pub source: SourceConfig,
    /// Data directory (store, mirror).
    pub data_dir: PathBuf,
    /// Web listen address.
    pub listen: SocketAddr,
    /// Nomad client.
    pub nomad: NomadConfig,
    /// Consul client (`CONSUL_HTTP_ADDR` and friends); `None` when unset.
    pub consul: Option<ConsulConfig>,
    /// Controller tuning.
    pub controller: ControllerSettings,
    /// Status page and API.
    pub web: WebSettings,
    /// Vault, for `vault_secret` preflight (`VAULT_*`; `None` without `VAULT_ADDR`).
    pub vault: Option<crate::providers::vault::VaultConfig>,
    /// S3, for buckets (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`…; `None` when none
    /// is set).
    pub s3: Option<crate::providers::s3::S3Config>,
    /// Alerts (on by default, recorded for the page even without channels).
    pub notifications: crate::notify::settings::NotifySettings,
    /// App probes.
    pub probes: ProbeSettings,
    /// Leader election among replicas; `None` runs a single process.
    pub ha: Option<crate::ha::HaSettings>,
    /// The Nomad variable prefix of the leader's state (used only with `ha`).
    pub cluster_state: crate::cluster_state::StatePrefix,
}

impl FileSettings {
    /// Parse the text of a `drover.yaml`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &str) -> Result<FileSettings, ConfigError> {
        let file: FileSettings = serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        file.notifications
            .check_in(text)
            .map_err(|message| ConfigError::Parse {
                path: path.to_string(),
                message,
            })?;
        Ok(file)
    }
}

impl Settings {
    /// Read `drover.yaml` and merge the environment.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let file = FileSettings::parse(&text, &path.display().to_string())?;
        Settings::from_file_settings(file, |k| std::env::var(k).ok())
    }

    /// Resolve parsed settings with an environment lookup.
    pub fn from_file_settings(
        file: FileSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut nomad = NomadConfig::from_lookup(&env);
        let consul = ConsulConfig::from_lookup_when_set(&env);
        let ha = file
            .ha
            .clone()
            .map(crate::ha::HaFile::resolve)
            .transpose()
            .map_err(ConfigError::Invalid)?;
        if ha
            .as_ref()
            .is_some_and(|ha| ha.kind == crate::ha::LockKind::ConsulSession && consul.is_none())
        {
            return Err(ConfigError::Invalid(
                "ha.lock consul-session needs a Consul: set CONSUL_HTTP_ADDR".into(),
            ));
        }
        if let Some(address) = file.nomad.address {
            nomad.address = address.trim_end_matches('/').to_string();
        }
        if let Some(ns) = file.nomad.namespace {
            nomad.namespace = ns;
        }
        if file.nomad.region.is_some() {
            nomad.region = file.nomad.region;
        }
        if let Some(path) = file.nomad.token_file {
            let token = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            nomad.token = Some(crate::telemetry::Redacted(token.trim().to_string()));
        }
        let mut web = file.web;
        web.api_token = match (env(API_TOKEN_ENV), &web.token_file) {
            (Some(token), _) if !token.trim().is_empty() => Some(token.trim().to_string()),
            (_, Some(path)) => {
                let token = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Some(token.trim().to_string()).filter(|t| !t.is_empty())
            }
            _ => None,
        }
        .map(crate::telemetry::Redacted);
        let data_dir = file
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let source = SourceConfig {
            url: file.repo.url,
            reference: file.repo.reference.unwrap_or_else(|| "HEAD".into()),
            poll_interval: file.repo.poll_interval.unwrap_or(Duration::from_secs(60)),
            auth: GitAuth {
                username: file.repo.auth.username,
                token_file: file.repo.auth.token_file,
                token_env: file.repo.auth.token_env,
                ssh_key_file: file.repo.auth.ssh_key_file,
                ssh_key_passphrase_env: file.repo.auth.ssh_key_passphrase_env,
            },
            verify: file.repo.verify,
        };
        if let Some(policy) = &source.verify {
            // Unreadable or unsupported keys stop the start rather than refusing every commit.
            policy
                .load()
                .map_err(|e| ConfigError::Invalid(format!("repo.verify: {e}")))?;
        }
        let defaults = ControllerSettings::default();
        let controller = ControllerSettings {
            concurrency: file.concurrency.unwrap_or(defaults.concurrency),
            resync_interval: file.resync_interval.unwrap_or(defaults.resync_interval),
            progress_interval: file.progress_interval.unwrap_or(defaults.progress_interval),
            max_prune_share: file.max_prune_share.unwrap_or(defaults.max_prune_share),
            redaction: match file.redact.keys {
                Some(keys) => crate::plan::render::Redaction::new(keys),
                None => defaults.redaction.clone(),
            },
            ..defaults
        };
        if web.private && web.api_token.is_none() {
            // Private with no token would lock everyone out of the page and the API.
            return Err(ConfigError::Invalid(format!(
                "web.private needs an API token: set {API_TOKEN_ENV} or web.token_file"
            )));
        }
        // A blank variable is unset: the file is used then, as for the API token.
        web.webhook_secret = match env("DROVER_WEBHOOK_SECRET").filter(|s| !s.trim().is_empty()) {
            Some(secret) => Some(secret),
            None => match &web.webhook_secret_file {
                Some(path) => {
                    Some(
                        std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                            path: path.display().to_string(),
                            source,
                        })?,
                    )
                }
                None => None,
            },
        }
        .map(|secret| secret.trim().to_string())
        // An empty secret would let anyone sign; treat it as none (webhooks off).
        .filter(|secret| !secret.is_empty())
        .map(crate::telemetry::Redacted);
        let notifications = file.notifications.resolve(&env)?;
        let cluster_state =
            crate::cluster_state::ClusterStateFile::resolve(file.cluster_state, file.ha.is_some())
                .map_err(ConfigError::Invalid)?;
        Ok(Settings {
            source,
            data_dir,
            listen: file
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            nomad,
            consul,
            controller,
            web,
            vault: crate::providers::vault::VaultConfig::from_lookup(&env),
            s3: crate::providers::s3::S3Config::from_lookup_when_set(&env),
            notifications,
            probes: file.probes,
            ha,
            cluster_state,
        })
    }
}

/// An optional humantime duration (`30s`, `5m`) in YAML (drover.yaml's sections share it).
pub(crate) mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            humantime::parse_duration(&t)
                .map_err(|e| serde::de::Error::custom(format!("invalid duration {t:?}: {e}")))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_with_durations_and_env_fallback() {
        let file: FileSettings = serde_yaml_ng::from_str(
            "repo: { url: /srv/repo, ref: main, poll_interval: 30s }\nlisten: 127.0.0.1:9000\nresync_interval: 2m\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = Settings::from_file_settings(file, |k| {
            (k == "NOMAD_ADDR").then(|| "http://10.1.1.1:4646".to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.source.reference, "main");
        assert_eq!(s.source.poll_interval, Duration::from_secs(30));
        assert_eq!(s.controller.resync_interval, Duration::from_secs(120));
        assert_eq!(s.nomad.address, "http://10.1.1.1:4646");
        assert_eq!(s.listen.port(), 9000);
        assert!(s.web.allowed_hosts.is_empty());
    }

    #[test]
    fn allowed_hosts_are_read_from_web() {
        let file: FileSettings = serde_yaml_ng::from_str(
            "repo: { url: /srv/repo }\nweb: { allowed_hosts: [drover.example.org] }\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = Settings::from_file_settings(file, |_| None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.web.allowed_hosts, vec!["drover.example.org".to_string()]);
    }

    #[test]
    fn the_webhook_secret_comes_from_the_environment_or_a_file_never_empty() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file_path = dir.path().join("secret");
        std::fs::write(&file_path, "from-file\n").unwrap_or_else(|e| panic!("{e}"));
        let settings = |yaml: &str, env_secret: Option<&str>| {
            let file: FileSettings =
                serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}"));
            let env_secret = env_secret.map(str::to_string);
            Settings::from_file_settings(file, move |k| {
                (k == "DROVER_WEBHOOK_SECRET")
                    .then(|| env_secret.clone())
                    .flatten()
            })
        };
        let secret = |s: Settings| s.web.webhook_secret.map(|r| r.expose().clone());
        let with_file = format!(
            "repo: {{ url: /srv/repo }}\nweb: {{ webhook_secret_file: {} }}\n",
            file_path.display()
        );
        let plain = "repo: { url: /srv/repo }\n";
        let ok = |r: Result<Settings, ConfigError>| r.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(secret(ok(settings(plain, None))), None);
        assert_eq!(secret(ok(settings(plain, Some("  ")))), None);
        assert_eq!(secret(ok(settings(plain, Some("env")))), Some("env".into()));
        assert_eq!(
            secret(ok(settings(&with_file, None))),
            Some("from-file".into())
        );
        assert_eq!(
            secret(ok(settings(&with_file, Some("env")))),
            Some("env".into())
        );
        assert_eq!(
            secret(ok(settings(&with_file, Some(" ")))),
            Some("from-file".into()),
            "a blank variable falls back to the file"
        );
        let missing = "repo: { url: /srv/repo }\nweb: { webhook_secret_file: /nonexistent/x }\n";
        assert!(settings(missing, None).is_err());
        // The secret never shows in the settings' Debug output (logged at startup by some).
        let debug = format!("{:?}", ok(settings(plain, Some("s3cr3t-value"))));
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
    }

    #[test]
    fn a_consul_session_lock_needs_a_consul() {
        let resolve = |consul: Option<&str>| {
            let parsed: FileSettings =
                serde_yaml_ng::from_str("repo: { url: /srv/repo }\nha: { lock: consul-session }\n")
                    .unwrap_or_else(|e| panic!("{e}"));
            Settings::from_file_settings(parsed, |k| {
                (k == "CONSUL_HTTP_ADDR")
                    .then(|| consul.map(str::to_string))
                    .flatten()
            })
            .map(|s| s.ha.map(|ha| ha.kind))
        };
        assert!(resolve(None).is_err());
        assert_eq!(
            resolve(Some("127.0.0.1:8500")).ok(),
            Some(Some(crate::ha::LockKind::ConsulSession))
        );
    }

    #[test]
    fn the_api_token_comes_from_the_environment_else_the_token_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("api-token");
        std::fs::write(&file, "from-file\n").unwrap_or_else(|e| panic!("{e}"));
        let resolve = |yaml: String, env_token: Option<&str>| {
            let parsed: FileSettings =
                serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("{e}"));
            Settings::from_file_settings(parsed, |k| {
                (k == API_TOKEN_ENV)
                    .then(|| env_token.map(str::to_string))
                    .flatten()
            })
            .map(|s| (s.web.api_token.map(|t| t.expose().clone()), s.web.private))
        };
        let with_file = format!(
            "repo: {{ url: /srv/repo }}\nweb: {{ token_file: {}, private: true }}\n",
            file.display()
        );
        let without = "repo: { url: /srv/repo }\n".to_string();
        assert_eq!(
            resolve(with_file.clone(), None).ok(),
            Some((Some("from-file".to_string()), true))
        );
        assert_eq!(
            resolve(with_file, Some(" from-env ")).ok(),
            Some((Some("from-env".to_string()), true))
        );
        assert_eq!(
            resolve(without.clone(), Some("from-env")).ok(),
            Some((Some("from-env".to_string()), false))
        );
        assert_eq!(resolve(without.clone(), None).ok(), Some((None, false)));
        assert_eq!(resolve(without, Some("  ")).ok(), Some((None, false)));
        let missing = format!(
            "repo: {{ url: /srv/repo }}\nweb: {{ token_file: {} }}\n",
            dir.path().join("absent").display()
        );
        assert!(
            resolve(missing, None).is_err(),
            "an unreadable token file is an error"
        );
        let private_without_token = "repo: { url: /srv/repo }\nweb: { private: true }\n";
        assert!(
            matches!(
                resolve(private_without_token.to_string(), None),
                Err(ConfigError::Invalid(_))
            ),
            "private with no token would lock everyone out"
        );
    }

    #[test]
    fn redact_keys_replace_the_default_fragments() {
        let parse = |yaml: &str| {
            let file: FileSettings =
                serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}"));
            Settings::from_file_settings(file, |_| None)
                .unwrap_or_else(|e| panic!("{e}"))
                .controller
                .redaction
        };
        assert_eq!(
            parse("repo: { url: x }\n"),
            crate::plan::render::Redaction::default()
        );
        assert_eq!(
            parse("repo: { url: x }\nredact: { keys: [PASSWORD, dsn] }\n"),
            crate::plan::render::Redaction::new(["password", "dsn"])
        );
        assert!(
            serde_yaml_ng::from_str::<FileSettings>("repo: { url: x }\nredact: { key: [a] }\n")
                .is_err()
        );
    }

    #[test]
    fn notifications_are_checked_with_their_line_and_resolved_from_files() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let hook = dir.path().join("hook-url");
        std::fs::write(&hook, "http://127.0.0.1:9/hook?token=t0ken\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let config = dir.path().join("drover.yaml");
        let write = |routes: &str| {
            let text = format!(
                "repo: {{ url: /srv/repo }}\nnotifications:\n  channels:\n    ops: {{ webhook: {{ url_file: {} }} }}\n  routes:\n    - {{ channels: [{routes}] }}\n",
                hook.display()
            );
            std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
            Settings::load(&config)
        };
        let err = write("opz")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("unknown channel \"opz\"") && err.ends_with("at line 6"),
            "{err}"
        );
        let settings = write("ops").unwrap_or_else(|e| panic!("{e}"));
        assert!(settings.notifications.enabled);
        assert_eq!(settings.notifications.routes.len(), 1);
        assert!(!format!("{settings:?}").contains("t0ken"));
    }

    #[test]
    fn unknown_keys_are_errors_with_position() {
        let err = serde_yaml_ng::from_str::<FileSettings>("repo: { url: x }\nconcurency: 3\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("concurency"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn repo_verify_needs_a_readable_key_source() {
        let load = |yaml: &str| {
            let file =
                serde_yaml_ng::from_str::<FileSettings>(yaml).unwrap_or_else(|e| panic!("{e}"));
            Settings::from_file_settings(file, |_| None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let err = load("repo: { url: x, verify: { mode: all-new } }\n");
        assert!(err.contains("repo.verify: no key source"), "{err}");
        let err = load("repo: { url: x, verify: { ssh_allowed_signers: /nonexistent/signers } }\n");
        assert!(
            err.contains("repo.verify: cannot read /nonexistent/signers"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let signers = dir.path().join("allowed_signers");
        std::fs::write(&signers, "# nobody yet\n").unwrap_or_else(|e| panic!("{e}"));
        let yaml = format!(
            "repo: {{ url: x, verify: {{ ssh_allowed_signers: {} }} }}\n",
            signers.display()
        );
        let err = load(&yaml);
        assert_eq!(
            err, "",
            "an empty allowed_signers file loads (every commit is refused)"
        );
    }
}
