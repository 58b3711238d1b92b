//! One task per app, a concurrency limit, level-triggered reconcile cycles.
