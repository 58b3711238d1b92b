//! `notifications:` in drover.yaml: channels, routes and the dedup policy. Secrets (webhook URLs
//! carrying tokens, ntfy/Gotify tokens, the SMTP password) come from files or the environment,
//! are resolved once at start and held as [`Redacted`] so no log or error shows them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::AlertTrigger;
use crate::telemetry::Redacted;

/// `notifications:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsFile {
    /// Run the alert engine (default true; alerts are recorded for the page even without
    /// channels).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Hold-down: a condition fires once it held this long and resolves once gone this long
    /// (default `15s`).
    #[serde(default, rename = "for", with = "crate::config::opt_duration")]
    pub hold: Option<Duration>,
    /// Send a firing alert again after this long (default: never).
    #[serde(default, with = "crate::config::opt_duration")]
    pub renotify_interval: Option<Duration>,
    /// Named channels (`name: { webhook: {...} }`).
    #[serde(default, with = "serde_yaml_ng::with::singleton_map_recursive")]
    pub channels: BTreeMap<String, ChannelFile>,
    /// Which alerts go to which channels.
    #[serde(default)]
    pub routes: Vec<RouteFile>,
}

impl Default for NotificationsFile {
    fn default() -> NotificationsFile {
        NotificationsFile {
            enabled: true,
            hold: None,
            renotify_interval: None,
            channels: BTreeMap::new(),
            routes: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// Where a secret is: inline (only for URLs that carry no token), a file or an environment
/// variable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlFile {
    /// The URL itself (only when it holds no secret).
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the URL.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// An environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
}

/// One channel as written: exactly one kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelFile {
    /// POST of the alert as JSON.
    Webhook(UrlFile),
    /// A Slack incoming webhook.
    Slack(UrlFile),
    /// A Discord webhook.
    Discord(UrlFile),
    /// An ntfy topic.
    Ntfy(NtfyFile),
    /// A Gotify server.
    Gotify(GotifyFile),
    /// Email over SMTP.
    Email(EmailFile),
}

/// `ntfy:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtfyFile {
    /// The topic URL (`https://ntfy.sh/my-topic`).
    pub url: String,
    /// A file holding an access token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// An environment variable holding an access token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Priority of firing alerts (1–5 or `min`…`urgent`; default `high`).
    #[serde(default)]
    pub priority: Option<String>,
    /// Tags (emoji short codes) added to firing alerts.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `gotify:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GotifyFile {
    /// The server's base URL (`/message` is appended).
    pub url: String,
    /// A file holding the application token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the application token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Priority of firing alerts (default 8).
    #[serde(default)]
    pub priority: Option<u8>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain, upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption: only for a relay on loopback.
    None,
}

