//! Nomad client errors, classified the way a reconciler must act on them.

/// A failed Nomad call.
#[derive(Debug, thiserror::Error)]
pub enum NomadError {
    /// The server answered with an error status; Nomad's error bodies are plain text.
    #[error("nomad {method} {path}: {status}: {body}")]
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
    #[error("nomad {method} {path}: request failed")]
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
    #[error("nomad {method} {path}: unexpected response body")]
    Decode {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// The decode error.
        #[source]
        source: serde_json::Error,
    },
    /// The client could not be built (bad address, unreadable certificate).
    #[error("nomad client configuration: {0}")]
    Config(String),
}

/// The prefix of every EnforceIndex failure (HTTP 500; there is no 409 for jobs).
const ENFORCE_INDEX_PREFIX: &str = "Enforcing job modify index";

/// 500 bodies that state a permanent fact about the request; retrying cannot help.
const PERMANENT_500: &[&str] = &[
    ENFORCE_INDEX_PREFIX,
    "error occurred",
    "errors occurred",
    "cannot update job",
    "validation:",
    "volume in use",
    "volume not found",
    "no CSI plugin named",
    "cannot be updated",
    "not compatible with existing",
    "plugin has no controller",
    "plugin does not support",
    "not found",
    "can't revert",
];

impl NomadError {
    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            NomadError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's error text, if it answered.
    pub fn body(&self) -> Option<&str> {
        match self {
            NomadError::Status { body, .. } => Some(body),
            _ => None,
        }
    }

    /// Worth retrying: timeouts, connection failures, 429, 502–504, and 500s that are not a
    /// statement about the request (`No cluster leader`, RPC failures). Never a 4xx.
    pub fn is_transient(&self) -> bool {
        match self {
            NomadError::Transport { .. } => true,
            NomadError::Status { status, body, .. } => match status {
                429 | 502 | 503 | 504 => true,
                500 => !PERMANENT_500.iter().any(|p| body.contains(p)),
                _ => false,
            },
            NomadError::Decode { .. } | NomadError::Config(_) => false,
        }
    }

    /// An `EnforceIndex` compare-and-set failure: someone else changed the job.
    pub fn is_enforce_index_conflict(&self) -> bool {
        matches!(self, NomadError::Status { status: 500, body, .. } if body.starts_with(ENFORCE_INDEX_PREFIX))
    }

    /// A 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// A 403 (`Permission denied` / `ACL token not found`).
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, body: &str) -> NomadError {
        NomadError::Status {
            method: "PUT".into(),
            path: "/v1/jobs".into(),
            status: code,
            body: body.into(),
        }
    }

    #[test]
    fn enforce_index_conflict_is_a_500_with_prefix_and_not_transient() {
        let e = status(
            500,
            "Enforcing job modify index 41: job exists with conflicting job modify index: 42",
        );
        assert!(e.is_enforce_index_conflict());
        assert!(!e.is_transient());
    }

    #[test]
    fn leaderless_500_and_gateway_errors_are_transient_4xx_never() {
        assert!(status(500, "No cluster leader").is_transient());
        assert!(status(503, "").is_transient());
        assert!(status(429, "").is_transient());
        assert!(!status(400, "Request body is empty").is_transient());
        assert!(!status(403, "Permission denied").is_transient());
        assert!(!status(404, "job not found").is_transient());
        assert!(
            !status(
                500,
                "1 error occurred:\n\t* Task group web validation failed"
            )
            .is_transient()
        );
        assert!(!status(500, "volume in use: vol").is_transient());
    }
}
