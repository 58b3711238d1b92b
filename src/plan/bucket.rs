//! Planning a `bucket`: the settings an app declares (versioning, policy, lifecycle, tags, and
//! drover's ownership tag) against what S3 said at the start of this cycle. A setting the app
//! does not declare is left alone. S3 has no modify index, so a marker records a fingerprint of
//! the settings read right after the last write: a different fingerprint is drift.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::consul_config_entry::diff_lines;
use super::render::Redaction;
use super::{AppliedMarker, Change, Payload, Reason, Verdict};
use crate::desired::{BUCKET_OWNER_TAG, BucketSpec, LifecycleRule, ResourceId};
use crate::live::LiveSnapshot;
use crate::providers::s3::{BucketSettings, Read, Versioning, Wanted};

/// What apply writes to one bucket (each `Some` is a setting to write).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BucketWrites {
    /// Create the bucket first.
    pub create: bool,
    /// Versioning on (`Enabled`) or off (`Suspended`).
    pub versioning: Option<bool>,
    /// The policy JSON (`None` inside: remove it).
    pub policy: Option<Option<String>>,
    /// The lifecycle rules (empty: remove the configuration).
    pub lifecycle: Option<Vec<LifecycleRule>>,
    /// The whole tag set, drover's ownership tag included.
    pub tags: Option<BTreeMap<String, String>>,
    /// The app declared tags: a server without tagging is an error, not a fallback to the
    /// store's ownership record.
    pub tags_declared: bool,
    /// What to read back after writing (the settings the app declares).
    #[serde(skip)]
    pub wanted: Wanted,
}

/// The settings to read for a spec: the ones it declares, and tags always (ownership).
pub fn wanted(spec: &BucketSpec) -> Wanted {
    Wanted {
        versioning: spec.versioning.is_some(),
        policy: spec.policy.is_some(),
        lifecycle: spec.lifecycle.is_some(),
        tags: true,
    }
}

/// A stable fingerprint of what was read, below 2^56 (it is stored as the marker's live index).
pub fn fingerprint(settings: &BucketSettings) -> u64 {
    let mut normal = settings.clone();
    if let Some(Read::Value(Some(policy))) = &normal.policy {
        normal.policy = Some(Read::Value(Some(canonical_policy_text(policy))));
    }
    let text = serde_json::to_string(&normal).unwrap_or_default();
    let digest = Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes[1..].copy_from_slice(&digest[..7]);
    // Never 0: a marker's 0 means "nothing recorded".
    u64::from_be_bytes(bytes).max(1)
}

/// Triage from this cycle's read and the marker: absent → create; present and never applied →
/// suspect (adoption); Git or the live fingerprint moved since the marker → suspect; else
/// unchanged. Without an S3 client, buckets are not managed.
pub fn triage(
    id: &ResourceId,
    spec_hash: &str,
    live: &LiveSnapshot,
    marker: Option<&AppliedMarker>,
) -> (Verdict, Reason) {
    if !live.s3_configured {
        return (Verdict::NotManaged, Reason::InSync);
    }
    match (live.bucket(&id.name).flatten(), marker) {
        (None, None) => (Verdict::Create, Reason::New),
        (None, Some(_)) => (Verdict::Create, Reason::Missing),
        (Some(_), None) => (Verdict::Suspect, Reason::Unmanaged),
        (Some(_), Some(m)) if m.spec_hash != spec_hash => (Verdict::Suspect, Reason::GitChanged),
        (Some(s), Some(m)) if fingerprint(s) != m.live_index => {
            (Verdict::Suspect, Reason::LiveChanged)
        }
        (Some(_), Some(_)) => (Verdict::Unchanged, Reason::InSync),
    }
}

/// The tags drover writes: the app's, plus `drover.app`.
pub fn desired_tags(app: &str, spec: &BucketSpec) -> BTreeMap<String, String> {
    let mut tags = spec.tags.clone();
    tags.insert(BUCKET_OWNER_TAG.to_string(), app.to_string());
    tags
}

