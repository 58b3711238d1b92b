//! S3 client errors, classified the way a reconciler must act on them.

/// A failed S3 call.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The server answered with an error (S3's XML `Code` and `Message`).
    #[error("s3 {operation} {bucket}: {status} {code}: {message}")]
    Status {
        /// The S3 operation (`PutBucketTagging`).
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// HTTP status code.
        status: u16,
        /// S3 error code (`NoSuchBucket`, `NotImplemented`).
        code: String,
        /// The server's message.
        message: String,
    },
    /// The request did not complete (connect error, timeout), or the answer was unreadable.
    #[error("s3 {operation} {bucket}: request failed")]
    Transport {
        /// The S3 operation.
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A request could not be built (a value S3 does not accept).
    #[error("s3 {operation} {bucket}: {message}")]
    Build {
        /// The S3 operation.
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// What was wrong.
        message: String,
    },
}

impl S3Error {
    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            S3Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The S3 error code, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            S3Error::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Worth retrying: timeouts, refused connections, 429, 500, 502–504 (`SlowDown`,
    /// `InternalError`, `ServiceUnavailable`). Never a 4xx, never a 501.
    pub fn is_transient(&self) -> bool {
        match self {
            S3Error::Transport { .. } => true,
            S3Error::Status { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            S3Error::Build { .. } => false,
        }
    }

    /// The server does not implement this operation (501 `NotImplemented`: the embedded
    /// s3s-fs has no versioning, policy, lifecycle or tagging).
    pub fn is_not_implemented(&self) -> bool {
        self.status() == Some(501) || self.code() == Some("NotImplemented")
    }

    /// The bucket does not exist.
    pub fn is_no_such_bucket(&self) -> bool {
        self.code() == Some("NoSuchBucket") || self.status() == Some(404)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: &str) -> S3Error {
        S3Error::Status {
            operation: "GetBucketTagging",
            bucket: "b".into(),
            status,
            code: code.into(),
            message: String::new(),
        }
    }

    #[test]
    fn only_server_trouble_is_transient_and_501_means_not_implemented() {
        assert!(status(503, "SlowDown").is_transient());
        assert!(status(500, "InternalError").is_transient());
        assert!(!status(403, "AccessDenied").is_transient());
        assert!(!status(409, "BucketNotEmpty").is_transient());
        assert!(!status(501, "NotImplemented").is_transient());
        assert!(status(501, "NotImplemented").is_not_implemented());
        assert!(!status(404, "NoSuchBucket").is_not_implemented());
        assert!(status(404, "NoSuchBucket").is_no_such_bucket());
    }
}
