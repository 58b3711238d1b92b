//! Applying a `consul_config_entry`: `PUT /v1/config?cas=` with the index the plan saw (a lost
//! CAS is a conflict, never retried blindly), and a prune that deletes only an entry whose
//! `Meta` names this app, again with `cas`.

use serde_json::Value;

use super::{StepResult, Write, failed};
use crate::desired::ResourceId;
use crate::plan::consul_config_entry::OWNER_META_KEY;
use crate::providers::consul::ConsulClient;

/// What a step says when no Consul client is configured.
pub(super) fn no_consul() -> StepResult {
    StepResult::Failed {
        message: "no Consul client configured: set CONSUL_HTTP_ADDR (and CONSUL_HTTP_TOKEN) so \
                  drover can manage config entries"
            .into(),
        transient: false,
    }
}

/// Write the entry with `cas`, then record ownership and the marker at the entry's new
/// `ModifyIndex`.
pub(super) async fn put(
    consul: &ConsulClient,
    id: &ResourceId,
    entry: &Value,
    cas: u64,
    write: &Write<'_>,
) -> StepResult {
    match consul.write_config_entry(entry, cas).await {
        Ok(true) => {}
        Ok(false) => return lost_cas(cas),
        Err(e) => return failed(&e, e.is_transient()),
    }
    match consul.read_config_entry(&id.scope, &id.name).await {
        Ok(Some(written)) => write.record(written.modify_index()).await,
        // Deleted right after our write: the next cycle sees it missing.
        Ok(None) => write.record(0).await,
        Err(e) => failed(&e, e.is_transient()),
    }
}

fn lost_cas(cas: u64) -> StepResult {
    StepResult::Conflict {
        message: if cas == 0 {
            "the entry was created by someone else since the plan (cas=0 lost); not overwritten"
                .into()
        } else {
            format!(
                "the entry changed since the plan saw ModifyIndex {cas} (cas lost); not overwritten"
            )
        },
    }
}

/// Delete the entry only if its `Meta` names this app (the store's ownership was checked
/// before), with `cas` = the `ModifyIndex` read, so a concurrent change is not deleted.
pub(super) async fn prune(consul: &ConsulClient, app: &str, id: &ResourceId) -> StepResult {
    let live = match consul.read_config_entry(&id.scope, &id.name).await {
        Ok(Some(live)) => live,
        Ok(None) => return StepResult::Deleted,
        Err(e) => return failed(&e, e.is_transient()),
    };
    if live.meta_value(OWNER_META_KEY) != Some(app) {
        return StepResult::Skipped {
            reason: format!("its Meta does not say {OWNER_META_KEY}={app}; not deleted"),
        };
    }
    match consul
        .delete_config_entry(&id.scope, &id.name, live.modify_index())
        .await
    {
        Ok(true) => StepResult::Deleted,
        Ok(false) => lost_cas(live.modify_index()),
        Err(e) => failed(&e, e.is_transient()),
    }
}
