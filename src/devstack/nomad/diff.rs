//! Nomad's structured job diff (structs/diff.go) and the SpecChanged rule.
//!
//! OWNER: devstack-jobspec helper. Skeleton only.

use serde_json::Value;

/// The contextual `JobDiff` between the stored job (`None` for a new job) and a candidate.
pub fn job_diff(_old: Option<&Value>, _new: &Value) -> Value {
    Value::Null
}

/// Nomad's `Job.SpecChanged`: a deep compare with status, version and index fields masked.
pub fn spec_changed(old: &Value, new: &Value) -> bool {
    old != new
}
