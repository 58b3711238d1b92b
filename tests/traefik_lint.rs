//! `drover validate` lints the Traefik tags of the jobs' services: a router without rule or
//! entrypoint and a router name two apps declare are errors (exit 1); a Connect service without
//! `traefik.consulcatalog.connect=true` and a Traefik service without a check are warnings
//! (exit 0). `drover.yaml` `traefik:` declares the cluster's default entrypoints and rule.

use std::path::Path;
use std::process::Command;

/// A jobspec with one group service carrying `tags`; `extra` goes inside the service block.
/// The service block starts on line 6, the first tag is on line 10 (11 and on for the others).
fn job(id: &str, tags: &[&str], extra: &str) -> String {
    let tags: Vec<String> = tags.iter().map(|t| format!("        \"{t}\",\n")).collect();
    format!(
        r#"job "{id}" {{
  group "{id}" {{
    network {{
      port "http" {{ to = 80 }}
    }}
    service {{
      name = "{id}"
      port = "http"
      tags = [
{}      ]
{extra}    }}
    task "{id}" {{
      driver = "docker"
      config {{ image = "nginx" }}
    }}
  }}
}}
"#,
        tags.concat()
    )
}

const CHECK: &str = "      check {\n        type     = \"http\"\n        path     = \"/\"\n        interval = \"10s\"\n        timeout  = \"2s\"\n      }\n";

