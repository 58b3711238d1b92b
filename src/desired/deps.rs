//! Implicit ordering inside an app, read from the resources themselves: a job waits for the CSI
//! volumes it mounts, the Vault secrets its templates read, the buckets its templates or env
//! name and the service-intentions of its Connect upstreams; service-defaults come before the
//! other config entries of the same service. Explicit `wave:`s add their own edges.

use std::sync::LazyLock;

use hcl::edit::expr::Expression as EditExpr;
use hcl::edit::structure::{Body, Structure};
use regex::Regex;

use super::{App, JobFormat, NomadJobSpec, ResourceId, ResourceSpec};

static SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\bsecrets?\s+"([^"]+)""#).unwrap_or_else(|_| unreachable!("literal regex"))
});

/// A bucket a template points at: an `s3://NAME` URL, or a `bucket: NAME` line (Litestream's
/// replica config).
static BUCKET_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)(?:s3://|^\s*-?\s*bucket:\s*["']?)([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\b"#)
        .unwrap_or_else(|_| unreachable!("literal regex"))
});

/// What a job refers to: CSI volume sources and Vault secret paths read by its templates.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JobRefs {
    /// `volume "x" { type = "csi", source = "..." }` sources.
    pub csi_sources: Vec<String>,
    /// `{{ with secret "mount/path" }}` paths, as written.
    pub secret_paths: Vec<String>,
    /// Template bodies and `env` values, where bucket names are looked for.
    pub texts: Vec<String>,
    /// Connect upstreams' `destination_name`s.
    pub upstreams: Vec<String>,
}

impl JobRefs {
    /// Whether the job's templates or env name `bucket` (as a whole name, not inside another).
    pub fn names_bucket(&self, bucket: &str) -> bool {
        let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
        self.texts.iter().any(|text| {
            text.match_indices(bucket).any(|(at, _)| {
                let before = text[..at].chars().next_back();
                let after = text[at + bucket.len()..].chars().next();
                !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
            })
        })
    }

