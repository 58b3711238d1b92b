//! JobDiff, annotation, update-kind and SpecChanged tests (api-facts §1.4, §1.5).

use serde_json::{Value, json};

use super::*;
use crate::nomad::canonicalize::admit;
use drover_jobspec::parse;

const BASE: &str = r#"job "web" {
  datacenters = ["dc1"]
  meta {
    owner = "alice"
  }
  group "web" {
    count = 2
    network {
      port "http" { to = 80 }
    }
    service {
      name = "web"
      port = "http"
      tags = ["a", "b"]
    }
    task "nginx" {
      driver = "docker"
      config {
        image = "nginx:1.25"
        ports = ["http"]
      }
      env {
        FOO = "1"
      }
      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}
"#;

fn admitted(hcl: &str) -> Value {
    let mut j = parse(hcl, "").unwrap();
    admit(&mut j, "global");
    j
}

fn edit(from: &str, to: &str) -> Value {
    assert!(BASE.contains(from), "{from}");
    admitted(&BASE.replace(from, to))
}

fn obj<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|a| a.iter().find(|x| x["Name"] == name))
        .unwrap_or_else(|| panic!("no diff named {name} in {list}"))
}

#[test]
fn new_job_diff_is_added_everywhere() {
    let new = admitted(BASE);
    let d = job_diff(None, &new);
    assert_eq!(d["Type"], "Added");
    assert_eq!(d["ID"], "web");
    let f = obj(&d["Fields"], "Meta[owner]");
    assert_eq!(
        f,
        &json!({"Type": "Added", "Name": "Meta[owner]", "Old": "", "New": "alice", "Annotations": null})
    );
    assert_eq!(obj(&d["Fields"], "Priority")["New"], "50");
    // Filtered job-level fields never appear.
    for k in JOB_FILTER {
        assert!(
            d["Fields"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["Name"] != *k),
            "{k}"
        );
    }
    assert_eq!(obj(&d["Objects"], "Datacenters")["Type"], "Added");
    let g = obj(&d["TaskGroups"], "web");
    assert_eq!(g["Type"], "Added");
    assert_eq!(obj(&g["Tasks"], "nginx")["Type"], "Added");
}

#[test]
fn identical_job_diff_is_none() {
    let a = admitted(BASE);
    let d = job_diff(Some(&a), &a.clone());
    assert_eq!(d["Type"], "None");
    // Nil slices encode as null, like Go's encoder.
    assert_eq!(d["Fields"], Value::Null);
    assert_eq!(d["Objects"], Value::Null);
    let g = obj(&d["TaskGroups"], "web");
    assert_eq!(g["Type"], "None");
    assert_eq!(
        obj(&g["Tasks"], "nginx")["Type"],
        "None",
        "unchanged tasks are listed with None"
    );
}

#[test]
fn edited_fields_carry_old_and_new() {
    let old = admitted(BASE);
    let new = edit("owner = \"alice\"", "owner = \"bob\"");
    let d = job_diff(Some(&old), &new);
    assert_eq!(d["Type"], "Edited");
    assert_eq!(
        d["Fields"],
        json!([{"Type": "Edited", "Name": "Meta[owner]", "Old": "alice", "New": "bob", "Annotations": null}])
    );
}

#[test]
fn edited_object_lists_contextual_none_fields() {
    let old = admitted(BASE);
    let new = edit("cpu    = 100", "cpu    = 200");
    let d = job_diff(Some(&old), &new);
    let t = obj(&obj(&d["TaskGroups"], "web")["Tasks"], "nginx");
    assert_eq!(t["Type"], "Edited");
    let res = obj(&t["Objects"], "Resources");
    assert_eq!(res["Type"], "Edited");
    let fields = res["Fields"].as_array().unwrap();
    assert_eq!(
        fields[0],
        json!({"Type": "Edited", "Name": "CPU", "Old": "100", "New": "200", "Annotations": null})
    );
    assert_eq!(
        obj(&res["Fields"], "MemoryMB"),
        &json!({"Type": "None", "Name": "MemoryMB", "Old": "128", "New": "128", "Annotations": null})
    );
}

