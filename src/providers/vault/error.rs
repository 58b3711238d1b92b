//! Vault client errors, classified the way a reconciler must act on them. None carries a secret
//! value: error bodies are Vault's own `errors` list, and a decode error keeps only its position.

/// A failed Vault call.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The server answered with an error status and its JSON `errors` list.
    #[error("vault {method} {path}: {status}: {}", errors.join("; "))]
    Status {
        /// HTTP method.
        method: String,
        /// Request path (no token).
        path: String,
        /// HTTP status code.
        status: u16,
        /// Vault's `errors`, trimmed.
        errors: Vec<String>,
    },
    /// The request did not complete (connect error, timeout, reset).
    #[error("vault {method} {path}: request failed")]
    Transport {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The response body was not the JSON expected (only the position is kept: serde's message
    /// may quote a value).
    #[error(
        "vault {method} {path}: unexpected response body ({category} at line {line} column {column})"
    )]
    Decode {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// `syntax`, `data`, `eof`, `io`.
        category: String,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// No credentials: neither `VAULT_TOKEN`, AppRole nor JWT was given.
    #[error(
        "vault: no token (set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID, or VAULT_JWT_ROLE and VAULT_JWT_FILE)"
    )]
    NoCredentials,
    /// The JWT file for a JWT login could not be read (or is empty).
    #[error("vault: cannot read the JWT file {path} (VAULT_JWT_FILE)")]
    JwtFile {
        /// The file.
        path: String,
        /// The OS error (`InvalidData` for an empty file).
        #[source]
        source: std::io::Error,
    },
    /// The client could not be built (unreadable certificate, bad address).
    #[error("vault client configuration: {0}")]
    Config(String),
}

impl VaultError {
    pub(super) fn decode(method: &str, path: &str, e: &serde_json::Error) -> VaultError {
        VaultError::Decode {
            method: method.to_string(),
            path: path.to_string(),
            category: format!("{:?}", e.classify()).to_lowercase(),
            line: e.line(),
            column: e.column(),
        }
    }

    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            VaultError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth retrying: timeouts, refused connections, 429, a sealed or standby Vault (503) and
    /// other 5xx. Never a 4xx (a bad token, a policy gap, a missing mount).
    pub fn is_transient(&self) -> bool {
        match self {
            VaultError::Transport { .. } => true,
            VaultError::Status { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            VaultError::Decode { .. }
            | VaultError::NoCredentials
            | VaultError::JwtFile { .. }
            | VaultError::Config(_) => false,
        }
    }

    /// A 403: a bad token or a policy that does not grant the path.
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, errors: &[&str]) -> VaultError {
        VaultError::Status {
            method: "GET".into(),
            path: "/v1/nomad/data/x".into(),
            status: code,
            errors: errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn sealed_and_gateway_errors_are_transient_4xx_never() {
        assert!(status(503, &["Vault is sealed"]).is_transient());
        assert!(status(500, &["internal error"]).is_transient());
        assert!(status(429, &[]).is_transient());
        assert!(!status(403, &["permission denied"]).is_transient());
        assert!(status(403, &["permission denied"]).is_forbidden());
        assert!(!status(404, &["no handler for route \"x\""]).is_transient());
        assert!(!status(400, &["invalid role or secret ID"]).is_transient());
        assert!(!VaultError::NoCredentials.is_transient());
    }

    #[test]
    fn a_decode_error_keeps_no_value() {
        let e = serde_json::from_str::<u32>("\"sup3r-s3cret\"").err();
        let shown = e.map(|e| VaultError::decode("GET", "/v1/x", &e).to_string());
        let shown = shown.unwrap_or_default();
        assert!(shown.contains("line 1"), "{shown}");
        assert!(!shown.contains("sup3r-s3cret"), "{shown}");
    }
}