    /// The buckets the job's templates or env point at (`s3://NAME`, a `bucket: NAME` line),
    /// declared in the app or not.
    pub fn pointed_buckets(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .texts
            .iter()
            .flat_map(|t| BUCKET_REF.captures_iter(t))
            .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Scan a jobspec (HCL2 text, or API JSON) for the volumes and secrets it uses.
pub fn job_refs(job: &NomadJobSpec) -> JobRefs {
    let mut refs = JobRefs::default();
    match job.format {
        JobFormat::Hcl2 => {
            if let Ok(body) = hcl::edit::parser::parse_body(&job.source) {
                walk(&body, &mut refs);
            }
        }
        JobFormat::Json => {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&job.source) {
                walk_json(&v, &mut refs);
            }
        }
    }
    refs.csi_sources.sort();
    refs.csi_sources.dedup();
    refs.secret_paths.sort();
    refs.secret_paths.dedup();
    refs.upstreams.sort();
    refs.upstreams.dedup();
    refs
}

fn literal_str(expr: &EditExpr) -> Option<String> {
    match expr {
        EditExpr::String(s) => Some(s.value().to_string()),
        _ => None,
    }
}

fn text_of(expr: &EditExpr) -> Option<String> {
    match expr {
        EditExpr::String(s) => Some(s.value().to_string()),
        EditExpr::HeredocTemplate(h) => Some(h.template.to_string()),
        EditExpr::StringTemplate(t) => Some(t.to_string()),
        _ => None,
    }
}

fn walk(body: &Body, refs: &mut JobRefs) {
    for s in body.iter() {
        let Structure::Block(b) = s else { continue };
        match b.ident.as_str() {
            "volume" => {
                let ty = b
                    .body
                    .get_attribute("type")
                    .and_then(|a| literal_str(&a.value));
                let per_alloc = b
                    .body
                    .get_attribute("per_alloc")
                    .is_some_and(|a| matches!(&a.value, EditExpr::Bool(v) if *v.value()));
                if ty.as_deref() == Some("csi")
                    && let Some(src) = b
                        .body
                        .get_attribute("source")
                        .and_then(|a| literal_str(&a.value))
                {
                    refs.csi_sources.push(csi_source(src, per_alloc));
                }
            }
            "template" => {
                if let Some(data) = b.body.get_attribute("data").and_then(|a| text_of(&a.value)) {
                    secrets_in(&data, refs);
                    refs.texts.push(data);
                }
            }
            "env" => {
                for attr in b.body.attributes() {
                    refs.texts.extend(text_of(&attr.value));
                }
            }
            "upstreams" => {
                refs.upstreams.extend(
                    b.body
                        .get_attribute("destination_name")
                        .and_then(|a| literal_str(&a.value)),
                );
            }
            _ => walk(&b.body, refs),
        }
    }
}

/// The volume a `source` names: with `per_alloc`, each allocation mounts `source[N]`; the
/// first one stands for them all.
fn csi_source(source: String, per_alloc: bool) -> String {
    if per_alloc {
        format!("{source}[0]")
    } else {
        source
    }
}

fn secrets_in(text: &str, refs: &mut JobRefs) {
    for c in SECRET.captures_iter(text) {
        if let Some(m) = c.get(1) {
            refs.secret_paths.push(m.as_str().to_string());
        }
    }
}

fn walk_json(v: &serde_json::Value, refs: &mut JobRefs) {
    match v {
        serde_json::Value::Object(map) => {
            if map.get("Type").and_then(|t| t.as_str()) == Some("csi")
                && let Some(src) = map.get("Source").and_then(|s| s.as_str())
            {
                let per_alloc = map.get("PerAlloc").and_then(|p| p.as_bool()) == Some(true);
                refs.csi_sources
                    .push(csi_source(src.to_string(), per_alloc));
            }
            if let Some(data) = map.get("EmbeddedTmpl").and_then(|s| s.as_str()) {
                secrets_in(data, refs);
                refs.texts.push(data.to_string());
            }
            if let Some(env) = map.get("Env").and_then(|e| e.as_object()) {
                refs.texts
                    .extend(env.values().filter_map(|v| v.as_str()).map(str::to_string));
            }
            if let Some(name) = map.get("DestinationName").and_then(|s| s.as_str()) {
                refs.upstreams.push(name.to_string());
            }
            map.values().for_each(|v| walk_json(v, refs));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| walk_json(v, refs)),
        _ => {}
    }
}

/// Whether a consul-template secret path (`nomad/default/overseerr`, or KV v2's
/// `nomad/data/default/overseerr`) names this mount and path.
pub fn secret_path_matches(template_path: &str, mount: &str, path: &str) -> bool {
    let Some(rest) = template_path
        .strip_prefix(mount)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return false;
    };
    let rest = rest.split('?').next().unwrap_or(rest);
    rest == path || rest.strip_prefix("data/") == Some(path)
}

