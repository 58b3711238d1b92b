//! Git → [`Revision`]: fetch (git2) into a local mirror, poll with jitter, refresh on demand,
//! read trees at a commit. On fetch failure the last good revision stays in force.
//!
//! [`GitSource`] does the blocking Git work; [`SourceWatcher`] runs it on a schedule and
//! publishes a [`SourceStatus`]; [`init_repo_from_dir`] and [`commit_all`] make local
//! repositories for `drover demo` and tests.

mod git;
mod local;
pub mod packs;
mod revision;
pub mod verify;
mod watch;

pub use git::{CommitInfo, GitAuth, GitSource, Movement, SourceConfig, SourceError, redact_url};
pub use local::{SEED_BRANCH, commit_all, init_repo_from_dir};
pub use revision::{FileError, MAX_FILE_BYTES, Reads, Revision, RevisionError};
pub use watch::{SourceStatus, SourceWatcher};
