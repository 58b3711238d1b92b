//! Email over SMTP (`lettre`).

use std::time::Duration;

use futures::future::BoxFuture;

use super::AlertRecord;
use super::channels::{DeliveryError, Notifier};
use super::settings::ChannelConfig;

/// An SMTP channel.
pub struct EmailChannel {
    #[allow(dead_code)]
    config: ChannelConfig,
    #[allow(dead_code)]
    timeout: Duration,
}

impl EmailChannel {
    /// A channel for `config` (an `Email` one); `timeout` bounds each attempt.
    pub fn new(config: ChannelConfig, timeout: Duration) -> EmailChannel {
        EmailChannel { config, timeout }
    }
}

impl Notifier for EmailChannel {
    fn send<'a>(&'a self, _alert: &'a AlertRecord) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async { Err(DeliveryError::Config("email is not available yet".into())) })
    }
}
