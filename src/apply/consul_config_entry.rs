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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::{
        APP, confirm, delete, devstack, plan, policy, results, step, unreachable_nomad,
    };
    use super::super::{StepResult, apply, apply_with};
    use crate::desired::{ResourceId, ResourceKind};
    use crate::plan::{Change, Payload, Reason};
    use crate::providers::consul::{ConsulClient, ConsulConfig};
    use crate::store::Store;

    fn entry_id(name: &str) -> ResourceId {
        ResourceId {
            kind: ResourceKind::ConsulConfigEntry,
            scope: "service-defaults".into(),
            name: name.into(),
        }
    }

    fn body(name: &str, protocol: &str, owner: Option<&str>) -> serde_json::Value {
        let mut e = json!({"Kind": "service-defaults", "Name": name, "Protocol": protocol});
        if let Some(owner) = owner {
            e["Meta"] = json!({ "drover.app": owner });
        }
        e
    }

    fn entry_write(name: &str, protocol: &str, cas: u64) -> crate::plan::Step {
        let change = if cas == 0 {
            Change::Create { diff: "+".into() }
        } else {
            Change::Update { diff: "~".into() }
        };
        step(
            entry_id(name),
            0,
            change,
            Reason::New,
            Payload::ConsulConfigEntry {
                entry: body(name, protocol, Some(APP)),
                cas,
            },
        )
    }

    fn consul_at(address: String) -> ConsulClient {
        ConsulClient::new(ConsulConfig {
            address,
            max_retries: 0,
            ..ConsulConfig::default()
        })
        .expect("consul client")
    }

    async fn modify_index(consul: &ConsulClient, name: &str) -> u64 {
        consul
            .read_config_entry("service-defaults", name)
            .await
            .expect("read")
            .map(|e| e.modify_index())
            .unwrap_or(0)
    }

    async fn protocol(consul: &ConsulClient, name: &str) -> Option<String> {
        consul
            .read_config_entry("service-defaults", name)
            .await
            .expect("read")
            .and_then(|e| e.body()["Protocol"].as_str().map(str::to_string))
    }

    #[tokio::test]
    async fn writes_use_cas_record_the_modify_index_and_a_lost_cas_is_a_conflict() {
        let (stack, nomad) = devstack("{}").await;
        let consul = consul_at(stack.consul_url());
        let store = Store::open_in_memory().expect("store");
        let run = |steps| {
            let (nomad, store, consul) = (nomad.clone(), store.clone(), consul.clone());
            async move {
                apply_with(
                    &nomad,
                    Some(&consul),
                    &store,
                    &plan(steps),
                    policy(true, true, Vec::new()),
                )
                .await
            }
        };

        let report = run(vec![entry_write("web", "http", 0)]).await;
        let created = modify_index(&consul, "web").await;
        assert!(created > 0);
        assert_eq!(
            results(&report),
            [(
                "web".to_string(),
                StepResult::Applied {
                    live_index: created
                }
            )]
        );
        assert_eq!(
            store.owner_of(&entry_id("web")).await.expect("owner"),
            Some(APP.into())
        );
        let markers = store.markers(APP).await.expect("markers");
        assert_eq!(markers.len(), 1);
        assert_eq!(markers[0].live_index, created);

        // Create-only (cas=0) over an existing entry: lost, not overwritten, nothing recorded.
        let report = run(vec![entry_write("web", "grpc", 0)]).await;
        match &report.steps[0].result {
            StepResult::Conflict { message } => assert!(message.contains("cas=0"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(protocol(&consul, "web").await.as_deref(), Some("http"));
        assert_eq!(
            store.markers(APP).await.expect("markers")[0].live_index,
            created
        );

        // An update with a stale index: lost; with the current one: written.
        let report = run(vec![entry_write("web", "grpc", created - 1)]).await;
        match &report.steps[0].result {
            StepResult::Conflict { message } => {
                assert!(
                    message.contains(&format!("ModifyIndex {}", created - 1)),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(protocol(&consul, "web").await.as_deref(), Some("http"));
        let report = run(vec![entry_write("web", "grpc", created)]).await;
        let updated = modify_index(&consul, "web").await;
        assert!(updated > created);
        assert_eq!(
            results(&report),
            [(
                "web".to_string(),
                StepResult::Applied {
                    live_index: updated
                }
            )]
        );
        assert_eq!(protocol(&consul, "web").await.as_deref(), Some("grpc"));
    }

    #[tokio::test]
    async fn consul_errors_fail_the_step_transient_only_when_retrying_can_help() {
        let (stack, nomad) = devstack("{}").await;
        let consul = consul_at(stack.consul_url());
        let store = Store::open_in_memory().expect("store");
        // A validation error (500 text) is permanent.
        let mut bad = entry_write("web", "http", 0);
        bad.payload = Payload::ConsulConfigEntry {
            entry: json!({"Kind": "service-intentions", "Name": "web",
                          "Sources": [{"Name": "api", "Action": "maybe"}]}),
            cas: 0,
        };
        let report = apply_with(
            &nomad,
            Some(&consul),
            &store,
            &plan(vec![bad]),
            policy(true, true, Vec::new()),
        )
        .await;
        assert!(
            matches!(
                &report.steps[0].result,
                StepResult::Failed {
                    transient: false,
                    ..
                }
            ),
            "{report:?}"
        );
        // An unreachable Consul is transient, for writes and prunes alike.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let gone = consul_at(format!("http://127.0.0.1:{port}"));
        store
            .record_owned(APP, &entry_id("old"))
            .await
            .expect("own");
        let steps = vec![entry_write("web", "http", 0), delete(entry_id("old"), 0)];
        let report = apply_with(
            &nomad,
            Some(&gone),
            &store,
            &plan(steps),
            policy(true, true, Vec::new()),
        )
        .await;
        for s in &report.steps {
            assert!(
                matches!(
                    &s.result,
                    StepResult::Failed {
                        transient: true,
                        ..
                    }
                ),
                "{report:?}"
            );
        }
        assert!(store.markers(APP).await.expect("markers").is_empty());
    }

    #[tokio::test]
    async fn without_a_consul_client_config_entries_fail_with_a_message_saying_so() {
        let store = Store::open_in_memory().expect("store");
        store
            .record_owned(APP, &entry_id("old"))
            .await
            .expect("own");
        let steps = vec![entry_write("web", "http", 0), delete(entry_id("old"), 0)];
        let report = apply(
            &unreachable_nomad(),
            &store,
            &plan(steps),
            policy(true, true, Vec::new()),
        )
        .await;
        for s in &report.steps {
            match &s.result {
                StepResult::Failed { message, transient } => {
                    assert!(message.contains("CONSUL_HTTP_ADDR"), "{message}");
                    assert!(!transient);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn prune_deletes_only_entries_whose_meta_names_the_app() {
        let (stack, nomad) = devstack("{}").await;
        let consul = consul_at(stack.consul_url());
        let store = Store::open_in_memory().expect("store");
        for (name, owner) in [
            ("ours", Some(APP)),
            ("unmarked", None),
            ("theirs", Some("other")),
        ] {
            assert!(
                consul
                    .write_config_entry(&body(name, "http", owner), 0)
                    .await
                    .expect("seed")
            );
            store.record_owned(APP, &entry_id(name)).await.expect("own");
        }
        store
            .record_owned(APP, &entry_id("gone"))
            .await
            .expect("own");
        let steps = ["ours", "unmarked", "theirs", "gone"]
            .into_iter()
            .map(|n| delete(entry_id(n), 0))
            .collect();
        let report = apply_with(
            &nomad,
            Some(&consul),
            &store,
            &plan(steps),
            policy(true, true, Vec::new()),
        )
        .await;
        let got = results(&report);
        assert_eq!(got[0], ("ours".to_string(), StepResult::Deleted));
        assert_eq!(got[3], ("gone".to_string(), StepResult::Deleted));
        for kept in [&got[1], &got[2]] {
            assert!(
                matches!(&kept.1, StepResult::Skipped { reason } if reason.contains("drover.app=media")),
                "{kept:?}"
            );
        }
        assert_eq!(protocol(&consul, "ours").await, None);
        assert!(protocol(&consul, "unmarked").await.is_some());
        assert!(protocol(&consul, "theirs").await.is_some());
        let owned = store.owned(APP).await.expect("owned");
        assert!(!owned.contains(&entry_id("ours")) && owned.contains(&entry_id("unmarked")));
    }

    #[tokio::test]
    async fn an_unmanaged_entry_equal_to_desired_is_adopted() {
        let store = Store::open_in_memory().expect("store");
        let steps = vec![confirm(entry_id("web"), 0, Reason::Unmanaged, 7)];
        let report = apply(
            &unreachable_nomad(),
            &store,
            &plan(steps),
            policy(true, true, Vec::new()),
        )
        .await;
        assert_eq!(
            results(&report),
            [("web".to_string(), StepResult::Confirmed)]
        );
        assert_eq!(
            store.owner_of(&entry_id("web")).await.expect("owner"),
            Some(APP.into())
        );
    }
}
