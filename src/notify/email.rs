//! Email over SMTP (`lettre`, rustls with ring): STARTTLS (required) or TLS from the first
//! byte; plain only to a relay on loopback. The password is never in an error or a log.

use std::time::Duration;

use futures::future::BoxFuture;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::AlertRecord;
use super::channels::{DeliveryError, Notifier, title};
use super::settings::{ChannelConfig, SmtpTls};

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// An SMTP channel.
pub struct EmailChannel {
    /// The transport, or why it cannot be built (a bad host name).
    transport: Result<Transport, String>,
    from: String,
    to: Vec<String>,
}

impl EmailChannel {
    /// A channel for `config` (an `Email` one); `timeout` bounds each SMTP exchange.
    pub fn new(config: ChannelConfig, timeout: Duration) -> EmailChannel {
        let ChannelConfig::Email {
            host,
            port,
            tls,
            username,
            password,
            from,
            to,
        } = config
        else {
            return EmailChannel {
                transport: Err("not an email channel".into()),
                from: String::new(),
                to: Vec::new(),
            };
        };
        let builder = match tls {
            SmtpTls::Starttls => Transport::starttls_relay(&host),
            SmtpTls::Tls => Transport::relay(&host),
            SmtpTls::None => Ok(Transport::builder_dangerous(&host)),
        };
        let transport = builder
            .map(|builder| {
                let mut builder = builder.port(port).timeout(Some(timeout));
                if let Some(user) = username {
                    let secret = password.map(|p| p.0).unwrap_or_default();
                    builder = builder.credentials(Credentials::new(user, secret));
                }
                builder.build()
            })
            .map_err(|e| format!("SMTP server {host}: {e}"));
        EmailChannel {
            transport,
            from,
            to,
        }
    }

    fn message(&self, alert: &AlertRecord) -> Result<Message, DeliveryError> {
        let mailbox = |address: &str| {
            address
                .parse::<Mailbox>()
                .map_err(|e| DeliveryError::Config(format!("address {address:?}: {e}")))
        };
        let mut builder = Message::builder()
            .from(mailbox(&self.from)?)
            .subject(format!("drover {}", title(alert)))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(mailbox(to)?);
        }
        builder
            .body(format!("{}\n\n{}\n", title(alert), alert.message))
            .map_err(|e| DeliveryError::Config(format!("building the message: {e}")))
    }
}

impl Notifier for EmailChannel {
    fn send<'a>(&'a self, alert: &'a AlertRecord) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let transport = self
                .transport
                .as_ref()
                .map_err(|e| DeliveryError::Config(e.clone()))?;
            let message = self.message(alert)?;
            transport.send(message).await.map(|_| ()).map_err(|e| {
                // lettre's messages carry the server's reply, never the credentials.
                if e.is_permanent() {
                    DeliveryError::SmtpRejected(e.to_string())
                } else {
                    DeliveryError::Smtp(e.to_string())
                }
            })
        })
    }
}