#[test]
fn config_and_env_diffs_use_user_keys() {
    let old = admitted(BASE);
    let new = edit("FOO = \"1\"", "FOO = \"2\"\n        BAR = \"x\"");
    let new = {
        let mut n = new;
        n["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = json!("nginx:1.27");
        n
    };
    let d = job_diff(Some(&old), &new);
    let t = obj(&obj(&d["TaskGroups"], "web")["Tasks"], "nginx");
    let names: Vec<&str> = t["Fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Env[FOO]", "Env[BAR]"], "Edited sorts before Added");
    let cfg = obj(&t["Objects"], "Config");
    assert_eq!(obj(&cfg["Fields"], "image")["Old"], "nginx:1.25");
    assert_eq!(obj(&cfg["Fields"], "image")["New"], "nginx:1.27");
    assert_eq!(obj(&cfg["Fields"], "ports[0]")["Type"], "None");
}

#[test]
fn added_and_deleted_groups_and_sort_order() {
    let old = admitted(BASE);
    let mut new = old.clone();
    let mut g2 = new["TaskGroups"][0].clone();
    g2["Name"] = json!("api");
    new["TaskGroups"] = json!([g2]);
    new["Meta"]["owner"] = json!("bob");
    let d = job_diff(Some(&old), &new);
    let groups = d["TaskGroups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(
        (groups[0]["Name"].as_str(), groups[0]["Type"].as_str()),
        (Some("api"), Some("Added"))
    );
    assert_eq!(
        (groups[1]["Name"].as_str(), groups[1]["Type"].as_str()),
        (Some("web"), Some("Deleted"))
    );
    let mut ann = d.clone();
    annotate(&mut ann, &json!({}));
    assert_eq!(
        obj(&ann["TaskGroups"][0]["Tasks"], "nginx")["Annotations"],
        json!(["forces create"])
    );
    assert_eq!(
        obj(&ann["TaskGroups"][1]["Tasks"], "nginx")["Annotations"],
        json!(["forces destroy"])
    );
}

#[test]
fn service_tag_change_is_in_place_and_tags_are_a_set() {
    let old = admitted(BASE);
    let new = edit("tags = [\"a\", \"b\"]", "tags = [\"a\", \"c\"]");
    let mut d = job_diff(Some(&old), &new);
    let g = obj(&d["TaskGroups"], "web");
    let svc = obj(&g["Objects"], "Service");
    assert_eq!(svc["Type"], "Edited");
    let tags = obj(&svc["Objects"], "Tags");
    assert_eq!(tags["Type"], "Edited");
    assert_eq!(
        tags["Fields"],
        json!([
            {"Type": "Added", "Name": "Tags", "Old": "", "New": "c", "Annotations": null},
            {"Type": "Deleted", "Name": "Tags", "Old": "b", "New": "", "Annotations": null},
            {"Type": "None", "Name": "Tags", "Old": "a", "New": "a", "Annotations": null}
        ])
    );
    assert_eq!(
        update_kind(&old["TaskGroups"][0], &new["TaskGroups"][0]),
        UpdateKind::InPlace
    );
    annotate(
        &mut d,
        &json!({"web": {"Ignore": 0, "Place": 0, "InPlaceUpdate": 2, "DestructiveUpdate": 0}}),
    );
    assert_eq!(
        obj(&d["TaskGroups"], "web")["Updates"],
        json!({"in-place update": 2})
    );
}

/// api-facts §1.5: annotation strings and Updates keys are exact.
#[test]
fn annotations_follow_scheduler_rules() {
    let old = admitted(BASE);
    let new = edit("count = 2", "count = 5");
    let mut d = job_diff(Some(&old), &new);
    annotate(
        &mut d,
        &json!({"web": {"Ignore": 2, "Place": 3, "Migrate": 0, "Stop": 0, "InPlaceUpdate": 0,
            "DestructiveUpdate": 0, "Canary": 1}}),
    );
    let g = obj(&d["TaskGroups"], "web");
    assert_eq!(g["Updates"], json!({"ignore": 2, "create": 3, "canary": 1}));
    assert_eq!(
        obj(&g["Fields"], "Count")["Annotations"],
        json!(["forces create"])
    );
    assert_eq!(
        update_kind(&old["TaskGroups"][0], &new["TaskGroups"][0]),
        UpdateKind::Ignore
    );

    let down = edit("count = 2", "count = 1");
    let mut d = job_diff(Some(&old), &down);
    annotate(&mut d, &json!({"web": {"Stop": 1, "Ignore": 1}}));
    let g = obj(&d["TaskGroups"], "web");
    assert_eq!(g["Updates"], json!({"ignore": 1, "destroy": 1}));
    assert_eq!(
        obj(&g["Fields"], "Count")["Annotations"],
        json!(["forces destroy"])
    );

    let img = edit("nginx:1.25", "nginx:1.27");
    let mut d = job_diff(Some(&old), &img);
    annotate(&mut d, &json!({"web": {"DestructiveUpdate": 2}}));
    let g = obj(&d["TaskGroups"], "web");
    assert_eq!(g["Updates"], json!({"create/destroy update": 2}));
    assert_eq!(
        obj(&g["Tasks"], "nginx")["Annotations"],
        json!(["forces create/destroy update"])
    );
    assert_eq!(
        update_kind(&old["TaskGroups"][0], &img["TaskGroups"][0]),
        UpdateKind::Destructive
    );

    let kt = edit(
        "driver = \"docker\"",
        "driver = \"docker\"\n      kill_timeout = \"30s\"",
    );
    let mut d = job_diff(Some(&old), &kt);
    annotate(&mut d, &json!({}));
    let t = obj(&obj(&d["TaskGroups"], "web")["Tasks"], "nginx");
    assert_eq!(
        t["Annotations"],
        json!(["forces in-place update"]),
        "KillTimeout alone is in place"
    );
    assert_eq!(obj(&d["TaskGroups"], "web")["Updates"], Value::Null);
}