/// Step 2 from this cycle's read: the settings that differ, as a diff and the writes.
pub(super) fn explain(
    app: &str,
    id: &ResourceId,
    spec: &BucketSpec,
    live: Option<&BucketSettings>,
    reason: Reason,
    redaction: &Redaction,
) -> (Change, Payload) {
    let nothing = BucketSettings::default();
    let have = live.unwrap_or(&nothing);
    let mut writes = BucketWrites {
        create: live.is_none(),
        tags_declared: !spec.tags.is_empty(),
        wanted: wanted(spec),
        ..BucketWrites::default()
    };
    let (mut before, mut after) = (serde_json::Map::new(), serde_json::Map::new());
    if let Some(on) = spec.versioning {
        let live_on = match &have.versioning {
            Some(Read::Value(v)) => Some(*v == Versioning::Enabled),
            // A server without versioning keeps no versions: "off" holds there.
            Some(Read::Unsupported) => Some(false),
            // A bucket about to be created is unversioned.
            None => Some(false),
        };
        if live_on != Some(on) {
            writes.versioning = Some(on);
            before.insert("Versioning".into(), versioning_text(&have.versioning));
            after.insert(
                "Versioning".into(),
                Value::from(if on { "Enabled" } else { "Suspended" }),
            );
        }
    }
    if let Some(policy) = &spec.policy {
        let want = canonical_policy(policy);
        let got = match &have.policy {
            Some(Read::Value(Some(text))) => serde_json::from_str(text)
                .ok()
                .map(|v| canonical_policy(&v)),
            _ => None,
        };
        if got.as_ref() != Some(&want) {
            writes.policy = Some(Some(policy.to_string()));
            before.extend(got.map(|g| ("Policy".to_string(), g)));
            after.insert("Policy".into(), want);
        }
    }
    if let Some(rules) = &spec.lifecycle {
        let mut want = rules.clone();
        want.sort();
        let got = match &have.lifecycle {
            Some(Read::Value(rules)) => Some(rules.clone()),
            Some(Read::Unsupported) => None,
            // A bucket about to be created has no rules.
            None => Some(Vec::new()),
        };
        if got.as_ref() != Some(&want) {
            writes.lifecycle = Some(want.clone());
            if let Some(got) = got.filter(|g| !g.is_empty()) {
                before.insert("Lifecycle".into(), rules_json(&got));
            }
            if !want.is_empty() {
                after.insert("Lifecycle".into(), rules_json(&want));
            }
        }
    }
    let want_tags = desired_tags(app, spec);
    match &have.tags {
        // No tagging on this server: ownership lives in drover's store; tags the app declares
        // are written anyway, so the step fails saying the server cannot keep them.
        Some(Read::Unsupported) if spec.tags.is_empty() => {}
        Some(Read::Value(got)) if *got == want_tags => {}
        got => {
            if let Some(Read::Value(got)) = got {
                before.insert("Tags".into(), serde_json::json!(got));
            }
            after.insert("Tags".into(), serde_json::json!(want_tags));
            writes.tags = Some(want_tags.clone());
        }
    }
    let title = format!("Bucket: \"{}\"", id.name);
    let lines = diff_lines(&Value::Object(before), &Value::Object(after), redaction);
    if writes.create {
        let diff = format!("+ {title}\n{}\n", lines.join("\n"));
        return (Change::Create { diff }, Payload::Bucket(writes));
    }
    if lines.is_empty() {
        // An existing bucket equal to desired is adopted (its tags name this app), except on a
        // server without tagging, where nothing proves it is this app's: left unowned.
        if reason == Reason::Unmanaged && have.tags != Some(Read::Value(want_tags)) {
            return (Change::Unchanged, Payload::None);
        }
        return (
            Change::Unchanged,
            Payload::Confirm {
                live_index: fingerprint(have),
            },
        );
    }
    let diff = format!("+/- {title}\n{}\n", lines.join("\n"));
    (Change::Update { diff }, Payload::Bucket(writes))
}

