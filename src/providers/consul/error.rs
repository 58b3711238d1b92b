//! Consul client errors, classified the way a reconciler must act on them.

/// A failed Consul call.
#[derive(Debug, thiserror::Error)]
pub enum ConsulError {
    /// The server answered with an error status; Consul's error bodies are plain text.
    #[error("consul {method} {path}: {status}: {body}")]
    Status {
        /// HTTP method.
        method: String,
        /// Request path (no query, no token).
        path: String,
        /// HTTP status code.
        status: u16,
        /// The plain-text body, trimmed.
        body: String,
    },
    /// The request did not complete (connect error, timeout, reset).
    #[error("consul {method} {path}: request failed")]
    Transport {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The response body was not the JSON expected.
    #[error("consul {method} {path}: unexpected response body")]
    Decode {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// The decode error.
        #[source]
        source: serde_json::Error,
    },
    /// The client could not be built (unreadable certificate, bad address).
    #[error("consul client configuration: {0}")]
    Config(String),
}

/// Consul answers most RPC errors, validation included, with 500; only these texts say the
/// cluster, not the request, is at fault.
const TRANSIENT_500: &[&str] = &[
    "No cluster leader",
    "leadership lost",
    "raft is already shutdown",
    "i/o timeout",
    "connection refused",
    "rate limit exceeded",
];

impl ConsulError {
    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ConsulError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth retrying: timeouts, refused connections, 429, 502–504, and a 500 that names a
    /// leaderless or unreachable cluster. Never a 4xx, never a validation 500.
    pub fn is_transient(&self) -> bool {
        match self {
            ConsulError::Transport { .. } => true,
            ConsulError::Status { status, body, .. } => match status {
                429 | 502 | 503 | 504 => true,
                500 => TRANSIENT_500.iter().any(|t| body.contains(t)),
                _ => false,
            },
            ConsulError::Decode { .. } | ConsulError::Config(_) => false,
        }
    }

    /// A 404 (`Config entry not found …`).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// A 403 (`Permission denied`, `ACL not found`).
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, body: &str) -> ConsulError {
        ConsulError::Status {
            method: "PUT".into(),
            path: "/v1/config".into(),
            status: code,
            body: body.into(),
        }
    }

    #[test]
    fn leaderless_and_gateway_errors_are_transient_4xx_and_validation_never() {
        assert!(status(500, "No cluster leader").is_transient());
        assert!(status(500, "rpc error making call: No cluster leader").is_transient());
        assert!(status(503, "").is_transient());
        assert!(status(429, "Too Many Requests").is_transient());
        assert!(!status(400, "Request decoding failed: EOF").is_transient());
        assert!(!status(403, "Permission denied").is_transient());
        assert!(!status(404, "Config entry not found").is_transient());
        // Config-entry validation comes as 500 text (api-facts §2.3): a statement about the body.
        assert!(!status(500, "Sources[0].Action must be set to 'allow' or 'deny'").is_transient());
        assert!(
            !status(
                500,
                "service \"x\" has protocol \"tcp\", which is incompatible with L7 intentions permissions"
            )
            .is_transient()
        );
    }
}
