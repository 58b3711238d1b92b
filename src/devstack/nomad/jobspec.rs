//! HCL2 jobspec → `api.Job` JSON, following Nomad's jobspec2 rules (`POST /v1/jobs/parse`).
//!
//! OWNER: devstack-jobspec helper. Skeleton only.

use serde_json::Value;

/// A parse failure, rendered like Nomad's diagnostics (`input.hcl:12,5-9: Unsupported argument; …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// The diagnostic text, without the `Failed to parse job: ` prefix the endpoint adds.
    pub message: String,
}

/// Parse an HCL2 jobspec with an optional HCL2 var-file body into an uncanonicalized `api.Job`.
pub fn parse(_hcl: &str, _variables: &str) -> Result<Value, ParseError> {
    Err(ParseError {
        message: "input.hcl: jobspec parsing not implemented yet".to_string(),
    })
}
