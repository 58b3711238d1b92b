//! Channels: how one alert is sent to a webhook, Slack, Discord, ntfy, Gotify or email. Errors
//! never carry a URL (webhook URLs hold tokens) or a credential.

use futures::future::BoxFuture;
use serde_json::json;

use super::settings::ChannelConfig;
use super::{AlertRecord, AlertState};

/// Sending one alert failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver answered with an error status.
    #[error("HTTP {0}")]
    Status(u16),
    /// The request did not complete (connection, timeout); the URL is left out.
    #[error("request failed: {0}")]
    Transport(String),
    /// The SMTP exchange failed (transiently).
    #[error("SMTP: {0}")]
    Smtp(String),
    /// The SMTP server refused the message for good.
    #[error("SMTP: {0}")]
    SmtpRejected(String),
    /// The channel cannot work as configured.
    #[error("{0}")]
    Config(String),
}

impl DeliveryError {
    /// Worth retrying: a 5xx, 429 or 408, a transport failure, a transient SMTP failure.
    pub fn is_transient(&self) -> bool {
        match self {
            DeliveryError::Status(code) => *code >= 500 || *code == 429 || *code == 408,
            DeliveryError::Transport(_) | DeliveryError::Smtp(_) => true,
            DeliveryError::Config(_) | DeliveryError::SmtpRejected(_) => false,
        }
    }
}

/// Something that can deliver an alert.
pub trait Notifier: Send + Sync {
    /// Send `alert` once (the caller retries).
    fn send<'a>(&'a self, alert: &'a AlertRecord) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// The one-line title of an alert (`[FIRING] drift web nomad_job/default/web`).
pub fn title(alert: &AlertRecord) -> String {
    let state = match alert.state {
        AlertState::Firing => "FIRING",
        AlertState::Resolved => "RESOLVED",
    };
    let trigger = serde_json::to_value(alert.trigger)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut title = format!("[{state}] {trigger}");
    for part in [&alert.app, &alert.resource].into_iter().flatten() {
        title.push(' ');
        title.push_str(part);
    }
    title
}

/// An HTTP channel (webhook, Slack, Discord, ntfy, Gotify).
pub struct HttpChannel {
    client: reqwest::Client,
    config: ChannelConfig,
}

impl HttpChannel {
    /// A channel over `client` (the client's timeout bounds each attempt).
    pub fn new(client: reqwest::Client, config: ChannelConfig) -> HttpChannel {
        HttpChannel { client, config }
    }

    fn request(&self, alert: &AlertRecord) -> Result<reqwest::RequestBuilder, DeliveryError> {
        let text = format!("{}\n{}", title(alert), alert.message);
        let firing = alert.state == AlertState::Firing;
        let request = match &self.config {
            ChannelConfig::Webhook { url } => {
                let mut body = serde_json::to_value(alert)
                    .map_err(|e| DeliveryError::Config(format!("encoding the alert: {e}")))?;
                if let Some(fields) = body.as_object_mut() {
                    // Deliveries are being decided while this is sent.
                    fields.remove("deliveries");
                }
                self.client.post(url.expose()).json(&body)
            }
            ChannelConfig::Slack { url } => self.client.post(url.expose()).json(&json!({
                "text": text,
            })),
            ChannelConfig::Discord { url } => {
                // Discord refuses content over 2,000 characters.
                let content: String = text.chars().take(2000).collect();
                self.client.post(url.expose()).json(&json!({
                    "content": content,
                    "username": "drover",
                }))
            }
            ChannelConfig::Ntfy {
                url,
                token,
                priority,
                tags,
            } => {
                let (priority, tags) = if firing {
                    (priority.clone(), tags.join(","))
                } else {
                    ("default".to_string(), "white_check_mark".to_string())
                };
                let mut request = self
                    .client
                    .post(url.expose())
                    .header("Title", header_safe(&title(alert)))
                    .header("Priority", priority)
                    .body(alert.message.clone());
                if !tags.is_empty() {
                    request = request.header("Tags", tags);
                }
                if let Some(token) = token {
                    request = request.bearer_auth(token.expose());
                }
                request
            }
            ChannelConfig::Gotify {
                url,
                token,
                priority,
            } => {
                let endpoint = format!("{}/message", url.expose().trim_end_matches('/'));
                self.client
                    .post(endpoint)
                    .header("X-Gotify-Key", token.expose())
                    .json(&json!({
                        "title": title(alert),
                        "message": alert.message,
                        "priority": if firing { *priority } else { 2 },
                    }))
            }
            ChannelConfig::Email { .. } => {
                return Err(DeliveryError::Config("not an HTTP channel".into()));
            }
        };
        Ok(request)
    }
}

/// Header values cannot hold newlines or non-visible ASCII; alert titles are plain, but be sure.
fn header_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

impl Notifier for HttpChannel {
    fn send<'a>(&'a self, alert: &'a AlertRecord) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let response = self
                .request(alert)?
                .send()
                .await
                // reqwest puts the URL in its message; the URL may hold a token.
                .map_err(|e| {
                    DeliveryError::Transport(crate::telemetry::error_chain(&e.without_url()))
                })?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(DeliveryError::Status(status.as_u16()))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::AlertTrigger;

    #[test]
    fn titles_name_state_trigger_app_and_resource() {
        let alert = AlertRecord {
            id: 1,
            trigger: AlertTrigger::Drift,
            app: Some("web".into()),
            resource: Some("nomad_job/default/web".into()),
            state: AlertState::Resolved,
            message: "m".into(),
            at: std::time::SystemTime::UNIX_EPOCH,
            deliveries: vec![],
        };
        assert_eq!(title(&alert), "[RESOLVED] drift web nomad_job/default/web");
        assert_eq!(header_safe("a\nb"), "a?b");
        assert!(DeliveryError::Status(503).is_transient());
        assert!(!DeliveryError::Status(404).is_transient());
        assert!(DeliveryError::Status(429).is_transient());
    }
}
