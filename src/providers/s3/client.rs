//! The S3 client: bucket existence, the four settings drover manages, emptiness, create and
//! delete. Each call is counted (`requests`), so tests and the bench see what a cycle costs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
    BucketVersioningStatus, CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration,
    LifecycleRuleFilter, NoncurrentVersionExpiration, Tag, Tagging, VersioningConfiguration,
};
use serde::Serialize;

use super::{S3Config, S3Error};
use crate::desired::LifecycleRule;
use crate::telemetry::metrics::RequestCounter;

/// Counts each HTTP attempt of the SDK by its status code (`error` when none came back).
#[derive(Debug)]
struct CountAttempts(RequestCounter);

impl Intercept for CountAttempts {
    fn name(&self) -> &'static str {
        "drover::CountAttempts"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        match context.response() {
            Some(response) => self.0.answered(response.status().as_u16()),
            None => self.0.unanswered(),
        }
        Ok(())
    }
}

/// A bucket's versioning state as S3 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Versioning {
    /// Never enabled.
    Off,
    /// `Enabled`.
    Enabled,
    /// `Suspended` (was enabled; S3 never goes back to off).
    Suspended,
}

/// One setting as read: its value, or the server does not implement it (501).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Read<T> {
    /// The value.
    Value(T),
    /// The server answered 501 NotImplemented.
    Unsupported,
}

impl<T> Read<T> {
    /// The value, if the server implements the setting.
    pub fn value(&self) -> Option<&T> {
        match self {
            Read::Value(v) => Some(v),
            Read::Unsupported => None,
        }
    }
}

/// The settings of one bucket drover read (`None`: not read, because not declared).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct BucketSettings {
    /// Versioning.
    pub versioning: Option<Read<Versioning>>,
    /// The policy document (JSON text as stored; `None` inside: no policy).
    pub policy: Option<Read<Option<String>>>,
    /// Lifecycle rules, sorted by ID (empty: no lifecycle configuration).
    pub lifecycle: Option<Read<Vec<LifecycleRule>>>,
    /// Tags, drover's ownership tag included (empty: no tag set).
    pub tags: Option<Read<BTreeMap<String, String>>>,
}

/// Which settings to read (the ones an app declares; tags always, for ownership).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Read versioning.
    pub versioning: bool,
    /// Read the policy.
    pub policy: bool,
    /// Read the lifecycle rules.
    pub lifecycle: bool,
    /// Read the tags.
    pub tags: bool,
}

/// An S3 client with drover's settings and a request counter.
#[derive(Clone)]
pub struct S3Client {
    inner: aws_sdk_s3::Client,
    requests: Arc<AtomicU64>,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client").finish_non_exhaustive()
    }
}

type Result<T> = std::result::Result<T, S3Error>;