#[test]
fn update_kind_destructive_rules() {
    let old = admitted(BASE);
    for (from, to) in [
        ("FOO = \"1\"", "FOO = \"2\""),
        ("memory = 128", "memory = 256"),
        ("to = 80", "to = 81"),
        ("driver = \"docker\"", "driver = \"podman\""),
    ] {
        let new = edit(from, to);
        assert_eq!(
            update_kind(&old["TaskGroups"][0], &new["TaskGroups"][0]),
            UpdateKind::Destructive,
            "{from}"
        );
    }
    let new = edit(
        "count = 2",
        "count = 2\n    constraint {\n      attribute = \"${attr.kernel.name}\"\n      value = \"linux\"\n    }",
    );
    assert_eq!(
        update_kind(&old["TaskGroups"][0], &new["TaskGroups"][0]),
        UpdateKind::InPlace
    );
    assert_eq!(
        update_kind(&old["TaskGroups"][0], &old["TaskGroups"][0].clone()),
        UpdateKind::Ignore
    );
}

/// api-facts §1.4: only Status, StatusDescription, Stable, Version, CreateIndex, ModifyIndex,
/// JobModifyIndex and SubmitTime are masked.
#[test]
fn spec_changed_masks_only_the_listed_fields() {
    let old = admitted(BASE);
    for (k, v) in [
        ("Status", json!("running")),
        ("StatusDescription", json!("x")),
        ("Stable", json!(true)),
        ("Version", json!(7)),
        ("CreateIndex", json!(3)),
        ("ModifyIndex", json!(9)),
        ("JobModifyIndex", json!(9)),
        ("SubmitTime", json!(1_763_870_000_000_000_000_i64)),
    ] {
        let mut n = old.clone();
        n[k] = v;
        assert!(!spec_changed(&old, &n), "{k} is masked");
    }
    for (k, v) in [
        ("NomadTokenID", json!("accessor")),
        ("Meta", json!({"owner": "bob"})),
        ("Stop", json!(true)),
        (
            "VersionTag",
            json!({"Name": "v1", "Description": "", "TaggedTime": 0}),
        ),
        ("Priority", json!(60)),
    ] {
        let mut n = old.clone();
        n[k] = v;
        assert!(spec_changed(&old, &n), "{k} counts as a change");
    }
}

/// Every real jobspec diffs to None against itself and Added against nothing.
#[test]
fn example_jobspecs_diff_cleanly() {
    for (path, hcl) in drover_jobspec::examples::example_jobspecs() {
        let mut j = parse(&hcl, drover_jobspec::examples::vars_for(&hcl)).unwrap();
        admit(&mut j, "global");
        assert_eq!(job_diff(Some(&j), &j.clone())["Type"], "None", "{path}");
        assert_eq!(job_diff(None, &j)["Type"], "Added", "{path}");
        assert!(!spec_changed(&j, &j.clone()));
    }
}

#[test]
fn job_meta_change_is_destructive_for_every_group() {
    let old = admitted(BASE);
    let new = edit("owner = \"alice\"", "owner = \"bob\"");
    assert_eq!(
        update_kind(&old["TaskGroups"][0], &new["TaskGroups"][0]),
        UpdateKind::Ignore
    );
    assert_eq!(
        job_group_update_kind(&old, &new, "web"),
        UpdateKind::Destructive
    );
    assert_eq!(
        job_group_update_kind(&old, &old.clone(), "web"),
        UpdateKind::Ignore
    );
}
