//! S3 client settings, read from the same environment variables as the AWS CLI and SDKs.

use std::time::Duration;

use crate::telemetry::Redacted;

/// How to reach an S3 endpoint.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Custom endpoint (`AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`; MinIO's address). With
    /// one, requests use path-style addressing (`http://minio:9000/bucket`).
    pub endpoint: Option<String>,
    /// Region (`AWS_REGION`, else `AWS_DEFAULT_REGION`, else the profile's, else `us-east-1`).
    pub region: Option<String>,
    /// Static credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`);
    /// without them the SDK's default chain (profile files, web identity, instance metadata).
    pub credentials: Option<StaticCredentials>,
    /// Profile of the shared `~/.aws/config` and `~/.aws/credentials` files (`AWS_PROFILE`).
    pub profile: Option<String>,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// How many times a transient failure is retried.
    pub max_retries: u32,
}

/// An access key pair; never printed.
#[derive(Clone)]
pub struct StaticCredentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Redacted<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Redacted<String>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<Redacted<String>>,
}

impl StaticCredentials {
    /// A key pair without session token.
    pub fn new(access_key_id: &str, secret_access_key: &str) -> StaticCredentials {
        StaticCredentials {
            access_key_id: Redacted(access_key_id.to_string()),
            secret_access_key: Redacted(secret_access_key.to_string()),
            session_token: None,
        }
    }
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticCredentials(<redacted>)")
    }
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: None,
            region: None,
            credentials: None,
            profile: None,
            request_timeout: Duration::from_secs(30),
            max_retries: 3,
        }
    }
}

impl S3Config {
    /// Settings from `AWS_*` variables when an S3 endpoint, a region, an access key or a profile
    /// is set; `None` otherwise (drover then manages no buckets, and says so on each one).
    pub fn from_lookup_when_set(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let set = [
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_PROFILE",
        ]
        .iter()
        .any(|k| lookup(k).is_some_and(|v| !v.is_empty()));
        set.then(|| Self::from_lookup(lookup))
    }

    /// Settings from any variable lookup (testable without touching the process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |key: &str| lookup(key).filter(|v| !v.is_empty());
        let credentials = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Some(StaticCredentials {
                access_key_id: Redacted(id),
                secret_access_key: Redacted(secret),
                session_token: get("AWS_SESSION_TOKEN").map(Redacted),
            }),
            _ => None,
        };
        S3Config {
            endpoint: get("AWS_ENDPOINT_URL_S3").or_else(|| get("AWS_ENDPOINT_URL")),
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            credentials,
            profile: get("AWS_PROFILE"),
            ..S3Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_is_read_like_the_aws_cli_and_secrets_never_print() {
        let env = |k: &str| {
            let value = match k {
                "AWS_ENDPOINT_URL" => "http://other:9000",
                "AWS_ENDPOINT_URL_S3" => "http://minio:9000",
                "AWS_DEFAULT_REGION" => "eu-west-1",
                "AWS_ACCESS_KEY_ID" => "AKIAEXAMPLE",
                "AWS_SECRET_ACCESS_KEY" => "s3-s3cr3t-value",
                "AWS_SESSION_TOKEN" => "s3ss10n-t0ken",
                _ => return None,
            };
            Some(value.to_string())
        };
        let c = S3Config::from_lookup_when_set(env).unwrap_or_default();
        assert_eq!(c.endpoint.as_deref(), Some("http://minio:9000"));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        let creds = c
            .credentials
            .as_ref()
            .map(|c| c.secret_access_key.expose().as_str());
        assert_eq!(creds, Some("s3-s3cr3t-value"));
        let debug = format!("{c:?}");
        for secret in ["AKIAEXAMPLE", "s3-s3cr3t-value", "s3ss10n-t0ken"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn nothing_set_means_no_s3_and_a_key_without_secret_uses_the_default_chain() {
        assert!(S3Config::from_lookup_when_set(|_| None).is_none());
        let c = S3Config::from_lookup(|k| (k == "AWS_ACCESS_KEY_ID").then(|| "id".to_string()));
        assert!(c.credentials.is_none() && c.endpoint.is_none());
    }
}
