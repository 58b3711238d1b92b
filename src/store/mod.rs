//! SQLite history store: sync history, last-applied markers, ownership, pins, events.
//!
//! OWNER: source-store helper. Skeleton only.