/// A repository with the given files.
fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (path, text) in files {
        let path = dir.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

fn app_yaml(name: &str) -> String {
    format!("name: {name}\nresources:\n  - nomad_job: {{ file: job.nomad.hcl }}\n")
}

/// `drover validate <dir>` with no cluster: its exit code and output.
fn validate(dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("validate")
        .arg(dir)
        .env_remove("NOMAD_ADDR")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

const ROUTED: &[&str] = &[
    "traefik.enable=true",
    "traefik.http.routers.web.rule=Host(`web.example.com`)",
    "traefik.http.routers.web.entrypoints=websecure",
];

#[test]
fn a_complete_router_with_a_check_validates_clean() {
    let dir = repo(&[
        ("apps/web/app.yaml", &app_yaml("web")),
        ("apps/web/job.nomad.hcl", &job("web", ROUTED, CHECK)),
    ]);
    let (code, text) = validate(dir.path());
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("warning"), "{text}");
}

#[test]
fn a_router_without_entrypoint_fails_unless_drover_yaml_declares_a_default() {
    let tags = [
        "traefik.enable=true",
        "traefik.http.routers.web.rule=Host(`web.example.com`)",
    ];
    let files = [
        ("apps/web/app.yaml", app_yaml("web")),
        ("apps/web/job.nomad.hcl", job("web", &tags, CHECK)),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let (code, text) = validate(repo(&files).path());
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("error web: 1 problem(s)"), "{text}");
    assert!(
        text.contains(
            "apps/web/job.nomad.hcl:11:9: traefik.http.routers.web.entrypoints: Traefik router \"web\" of service \"web\" has no entrypoint"
        ),
        "{text}"
    );

    let mut with_default = files.clone();
    with_default.push((
        "drover.yaml",
        "traefik:\n  default_entrypoints: [websecure]\n",
    ));
    let (code, text) = validate(repo(&with_default).path());
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok    web"), "{text}");
}

#[test]
fn traefik_enable_alone_needs_a_rule_and_an_entrypoint() {
    let dir = repo(&[
        ("apps/web/app.yaml", &app_yaml("web")),
        (
            "apps/web/job.nomad.hcl",
            &job("web", &["traefik.enable=true"], CHECK),
        ),
    ]);
    let (code, text) = validate(dir.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("apps/web/job.nomad.hcl:10:9: traefik.enable: service \"web\" enables Traefik but declares no router rule"),
        "{text}"
    );
    assert!(
        text.contains("apps/web/job.nomad.hcl:10:9: traefik.enable: service \"web\" enables Traefik but declares no router entrypoint"),
        "{text}"
    );
    let dir = repo(&[
        (
            "drover.yaml",
            "traefik: { default_entrypoints: [websecure], default_rule: \"Host(`{{ .Name }}.example.com`)\" }\n",
        ),
        ("apps/web/app.yaml", &app_yaml("web")),
        (
            "apps/web/job.nomad.hcl",
            &job("web", &["traefik.enable=true"], CHECK),
        ),
    ]);
    let (code, text) = validate(dir.path());
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn the_same_router_name_in_two_apps_is_an_error_in_both() {
    let dir = repo(&[
        ("apps/blog/app.yaml", &app_yaml("blog")),
        ("apps/blog/job.nomad.hcl", &job("blog", ROUTED, CHECK)),
        ("apps/shop/app.yaml", &app_yaml("shop")),
        ("apps/shop/job.nomad.hcl", &job("shop", ROUTED, CHECK)),
    ]);
    let (code, text) = validate(dir.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("apps/blog/job.nomad.hcl:11:9: traefik.http.routers.web: Traefik router \"web\" is also declared by app shop (apps/shop/job.nomad.hcl:11:9)"),
        "{text}"
    );
    assert!(
        text.contains("apps/shop/job.nomad.hcl:11:9: traefik.http.routers.web: Traefik router \"web\" is also declared by app blog (apps/blog/job.nomad.hcl:11:9)"),
        "{text}"
    );
}

#[test]
fn connect_without_the_catalog_tag_and_no_check_are_warnings_not_errors() {
    let connect = "      connect {\n        sidecar_service {}\n      }\n";
    let dir = repo(&[
        ("apps/web/app.yaml", &app_yaml("web")),
        ("apps/web/job.nomad.hcl", &job("web", ROUTED, connect)),
    ]);
    let (code, text) = validate(dir.path());
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok    web"), "{text}");
    assert!(
        text.contains("warning: apps/web/job.nomad.hcl:6:5: check: service \"web\" has Traefik tags but no check"),
        "{text}"
    );
    assert!(
        text.contains("warning: apps/web/job.nomad.hcl:6:5: traefik.consulcatalog.connect: service \"web\" is a Consul Connect service without the tag traefik.consulcatalog.connect=true"),
        "{text}"
    );
    assert!(text.contains("2 warning(s)"), "{text}");
}

#[test]
fn an_unknown_key_under_traefik_in_drover_yaml_is_an_error() {
    let dir = repo(&[
        (
            "drover.yaml",
            "traefik:\n  default_entrypoint: [websecure]\n",
        ),
        ("apps/web/app.yaml", &app_yaml("web")),
        ("apps/web/job.nomad.hcl", &job("web", ROUTED, CHECK)),
    ]);
    let (code, text) = validate(dir.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "drover.yaml:2:3: traefik.default_entrypoint: unknown key \"default_entrypoint\""
        ),
        "{text}"
    );
}

/// The user's real jobspecs, one app each, with the `websecure` default entrypoint their Traefik
/// gives the dummy's router: valid, with a warning for the two Traefik services without a check.
#[test]
fn the_users_jobspecs_validate_with_two_warnings() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/brmartin/modules");
    let mut files = vec![(
        "drover.yaml".to_string(),
        "traefik: { default_entrypoints: [websecure] }\n".to_string(),
    )];
    for module in ["dummy", "elk", "gitlab-runner", "nextcloud", "overseerr"] {
        let text = std::fs::read_to_string(fixtures.join(module).join("jobspec.nomad.hcl"))
            .unwrap_or_else(|e| panic!("{module}: {e}"));
        let variables = if module == "elk" {
            ", variables: { elastic_version: \"8.15.0\" }"
        } else {
            ""
        };
        files.push((
            format!("apps/{module}/app.yaml"),
            format!(
                "name: {module}\nresources:\n  - nomad_job: {{ file: job.nomad.hcl{variables} }}\n"
            ),
        ));
        files.push((format!("apps/{module}/job.nomad.hcl"), text));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let (code, text) = validate(repo(&files).path());
    assert_eq!(code, Some(0), "{text}");
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(
        warnings,
        [
            "  warning: apps/dummy/job.nomad.hcl:35:5: check: the service of group \"servers\" has Traefik tags but no check (without a check Consul reports it passing, so Traefik routes to it before it serves)",
            "  warning: apps/elk/job.nomad.hcl:105:7: check: service \"elk-node-http\" has Traefik tags but no check (without a check Consul reports it passing, so Traefik routes to it before it serves)",
        ],
        "{text}"
    );
}
