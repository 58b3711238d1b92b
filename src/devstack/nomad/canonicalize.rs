//! Client-side `Canonicalize` (api/jobs.go) and the server's admission mutators on register.
//!
//! OWNER: devstack-jobspec helper. Skeleton only.

use serde_json::Value;

/// Fill the defaults `api.Job.Canonicalize()` fills (the `Canonicalize: true` parse option).
pub fn canonicalize(_job: &mut Value) {}

/// Turn a submitted `api.Job` into the stored `structs.Job`: canonicalize, `Datacenters=["*"]`
/// when empty, `NodePool="default"`, the agent region, injected Connect sidecar tasks, implicit
/// constraints, and every server field present (nil collections as `null`).
pub fn admit(_job: &mut Value, _region: &str) {}