/// `email:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailFile {
    /// SMTP server.
    pub host: String,
    /// Port (default 587 for STARTTLS, 465 for TLS, 25 for none).
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none` (loopback only).
    #[serde(default)]
    pub tls: Option<SmtpTls>,
    /// Login name, if the server wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Sender address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
}

/// A trigger as routes name it (`on_<trigger>`, and `on_recovered` for resolutions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteTrigger {
    /// A sync failed.
    OnSyncFailed,
    /// Drift not healed.
    OnDrift,
    /// Drift healed (only sent to routes that name it).
    OnDriftHealed,
    /// Health Degraded or Missing.
    OnHealthDegraded,
    /// A probe failed.
    OnProbeFailed,
    /// A refused prune or a repository problem.
    OnPruneRefused,
    /// The resolution of the route's other triggers.
    OnRecovered,
}

/// Apps a route applies to: one glob or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AppsFile {
    /// `apps: "media-*"`.
    One(String),
    /// `apps: [web, "media-*"]`.
    Many(Vec<String>),
}

/// One route as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    /// Triggers (default: all but `on_drift_healed`, with `on_recovered`).
    #[serde(default)]
    pub triggers: Vec<RouteTrigger>,
    /// App globs (`*`, `?`; default: every app and the repository).
    #[serde(default)]
    pub apps: Option<AppsFile>,
    /// Channel names.
    pub channels: Vec<String>,
}

/// A resolved channel, secrets in hand.
#[derive(Debug, Clone)]
pub enum ChannelConfig {
    /// JSON POST.
    Webhook {
        /// The URL (may carry a token).
        url: Redacted<String>,
    },
    /// Slack incoming webhook.
    Slack {
        /// The URL (carries a token).
        url: Redacted<String>,
    },
    /// Discord webhook.
    Discord {
        /// The URL (carries a token).
        url: Redacted<String>,
    },
    /// ntfy.
    Ntfy {
        /// Topic URL.
        url: Redacted<String>,
        /// Access token.
        token: Option<Redacted<String>>,
        /// Firing priority.
        priority: String,
        /// Firing tags.
        tags: Vec<String>,
    },
    /// Gotify.
    Gotify {
        /// Base URL.
        url: Redacted<String>,
        /// Application token.
        token: Redacted<String>,
        /// Firing priority.
        priority: u8,
    },
    /// SMTP.
    Email {
        /// Server.
        host: String,
        /// Port.
        port: u16,
        /// Security.
        tls: SmtpTls,
        /// Login, if any.
        username: Option<String>,
        /// Password, if any.
        password: Option<Redacted<String>>,
        /// Sender.
        from: String,
        /// Recipients.
        to: Vec<String>,
    },
}

/// One resolved route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Firing triggers it takes.
    pub triggers: Vec<AlertTrigger>,
    /// It also takes the resolutions of those.
    pub recovered: bool,
    /// App globs (`None`: all, and repository-level alerts).
    pub apps: Option<Vec<String>>,
    /// Channel names.
    pub channels: Vec<String>,
}

/// How deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first included).
    pub attempts: u32,
    /// The first backoff; it doubles per retry.
    pub first_delay: Duration,
    /// Limit of each attempt.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, 1 s then 2 s then 4 s apart, 8 s each at most: a delivery ends within 40 s,
    /// so one that is detected is delivered within 60 s.
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_secs(1),
            timeout: Duration::from_secs(8),
        }
    }
}

/// The default hold-down (`for:`).
pub const DEFAULT_HOLD: Duration = Duration::from_secs(15);

/// `notifications:` resolved.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Run the engine.
    pub enabled: bool,
    /// Hold-down.
    pub hold: Duration,
    /// Re-notification interval.
    pub renotify: Option<Duration>,
    /// Channels by name.
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Routes, in order.
    pub routes: Vec<Route>,
    /// Retries.
    pub retry: RetryPolicy,
}

impl Default for NotifySettings {
    /// On, no channels: alerts are recorded for the page and the API only.
    fn default() -> NotifySettings {
        NotifySettings {
            enabled: true,
            hold: DEFAULT_HOLD,
            renotify: None,
            channels: BTreeMap::new(),
            routes: Vec::new(),
            retry: RetryPolicy::default(),
        }
    }
}

/// A secret could not be resolved, or the section does not hold together.
#[derive(Debug, thiserror::Error)]
pub enum NotifyConfigError {
    /// A secret file could not be read.
    #[error("notifications: channel {channel}: cannot read {path}")]
    ReadSecret {
        /// The channel.
        channel: String,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Something is missing or inconsistent.
    #[error("notifications: {0}")]
    Invalid(String),
}

const FIRING_TRIGGERS: [AlertTrigger; 5] = [
    AlertTrigger::SyncFailed,
    AlertTrigger::Drift,
    AlertTrigger::HealthDegraded,
    AlertTrigger::ProbeFailed,
    AlertTrigger::PruneRefused,
];

impl NotificationsFile {
    /// Check what can be checked without the environment (routes name channels that exist, a
    /// URL is given once); the error comes with the text to look for to locate it.
    pub fn check(&self) -> Result<(), (String, String)> {
        for (index, route) in self.routes.iter().enumerate() {
            if route.channels.is_empty() {
                return Err((
                    format!("route {} has no channels", index + 1),
                    "channels".into(),
                ));
            }
            for channel in &route.channels {
                if !self.channels.contains_key(channel) {
                    let known: Vec<&str> = self.channels.keys().map(String::as_str).collect();
                    return Err((
                        format!(
                            "route {} names unknown channel {channel:?} (channels: {})",
                            index + 1,
                            known.join(", ")
                        ),
                        channel.clone(),
                    ));
                }
            }
        }
        for (name, channel) in &self.channels {
            let urls = match channel {
                ChannelFile::Webhook(u) | ChannelFile::Slack(u) | ChannelFile::Discord(u) => u,
                ChannelFile::Email(email) => {
                    let loopback = ["127.0.0.1", "::1", "localhost"].contains(&email.host.as_str());
                    if email.tls == Some(SmtpTls::None) && !loopback {
                        return Err((
                            format!(
                                "channel {name}: tls: none sends the password in the clear; only for a relay on loopback"
                            ),
                            format!("{name}:"),
                        ));
                    }
                    if email.to.is_empty() {
                        return Err((
                            format!("channel {name}: email needs at least one `to`"),
                            format!("{name}:"),
                        ));
                    }
                    continue;
                }
                ChannelFile::Ntfy(_) | ChannelFile::Gotify(_) => continue,
            };
            let set = [
                urls.url.is_some(),
                urls.url_file.is_some(),
                urls.url_env.is_some(),
            ]
            .iter()
            .filter(|s| **s)
            .count();
            if set != 1 {
                return Err((
                    format!("channel {name}: give exactly one of url, url_file, url_env"),
                    format!("{name}:"),
                ));
            }
        }
        Ok(())
    }

    /// Resolve secrets (`env` looks up environment variables).
    pub fn resolve(
        self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<NotifySettings, NotifyConfigError> {
        self.check()
            .map_err(|(message, _)| NotifyConfigError::Invalid(message))?;
        let mut channels = BTreeMap::new();
        for (name, channel) in self.channels {
            let secret = |file: &Option<PathBuf>, var: &Option<String>, what: &str| {
                read_secret(&name, file, var, env, what)
            };
            let required = |value: Option<Redacted<String>>, what: &str| {
                value.ok_or_else(|| {
                    NotifyConfigError::Invalid(format!("channel {name}: {what} is not set"))
                })
            };
            let url_of = |u: UrlFile| -> Result<Redacted<String>, NotifyConfigError> {
                match u.url {
                    Some(url) => Ok(Redacted(url)),
                    None => required(secret(&u.url_file, &u.url_env, "url")?, "the url"),
                }
            };
            let resolved = match channel {
                ChannelFile::Webhook(u) => ChannelConfig::Webhook { url: url_of(u)? },
                ChannelFile::Slack(u) => ChannelConfig::Slack { url: url_of(u)? },
                ChannelFile::Discord(u) => ChannelConfig::Discord { url: url_of(u)? },
                ChannelFile::Ntfy(n) => ChannelConfig::Ntfy {
                    token: secret(&n.token_file, &n.token_env, "token")?,
                    url: Redacted(n.url),
                    priority: n.priority.unwrap_or_else(|| "high".into()),
                    tags: n.tags,
                },
                ChannelFile::Gotify(g) => ChannelConfig::Gotify {
                    token: required(
                        secret(&g.token_file, &g.token_env, "token")?,
                        "token_file or token_env",
                    )?,
                    url: Redacted(g.url),
                    priority: g.priority.unwrap_or(8),
                },
                ChannelFile::Email(e) => {
                    let tls = e.tls.unwrap_or(SmtpTls::Starttls);
                    ChannelConfig::Email {
                        port: e.port.unwrap_or(match tls {
                            SmtpTls::Starttls => 587,
                            SmtpTls::Tls => 465,
                            SmtpTls::None => 25,
                        }),
                        password: secret(&e.password_file, &e.password_env, "password")?,
                        host: e.host,
                        tls,
                        username: e.username,
                        from: e.from,
                        to: e.to,
                    }
                }
            };
            channels.insert(name, resolved);
        }
        let routes = self
            .routes
            .into_iter()
            .map(|route| {
                let named: Vec<AlertTrigger> = route
                    .triggers
                    .iter()
                    .filter_map(|t| match t {
                        RouteTrigger::OnSyncFailed => Some(AlertTrigger::SyncFailed),
                        RouteTrigger::OnDrift => Some(AlertTrigger::Drift),
                        RouteTrigger::OnDriftHealed => Some(AlertTrigger::DriftHealed),
                        RouteTrigger::OnHealthDegraded => Some(AlertTrigger::HealthDegraded),
                        RouteTrigger::OnProbeFailed => Some(AlertTrigger::ProbeFailed),
                        RouteTrigger::OnPruneRefused => Some(AlertTrigger::PruneRefused),
                        RouteTrigger::OnRecovered => None,
                    })
                    .collect();
                let all = named.is_empty();
                Route {
                    triggers: if all { FIRING_TRIGGERS.to_vec() } else { named },
                    recovered: route.triggers.is_empty()
                        || route.triggers.contains(&RouteTrigger::OnRecovered),
                    apps: route.apps.map(|apps| match apps {
                        AppsFile::One(glob) => vec![glob],
                        AppsFile::Many(globs) => globs,
                    }),
                    channels: route.channels,
                }
            })
            .collect();
        Ok(NotifySettings {
            enabled: self.enabled,
            hold: self.hold.unwrap_or(DEFAULT_HOLD),
            renotify: self.renotify_interval,
            channels,
            routes,
            retry: RetryPolicy::default(),
        })
    }
}

/// A secret from its file or variable (the variable wins; blank counts as unset).
fn read_secret(
    channel: &str,
    file: &Option<PathBuf>,
    var: &Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    what: &str,
) -> Result<Option<Redacted<String>>, NotifyConfigError> {
    if let Some(var) = var {
        match env(var).filter(|v| !v.trim().is_empty()) {
            Some(value) => return Ok(Some(Redacted(value.trim().to_string()))),
            None if file.is_none() => {
                return Err(NotifyConfigError::Invalid(format!(
                    "channel {channel}: {what}: environment variable {var} is not set"
                )));
            }
            None => {}
        }
    }
    match file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|source| NotifyConfigError::ReadSecret {
                    channel: channel.to_string(),
                    path: path.display().to_string(),
                    source,
                })?;
            Ok(Some(Redacted(text.trim().to_string())).filter(|s| !s.0.is_empty()))
        }
        None => Ok(None),
    }
}

/// Whether `name` matches `glob` (`*` any run, `?` one character).
pub fn glob_matches(glob: &str, name: &str) -> bool {
    let (g, n): (Vec<char>, Vec<char>) = (glob.chars().collect(), name.chars().collect());
    let (mut gi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match g.get(gi) {
            Some('*') => {
                star = Some((gi, ni));
                gi += 1;
            }
            Some(c) if *c == '?' || *c == n[ni] => {
                gi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sg, sn)) => {
                    gi = sg + 1;
                    ni = sn + 1;
                    star = Some((sg, sn + 1));
                }
                None => return false,
            },
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

impl Route {
    /// Whether this route takes an alert of `trigger` for `app` in `state`.
    pub fn takes(&self, trigger: AlertTrigger, app: Option<&str>, resolved: bool) -> bool {
        if resolved && !self.recovered {
            return false;
        }
        if !self.triggers.contains(&trigger) {
            return false;
        }
        match (&self.apps, app) {
            (None, _) => true,
            (Some(globs), Some(app)) => globs.iter().any(|g| glob_matches(g, app)),
            (Some(_), None) => false,
        }
    }
}

/// The 1-based line of the first `needle` in `text` at or after the `notifications:` line.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    let start = text
        .lines()
        .position(|l| l.trim_start().starts_with("notifications:"))?;
    text.lines()
        .enumerate()
        .skip(start)
        .find(|(_, line)| line.contains(needle))
        .map(|(index, _)| index + 1)
}

impl NotificationsFile {
    /// [`check`](Self::check), the error pointing at its line in `text` (the drover.yaml read).
    pub fn check_in(&self, text: &str) -> Result<(), String> {
        self.check()
            .map_err(|(message, needle)| match line_of(text, &needle) {
                Some(line) => format!("notifications: {message} at line {line}"),
                None => format!("notifications: {message}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<NotificationsFile, String> {
        #[derive(Deserialize)]
        struct Wrap {
            notifications: NotificationsFile,
        }
        let file = serde_yaml_ng::from_str::<Wrap>(yaml)
            .map(|w| w.notifications)
            .map_err(|e| e.to_string())?;
        file.check_in(yaml)?;
        Ok(file)
    }

    #[test]
    fn globs_match_names() {
        assert!(glob_matches("*", "web"));
        assert!(glob_matches("media-*", "media-sonarr"));
        assert!(!glob_matches("media-*", "web"));
        assert!(glob_matches("w?b", "web"));
        assert!(glob_matches("*-db", "app-db"));
        assert!(!glob_matches("*-db", "app-dbx"));
        assert!(glob_matches("web", "web"));
        assert!(!glob_matches("web", "webs"));
    }

    #[test]
    fn routes_resolve_and_take_by_trigger_and_app() {
        let yaml = "notifications:\n  for: 5s\n  renotify_interval: 1h\n  channels:\n    ops: { webhook: { url_env: HOOK } }\n    phone: { ntfy: { url: 'http://127.0.0.1/t', token_file: /nonexistent } }\n  routes:\n    - { triggers: [on_drift, on_recovered], apps: 'media-*', channels: [ops] }\n    - { apps: [web], channels: [ops] }\n";
        let file = parse(yaml).unwrap_or_else(|e| panic!("{e}"));
        let env = |k: &str| (k == "HOOK").then(|| "http://127.0.0.1/hook?token=s3cr3t".to_string());
        // The ntfy token file is missing: an error naming the file, never a value.
        let err = file.clone().resolve(&env).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("phone") && e.contains("/nonexistent")),
            "{err:?}"
        );
        let mut file = file;
        file.channels.remove("phone");
        let settings = file.resolve(&env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.hold, Duration::from_secs(5));
        assert_eq!(settings.renotify, Some(Duration::from_secs(3600)));
        assert!(!format!("{settings:?}").contains("s3cr3t"));
        let [media, web] = &settings.routes[..] else {
            panic!("two routes")
        };
        assert!(media.takes(AlertTrigger::Drift, Some("media-x"), false));
        assert!(media.takes(AlertTrigger::Drift, Some("media-x"), true));
        assert!(!media.takes(AlertTrigger::SyncFailed, Some("media-x"), false));
        assert!(!media.takes(AlertTrigger::Drift, Some("web"), false));
        assert!(!media.takes(AlertTrigger::Drift, None, false));
        assert!(web.takes(AlertTrigger::SyncFailed, Some("web"), false));
        assert!(web.takes(AlertTrigger::SyncFailed, Some("web"), true));
        assert!(!web.takes(AlertTrigger::DriftHealed, Some("web"), false));
    }

    #[test]
    fn a_route_naming_an_unknown_channel_is_an_error_with_its_line() {
        let yaml = "notifications:\n  channels:\n    ops: { webhook: { url: 'http://x' } }\n  routes:\n    - { channels: [opz] }\n";
        let err = parse(yaml).err().unwrap_or_default();
        assert!(err.contains("unknown channel \"opz\""), "{err}");
        assert!(err.ends_with("at line 5"), "{err}");
        let unknown_trigger =
            "notifications:\n  routes:\n    - { triggers: [on_drfit], channels: [a] }\n";
        let err = parse(unknown_trigger).err().unwrap_or_default();
        assert!(err.contains("on_drfit") && err.contains("line 3"), "{err}");
        let two_urls =
            "notifications:\n  channels:\n    ops: { slack: { url: 'http://x', url_env: X } }\n";
        let err = parse(two_urls).err().unwrap_or_default();
        assert!(err.contains("exactly one of url"), "{err}");
    }
}
