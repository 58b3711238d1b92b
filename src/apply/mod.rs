//! Executes a plan: CAS writes, retries on transient errors only, the prune guard.