impl S3Client {
    /// A client for `config`: rustls with ring (no aws-lc), path-style addressing when an
    /// endpoint is given (MinIO), static credentials when given, else the SDK's default chain.
    pub async fn new(config: S3Config) -> S3Client {
        crate::providers::install_crypto_provider();
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let region = config.region.clone().unwrap_or_else(|| "us-east-1".into());
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .region(aws_config::Region::new(region))
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(config.max_retries.saturating_add(1)),
            )
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(config.request_timeout)
                    .connect_timeout(std::time::Duration::from_secs(10))
                    .build(),
            );
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(creds) = &config.credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                creds.access_key_id.expose(),
                creds.secret_access_key.expose(),
                creds.session_token.as_ref().map(|t| t.expose().clone()),
                None,
                "drover",
            ));
        }
        let shared = loader.load().await;
        let s3 = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.endpoint.is_some())
            .build();
        S3Client {
            inner: aws_sdk_s3::Client::from_conf(s3),
            requests: Arc::default(),
        }
    }

    /// The same client, counting every HTTP attempt it (and its clones) makes in `requests`, by
    /// status code: an interceptor sees each attempt the SDK sends, retries included.
    pub fn counting_requests(mut self, requests: RequestCounter) -> S3Client {
        let config = self
            .inner
            .config()
            .to_builder()
            .interceptor(CountAttempts(requests))
            .build();
        self.inner = aws_sdk_s3::Client::from_conf(config);
        self
    }

    /// The SDK client itself, for tests and tools that change a bucket behind drover's back
    /// (drover's own calls go through the methods here, which count them).
    pub fn sdk(&self) -> &aws_sdk_s3::Client {
        &self.inner
    }

    /// How many requests this client (and its clones) sent.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the bucket exists (`HeadBucket`; 404 is no).
    pub async fn exists(&self, bucket: &str) -> Result<bool> {
        self.count();
        match self.inner.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = convert("HeadBucket", bucket, e);
                if e.status() == Some(404) {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The settings `wanted` of an existing bucket, one request each.
    pub async fn settings(&self, bucket: &str, wanted: Wanted) -> Result<BucketSettings> {
        Ok(BucketSettings {
            versioning: match wanted.versioning {
                true => Some(self.versioning(bucket).await?),
                false => None,
            },
            policy: match wanted.policy {
                true => Some(self.policy(bucket).await?),
                false => None,
            },
            lifecycle: match wanted.lifecycle {
                true => Some(self.lifecycle(bucket).await?),
                false => None,
            },
            tags: match wanted.tags {
                true => Some(self.tags(bucket).await?),
                false => None,
            },
        })
    }

    /// Create the bucket (with a location constraint outside `us-east-1`).
    pub async fn create(&self, bucket: &str) -> Result<()> {
        self.count();
        let mut call = self.inner.create_bucket().bucket(bucket);
        let region = self.inner.config().region().map(|r| r.as_ref().to_string());
        if let Some(region) = region.filter(|r| r != "us-east-1") {
            call = call.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        call.send()
            .await
            .map(|_| ())
            .map_err(|e| convert("CreateBucket", bucket, e))
    }

    /// Versioning (`GetBucketVersioning`).
    pub async fn versioning(&self, bucket: &str) -> Result<Read<Versioning>> {
        self.count();
        let answer = self
            .inner
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await;
        supported(answer.map_err(|e| convert("GetBucketVersioning", bucket, e))).map(|read| {
            match read {
                Read::Value(out) => Read::Value(match out.status() {
                    Some(BucketVersioningStatus::Enabled) => Versioning::Enabled,
                    Some(BucketVersioningStatus::Suspended) => Versioning::Suspended,
                    _ => Versioning::Off,
                }),
                Read::Unsupported => Read::Unsupported,
            }
        })
    }

    /// Turn versioning on (`Enabled`) or off (`Suspended`: S3 cannot go back to never-enabled).
    pub async fn put_versioning(&self, bucket: &str, enabled: bool) -> Result<()> {
        self.count();
        let status = if enabled {
            BucketVersioningStatus::Enabled
        } else {
            BucketVersioningStatus::Suspended
        };
        self.inner
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(VersioningConfiguration::builder().status(status).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| convert("PutBucketVersioning", bucket, e))
    }

    /// The policy document, `None` when the bucket has none (`NoSuchBucketPolicy`).
    pub async fn policy(&self, bucket: &str) -> Result<Read<Option<String>>> {
        self.count();
        let answer = self.inner.get_bucket_policy().bucket(bucket).send().await;
        match answer.map_err(|e| convert("GetBucketPolicy", bucket, e)) {
            Ok(out) => Ok(Read::Value(out.policy().map(str::to_string))),
            Err(e) if e.code() == Some("NoSuchBucketPolicy") => Ok(Read::Value(None)),
            Err(e) => supported::<()>(Err(e)).map(|_| Read::Unsupported),
        }
    }

    /// Set the policy (`Some`) or remove it (`None`).
    pub async fn put_policy(&self, bucket: &str, policy: Option<&str>) -> Result<()> {
        self.count();
        match policy {
            Some(policy) => self
                .inner
                .put_bucket_policy()
                .bucket(bucket)
                .policy(policy)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| convert("PutBucketPolicy", bucket, e)),
            None => self
                .inner
                .delete_bucket_policy()
                .bucket(bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| convert("DeleteBucketPolicy", bucket, e)),
        }
    }

    /// The lifecycle rules drover understands, sorted by ID; empty when there is no
    /// configuration (`NoSuchLifecycleConfiguration`).
    pub async fn lifecycle(&self, bucket: &str) -> Result<Read<Vec<LifecycleRule>>> {
        self.count();
        let answer = self
            .inner
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await;
        match answer.map_err(|e| convert("GetBucketLifecycleConfiguration", bucket, e)) {
            Ok(out) => {
                let mut rules: Vec<LifecycleRule> = out.rules().iter().map(typed_rule).collect();
                rules.sort();
                Ok(Read::Value(rules))
            }
            Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => {
                Ok(Read::Value(Vec::new()))
            }
            Err(e) => supported::<()>(Err(e)).map(|_| Read::Unsupported),
        }
    }

    /// Replace the lifecycle rules (an empty list deletes the configuration).
    pub async fn put_lifecycle(&self, bucket: &str, rules: &[LifecycleRule]) -> Result<()> {
        self.count();
        if rules.is_empty() {
            return self
                .inner
                .delete_bucket_lifecycle()
                .bucket(bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| convert("DeleteBucketLifecycle", bucket, e));
        }
        let build = |message: String| S3Error::Build {
            operation: "PutBucketLifecycleConfiguration",
            bucket: bucket.to_string(),
            message,
        };
        let mut wire = Vec::new();
        for rule in rules {
            let mut b = aws_sdk_s3::types::LifecycleRule::builder()
                .id(&rule.id)
                .status(if rule.enabled {
                    ExpirationStatus::Enabled
                } else {
                    ExpirationStatus::Disabled
                })
                .filter(LifecycleRuleFilter::builder().prefix(&rule.prefix).build());
            if let Some(days) = rule.expire_days {
                b = b.expiration(LifecycleExpiration::builder().days(days).build());
            }
            if let Some(days) = rule.noncurrent_days {
                b = b.noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(days)
                        .build(),
                );
            }
            if let Some(days) = rule.abort_multipart_days {
                b = b.abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(days)
                        .build(),
                );
            }
            wire.push(b.build().map_err(|e| build(e.to_string()))?);
        }
        let configuration = BucketLifecycleConfiguration::builder()
            .set_rules(Some(wire))
            .build()
            .map_err(|e| build(e.to_string()))?;
        self.inner
            .put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(configuration)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| convert("PutBucketLifecycleConfiguration", bucket, e))
    }

    /// The bucket's tags; empty when it has none (`NoSuchTagSet`).
    pub async fn tags(&self, bucket: &str) -> Result<Read<BTreeMap<String, String>>> {
        self.count();
        let answer = self.inner.get_bucket_tagging().bucket(bucket).send().await;
        match answer.map_err(|e| convert("GetBucketTagging", bucket, e)) {
            Ok(out) => Ok(Read::Value(
                out.tag_set()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect(),
            )),
            Err(e) if e.code() == Some("NoSuchTagSet") => Ok(Read::Value(BTreeMap::new())),
            Err(e) => supported::<()>(Err(e)).map(|_| Read::Unsupported),
        }
    }

    /// Replace the bucket's tags.
    pub async fn put_tags(&self, bucket: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.count();
        let build = |message: String| S3Error::Build {
            operation: "PutBucketTagging",
            bucket: bucket.to_string(),
            message,
        };
        let mut set = Vec::new();
        for (key, value) in tags {
            set.push(
                Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(|e| build(e.to_string()))?,
            );
        }
        let tagging = Tagging::builder()
            .set_tag_set(Some(set))
            .build()
            .map_err(|e| build(e.to_string()))?;
        self.inner
            .put_bucket_tagging()
            .bucket(bucket)
            .tagging(tagging)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| convert("PutBucketTagging", bucket, e))
    }

    /// The newest object under `prefix` (its key and `LastModified`), over every page of
    /// ListObjectsV2; `None` when there is none.
    pub async fn newest_object(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Option<(String, std::time::SystemTime)>> {
        let mut newest: Option<(String, std::time::SystemTime)> = None;
        let mut continuation: Option<String> = None;
        loop {
            self.count();
            let page = self
                .inner
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(continuation.take())
                .send()
                .await
                .map_err(|e| convert("ListObjectsV2", bucket, e))?;
            for object in page.contents() {
                let (Some(key), Some(modified)) = (object.key(), object.last_modified()) else {
                    continue;
                };
                let Ok(modified) = std::time::SystemTime::try_from(*modified) else {
                    continue;
                };
                if newest.as_ref().is_none_or(|(_, at)| modified > *at) {
                    newest = Some((key.to_string(), modified));
                }
            }
            match page.next_continuation_token() {
                Some(token) if page.is_truncated() == Some(true) => {
                    continuation = Some(token.to_string());
                }
                _ => return Ok(newest),
            }
        }
    }

    /// Whether the bucket holds no object and no object version (one key is enough to say no).
    pub async fn is_empty(&self, bucket: &str) -> Result<bool> {
        self.count();
        let objects = self
            .inner
            .list_objects_v2()
            .bucket(bucket)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| convert("ListObjectsV2", bucket, e))?;
        if !objects.contents().is_empty() || objects.key_count().unwrap_or(0) > 0 {
            return Ok(false);
        }
        self.count();
        let versions = self
            .inner
            .list_object_versions()
            .bucket(bucket)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| convert("ListObjectVersions", bucket, e));
        match versions {
            Ok(v) => Ok(v.versions().is_empty() && v.delete_markers().is_empty()),
            // A server without versioning has no versions to keep.
            Err(e) if e.is_not_implemented() => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Delete the (empty) bucket; S3 itself refuses a non-empty one (`BucketNotEmpty`).
    pub async fn delete(&self, bucket: &str) -> Result<()> {
        self.count();
        self.inner
            .delete_bucket()
            .bucket(bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| convert("DeleteBucket", bucket, e))
    }
}

