//! Pure planning: triage desired × live × last-applied, then ask the server about suspects only.