fn versioning_text(read: &Option<Read<Versioning>>) -> Value {
    match read {
        Some(Read::Value(Versioning::Enabled)) => Value::from("Enabled"),
        Some(Read::Value(Versioning::Suspended)) => Value::from("Suspended"),
        Some(Read::Value(Versioning::Off)) => Value::from("Off"),
        Some(Read::Unsupported) => Value::from("not implemented by the server"),
        None => Value::Null,
    }
}

fn rules_json(rules: &[LifecycleRule]) -> Value {
    Value::Array(
        rules
            .iter()
            .map(|r| {
                let mut o = serde_json::Map::new();
                o.insert("ID".into(), Value::from(r.id.as_str()));
                o.insert("Prefix".into(), Value::from(r.prefix.as_str()));
                o.insert(
                    "Status".into(),
                    Value::from(if r.enabled { "Enabled" } else { "Disabled" }),
                );
                let mut days = |key: &str, d: Option<i32>| {
                    if let Some(d) = d {
                        o.insert(key.into(), Value::from(d));
                    }
                };
                days("ExpirationDays", r.expire_days);
                days("NoncurrentDays", r.noncurrent_days);
                days("AbortMultipartDays", r.abort_multipart_days);
                Value::Object(o)
            })
            .collect(),
    )
}

/// A policy as servers store it, for comparing: `Action`, `Resource` and `Principal` values as
/// sorted lists (MinIO and AWS re-serialise `"s3:GetObject"` as `["s3:GetObject"]` and `"*"`
/// as `{"AWS": ["*"]}`), and an empty `Sid` dropped.
pub fn canonical_policy(policy: &Value) -> Value {
    let mut policy = policy.clone();
    let Some(statements) = policy.get_mut("Statement").and_then(Value::as_array_mut) else {
        return policy;
    };
    for st in statements.iter_mut() {
        let Some(st) = st.as_object_mut() else {
            continue;
        };
        if st.get("Sid").and_then(Value::as_str) == Some("") {
            st.remove("Sid");
        }
        for key in ["Action", "NotAction", "Resource", "NotResource"] {
            if let Some(v) = st.get_mut(key) {
                *v = sorted_list(v);
            }
        }
        for key in ["Principal", "NotPrincipal"] {
            if let Some(v) = st.get_mut(key) {
                if v.as_str() == Some("*") {
                    *v = serde_json::json!({"AWS": "*"});
                }
                if let Some(map) = v.as_object_mut() {
                    for inner in map.values_mut() {
                        *inner = sorted_list(inner);
                    }
                }
            }
        }
    }
    policy
}

fn canonical_policy_text(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .map(|v| canonical_policy(&v).to_string())
        .unwrap_or_else(|_| text.to_string())
}

