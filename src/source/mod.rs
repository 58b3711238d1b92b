//! Git → [`Revision`]: fetch (git2) into a local mirror, poll with jitter, refresh on demand,
//! read trees at a commit. On fetch failure the last good revision stays in force.
//!
//! OWNER: source-store helper (git). `revision.rs` is shared and stable.

mod revision;

pub use revision::{Revision, RevisionError};
