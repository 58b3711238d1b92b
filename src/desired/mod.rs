//! [`Revision`](crate::source::Revision) → [`App`]s: raw manifests (with spans), then typed apps.
//! Every error of an app is collected; a broken app never hides the others.
//!
//! OWNER: desired helper. `app.rs` and `diagnostic.rs` types are the contract with `plan/`.

mod app;
mod diagnostic;

pub use app::*;
pub use diagnostic::Diagnostic;

use crate::source::Revision;

/// The outcome of loading one app folder.
#[derive(Debug, Clone)]
pub struct LoadedApp {
    /// The app's name (from `name:`, or the folder name when the manifest is unreadable).
    pub name: String,
    /// The folder, `apps/<name>`.
    pub dir: String,
    /// The typed app, or every error found in it (the app is then `InvalidSpec`).
    pub result: Result<App, Vec<Diagnostic>>,
}

/// Everything loaded from one revision.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// One entry per `apps/*/app.yaml`, sorted by name.
    pub apps: Vec<LoadedApp>,
    /// Errors not tied to one app (a bad root `drover.yaml`, duplicate app names).
    pub repo_errors: Vec<Diagnostic>,
}

/// Load every app of a revision.
pub fn load(_revision: &Revision) -> Loaded {
    Loaded::default()
}

/// Implicit ordering edges `(dependent, dependency)` inside an app (STUB until the desired branch lands).
pub fn resource_dependencies(_app: &App) -> Vec<(ResourceId, ResourceId)> {
    Vec::new()
}