fn sorted_list(value: &Value) -> Value {
    let mut items: Vec<Value> = match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    items.sort_by_key(Value::to_string);
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::ResourceKind;
    use serde_json::json;

    fn id() -> ResourceId {
        ResourceId {
            kind: ResourceKind::Bucket,
            scope: String::new(),
            name: "media".into(),
        }
    }

    fn spec() -> BucketSpec {
        BucketSpec {
            name: "media".into(),
            versioning: Some(true),
            lifecycle: None,
            policy: None,
            tags: BTreeMap::from([("team".to_string(), "a".to_string())]),
            prevent_destroy: false,
        }
    }

    fn settings(versioning: Versioning, tags: &[(&str, &str)]) -> BucketSettings {
        BucketSettings {
            versioning: Some(Read::Value(versioning)),
            tags: Some(Read::Value(
                tags.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )),
            ..BucketSettings::default()
        }
    }

    fn marker(hash: &str, index: u64) -> AppliedMarker {
        AppliedMarker {
            spec_hash: hash.into(),
            live_index: index,
            revision: "r".into(),
        }
    }

    #[test]
    fn triage_follows_presence_the_marker_and_the_fingerprint() {
        let mut live = LiveSnapshot::default();
        assert_eq!(
            triage(&id(), "h", &live, None),
            (Verdict::NotManaged, Reason::InSync),
            "no S3 client"
        );
        live.s3_configured = true;
        assert_eq!(
            triage(&id(), "h", &live, None),
            (Verdict::Create, Reason::New)
        );
        live.buckets.insert("media".into(), None);
        assert_eq!(
            triage(&id(), "h", &live, Some(&marker("h", 5))),
            (Verdict::Create, Reason::Missing)
        );
        let s = settings(Versioning::Enabled, &[]);
        let print = fingerprint(&s);
        live.buckets.insert("media".into(), Some(s));
        assert_eq!(
            triage(&id(), "h", &live, None),
            (Verdict::Suspect, Reason::Unmanaged)
        );
        assert_eq!(
            triage(&id(), "h", &live, Some(&marker("old", print))),
            (Verdict::Suspect, Reason::GitChanged)
        );
        assert_eq!(
            triage(&id(), "h", &live, Some(&marker("h", print + 1))),
            (Verdict::Suspect, Reason::LiveChanged)
        );
        assert_eq!(
            triage(&id(), "h", &live, Some(&marker("h", print))),
            (Verdict::Unchanged, Reason::InSync)
        );
    }

    #[test]
    fn fingerprints_differ_per_setting_stay_below_2_pow_56_and_ignore_policy_spelling() {
        let a = settings(Versioning::Enabled, &[]);
        let b = settings(Versioning::Suspended, &[]);
        let c = settings(Versioning::Enabled, &[("drover.app", "x")]);
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
        assert!(fingerprint(&a) < 1 << 56 && fingerprint(&a) > 0);
        let policy = |text: &str| BucketSettings {
            policy: Some(Read::Value(Some(text.into()))),
            ..BucketSettings::default()
        };
        assert_eq!(
            fingerprint(&policy(r#"{"Statement":[{"Action":"s3:GetObject"}]}"#)),
            fingerprint(&policy(r#"{"Statement": [{"Action": ["s3:GetObject"]}]}"#))
        );
    }

    #[test]
    fn explain_creates_updates_only_what_differs_and_confirms_a_match() {
        let (change, payload) = explain(
            "app",
            &id(),
            &spec(),
            None,
            Reason::GitChanged,
            &Redaction::default(),
        );
        assert_eq!(change.verb(), "create");
        let Payload::Bucket(w) = payload else {
            panic!("{payload:?}")
        };
        assert!(w.create && w.versioning == Some(true) && w.tags_declared);
        assert_eq!(
            w.tags,
            Some(BTreeMap::from([
                ("drover.app".to_string(), "app".to_string()),
                ("team".to_string(), "a".to_string())
            ]))
        );

        // What a new bucket already is (unversioned, no rules) is not written: a server without
        // versioning or lifecycle (s3s-fs) can still create it.
        let plain = BucketSpec {
            versioning: Some(false),
            lifecycle: Some(Vec::new()),
            ..spec()
        };
        let (change, payload) = explain(
            "app",
            &id(),
            &plain,
            None,
            Reason::New,
            &Redaction::default(),
        );
        assert_eq!(change.verb(), "create");
        let Payload::Bucket(w) = payload else {
            panic!("{payload:?}")
        };
        assert!(w.create && w.versioning.is_none() && w.lifecycle.is_none());

        let same = settings(Versioning::Enabled, &[("drover.app", "app"), ("team", "a")]);
        assert_eq!(
            explain(
                "app",
                &id(),
                &spec(),
                Some(&same),
                Reason::GitChanged,
                &Redaction::default()
            ),
            (
                Change::Unchanged,
                Payload::Confirm {
                    live_index: fingerprint(&same)
                }
            )
        );

        let drifted = settings(
            Versioning::Suspended,
            &[("drover.app", "app"), ("team", "b")],
        );
        let (change, payload) = explain(
            "app",
            &id(),
            &spec(),
            Some(&drifted),
            Reason::GitChanged,
            &Redaction::default(),
        );
        let Change::Update { diff } = change else {
            panic!("{change:?}")
        };
        assert!(
            diff.contains("+/- Versioning: \"Suspended\" => \"Enabled\""),
            "{diff}"
        );
        assert!(diff.contains("+/- Tags.team: \"b\" => \"a\""), "{diff}");
        let Payload::Bucket(w) = payload else {
            panic!("{payload:?}")
        };
        assert!(!w.create && w.versioning == Some(true) && w.tags.is_some());
        assert!(w.policy.is_none() && w.lifecycle.is_none());
    }

    #[test]
    fn a_server_without_tagging_keeps_ownership_in_the_store_unless_the_app_declares_tags() {
        let no_tags = BucketSettings {
            versioning: Some(Read::Unsupported),
            tags: Some(Read::Unsupported),
            ..BucketSettings::default()
        };
        let quiet = BucketSpec {
            versioning: Some(false),
            tags: BTreeMap::new(),
            ..spec()
        };
        let (change, payload) = explain(
            "app",
            &id(),
            &quiet,
            Some(&no_tags),
            Reason::GitChanged,
            &Redaction::default(),
        );
        assert_eq!(change, Change::Unchanged);
        assert!(matches!(payload, Payload::Confirm { .. }), "{payload:?}");
        // Not adopted: nothing on the bucket says it is this app's.
        let (change, payload) = explain(
            "app",
            &id(),
            &quiet,
            Some(&no_tags),
            Reason::Unmanaged,
            &Redaction::default(),
        );
        assert_eq!((change, payload), (Change::Unchanged, Payload::None));
        let (change, payload) = explain(
            "app",
            &id(),
            &spec(),
            Some(&no_tags),
            Reason::GitChanged,
            &Redaction::default(),
        );
        assert_eq!(change.verb(), "update");
        let Payload::Bucket(w) = payload else {
            panic!("{payload:?}")
        };
        assert!(w.tags.is_some() && w.versioning == Some(true));
    }

    #[test]
    fn policies_compare_as_servers_store_them_and_lifecycle_in_id_order() {
        let written = json!({"Version": "2012-10-17", "Statement": [{"Sid": "", "Effect": "Allow",
            "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::media/*"}]});
        let stored = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::media/*"]}]}"#;
        let rule = |id: &str| LifecycleRule {
            id: id.into(),
            prefix: String::new(),
            enabled: true,
            expire_days: Some(3),
            noncurrent_days: None,
            abort_multipart_days: None,
        };
        let s = BucketSpec {
            versioning: None,
            policy: Some(written),
            lifecycle: Some(vec![rule("b"), rule("a")]),
            tags: BTreeMap::new(),
            ..spec()
        };
        let live = BucketSettings {
            policy: Some(Read::Value(Some(stored.into()))),
            lifecycle: Some(Read::Value(vec![rule("a"), rule("b")])),
            tags: Some(Read::Value(BTreeMap::from([(
                "drover.app".to_string(),
                "app".to_string(),
            )]))),
            ..BucketSettings::default()
        };
        let (change, _) = explain(
            "app",
            &id(),
            &s,
            Some(&live),
            Reason::GitChanged,
            &Redaction::default(),
        );
        assert_eq!(change, Change::Unchanged);
        let gone = BucketSettings {
            policy: Some(Read::Value(None)),
            lifecycle: Some(Read::Value(Vec::new())),
            ..live
        };
        let (change, payload) = explain(
            "app",
            &id(),
            &s,
            Some(&gone),
            Reason::GitChanged,
            &Redaction::default(),
        );
        let Change::Update { diff } = change else {
            panic!("{change:?}")
        };
        assert!(
            diff.contains("+   Policy.Statement[0].Effect: \"Allow\""),
            "{diff}"
        );
        assert!(diff.contains("+   Lifecycle[1].ID: \"b\""), "{diff}");
        let Payload::Bucket(w) = payload else {
            panic!("{payload:?}")
        };
        assert!(w.policy.is_some() && w.lifecycle.as_ref().is_some_and(|l| l[0].id == "a"));
    }
}
