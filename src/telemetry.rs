//! Logging setup (text on a TTY, JSON otherwise, or as asked), [`Redacted`] for secrets, and
//! the metrics registry ([`metrics`]).

pub mod metrics;

pub use metrics::Metrics;

use std::fmt;
use std::io::IsTerminal;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines (coloured on a terminal).
    Text,
}

impl LogFormat {
    /// The format asked for, else text on a terminal and JSON otherwise (journald, Nomad's log
    /// shipping and files get machine-readable lines).
    pub fn choose(asked: Option<LogFormat>, stderr_is_terminal: bool) -> LogFormat {
        asked.unwrap_or(if stderr_is_terminal {
            LogFormat::Text
        } else {
            LogFormat::Json
        })
    }
}

/// Start tracing in `format` (see [`LogFormat::choose`]); `RUST_LOG` overrides the default
/// `info` filter.
pub fn init(format: Option<LogFormat>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match LogFormat::choose(format, terminal) {
        LogFormat::Text => {
            let _ = builder.with_ansi(terminal).try_init();
        }
        LogFormat::Json => {
            let _ = builder.json().try_init();
        }
    }
}

/// A value that prints as `<redacted>` in logs, diffs and Debug output.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Redacted<T>(pub T);

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> Redacted<T> {
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

/// An error and all its causes on one line (`planning x: nomad POST /v1/jobs: 500: ...`).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_on_a_terminal_json_otherwise_unless_asked() {
        assert_eq!(LogFormat::choose(None, true), LogFormat::Text);
        assert_eq!(LogFormat::choose(None, false), LogFormat::Json);
        for terminal in [true, false] {
            assert_eq!(
                LogFormat::choose(Some(LogFormat::Json), terminal),
                LogFormat::Json
            );
            assert_eq!(
                LogFormat::choose(Some(LogFormat::Text), terminal),
                LogFormat::Text
            );
        }
    }
}