/// A 501 answer as [`Read::Unsupported`]; other errors stay errors.
fn supported<T>(answer: Result<T>) -> Result<Read<T>> {
    match answer {
        Ok(v) => Ok(Read::Value(v)),
        Err(e) if e.is_not_implemented() => Ok(Read::Unsupported),
        Err(e) => Err(e),
    }
}

fn typed_rule(rule: &aws_sdk_s3::types::LifecycleRule) -> LifecycleRule {
    #[allow(deprecated)] // the rule-level Prefix of older clients, read as a fallback
    let legacy_prefix = rule.prefix();
    LifecycleRule {
        id: rule.id().unwrap_or_default().to_string(),
        prefix: rule
            .filter()
            .and_then(LifecycleRuleFilter::prefix)
            .or(legacy_prefix)
            .unwrap_or_default()
            .to_string(),
        enabled: *rule.status() == ExpirationStatus::Enabled,
        expire_days: rule.expiration().and_then(LifecycleExpiration::days),
        noncurrent_days: rule
            .noncurrent_version_expiration()
            .and_then(NoncurrentVersionExpiration::noncurrent_days),
        abort_multipart_days: rule
            .abort_incomplete_multipart_upload()
            .and_then(AbortIncompleteMultipartUpload::days_after_initiation),
    }
}

/// The SDK's error as an [`S3Error`]: the status and S3 code when the server answered.
fn convert<E>(operation: &'static str, bucket: &str, error: SdkError<E, HttpResponse>) -> S3Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    match (&error, status) {
        (SdkError::ServiceError(_) | SdkError::ResponseError(_), Some(status)) => S3Error::Status {
            operation,
            bucket: bucket.to_string(),
            status,
            code: error.code().unwrap_or_default().to_string(),
            message: error.message().unwrap_or_default().to_string(),
        },
        _ => S3Error::Transport {
            operation,
            bucket: bucket.to_string(),
            source: Box::new(error),
        },
    }
}