/// Ordering edges inside an app, implicit and from explicit `wave:`s: `(a, b)` means `a` must
/// wait for `b`.
pub fn resource_dependencies(app: &App) -> Vec<(ResourceId, ResourceId)> {
    let mut edges = crate::plan::order::wave_edges(&app.explicit_waves);
    for r in &app.resources {
        match &r.spec {
            ResourceSpec::NomadJob(job) => {
                let refs = job_refs(job);
                for other in &app.resources {
                    let hit = match &other.spec {
                        ResourceSpec::CsiVolume(v) => {
                            other.id.scope == r.id.scope && refs.csi_sources.contains(&v.id)
                        }
                        ResourceSpec::VaultSecret(s) => refs
                            .secret_paths
                            .iter()
                            .any(|p| secret_path_matches(p, &s.mount, &s.path)),
                        ResourceSpec::Bucket(b) => refs.names_bucket(&b.name),
                        ResourceSpec::ConsulConfigEntry(e) => {
                            e.kind == "service-intentions" && refs.upstreams.contains(&e.name)
                        }
                        _ => false,
                    };
                    if hit {
                        edges.push((r.id.clone(), other.id.clone()));
                    }
                }
            }
            ResourceSpec::ConsulConfigEntry(e) if e.kind != "service-defaults" => {
                for other in &app.resources {
                    if let ResourceSpec::ConsulConfigEntry(d) = &other.spec
                        && d.kind == "service-defaults"
                        && d.name == e.name
                    {
                        edges.push((r.id.clone(), other.id.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    edges.retain(|(a, b)| a != b);
    edges.sort();
    edges.dedup();
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv2_paths_match_with_and_without_data() {
        assert!(secret_path_matches(
            "nomad/default/overseerr",
            "nomad",
            "default/overseerr"
        ));
        assert!(secret_path_matches(
            "nomad/data/default/overseerr",
            "nomad",
            "default/overseerr"
        ));
        assert!(!secret_path_matches(
            "nomad/default/other",
            "nomad",
            "default/overseerr"
        ));
        assert!(!secret_path_matches(
            "nomadx/default/overseerr",
            "nomad",
            "default/overseerr"
        ));
    }

    #[test]
    fn buckets_are_named_as_whole_names_and_pointed_at_by_url_or_bucket_line() {
        let refs = JobRefs {
            texts: vec![
                "replicas:\n  - type: s3\n    bucket: litestream-db\n".into(),
                "URL=s3://media.backups/x".into(),
                "MEDIA=media-archive".into(),
            ],
            ..JobRefs::default()
        };
        assert_eq!(refs.pointed_buckets(), ["litestream-db", "media.backups"]);
        assert!(refs.names_bucket("media-archive"));
        assert!(refs.names_bucket("litestream-db"));
        // Inside a longer name is not a mention.
        assert!(!refs.names_bucket("media"));
        assert!(!refs.names_bucket("archive"));
        assert!(!refs.names_bucket("litestream"));
    }

    #[test]
    fn upstreams_env_and_templates_from_hcl_and_json() {
        let hcl = NomadJobSpec {
            file: "j.nomad.hcl".into(),
            format: JobFormat::Hcl2,
            source: "job \"a\" {\n group \"g\" {\n  service {\n   connect {\n    sidecar_service {\n     proxy {\n      upstreams {\n       destination_name = \"minio\"\n       local_bind_port = 9000\n      }\n     }\n    }\n   }\n  }\n  task \"t\" {\n   env {\n    BUCKET = \"media\"\n   }\n  }\n }\n}\n".into(),
            variables: String::new(),
            job_id: "a".into(),
        };
        let refs = job_refs(&hcl);
        assert_eq!(refs.upstreams, ["minio"]);
        assert!(refs.names_bucket("media"));
        let json = NomadJobSpec {
            format: JobFormat::Json,
            source: r#"{"Job": {"TaskGroups": [{"Services": [{"Connect": {"SidecarService": {"Proxy": {"Upstreams": [{"DestinationName": "minio"}]}}}}], "Tasks": [{"Env": {"B": "media"}, "Templates": [{"EmbeddedTmpl": "s3://other-bucket/x"}]}]}]}}"#.into(),
            ..hcl
        };
        let refs = job_refs(&json);
        assert_eq!(refs.upstreams, ["minio"]);
        assert!(refs.names_bucket("media"));
        assert_eq!(refs.pointed_buckets(), ["other-bucket"]);
    }

    #[test]
    fn refs_from_hcl() {
        let job = NomadJobSpec {
            file: "j.nomad.hcl".into(),
            format: JobFormat::Hcl2,
            source: "job \"a\" {\n group \"g\" {\n  volume \"c\" {\n   type = \"csi\"\n   source = \"vol1\"\n  }\n  volume \"h\" {\n   type = \"host\"\n   source = \"hostvol\"\n  }\n  volume \"p\" {\n   type = \"csi\"\n   source = \"each\"\n   per_alloc = true\n  }\n  task \"t\" {\n   template {\n    data = <<EOF\n{{ with secret \"kv/app\" }}{{ end }}\nEOF\n   }\n  }\n }\n}\n".into(),
            variables: String::new(),
            job_id: "a".into(),
        };
        let refs = job_refs(&job);
        assert_eq!(refs.csi_sources, vec!["each[0]", "vol1"]);
        assert_eq!(refs.secret_paths, vec!["kv/app"]);
    }
}
