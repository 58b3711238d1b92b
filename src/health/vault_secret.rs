//! Vault secret requirements, checked before the jobs that need them: one read per requirement
//! when the controller finds a check due (Vault has no blocking queries; see
//! `controller::reconcile::secrets_due`). A requirement that does not hold blocks the jobs
//! whose templates read it and shows on its `vault_secret` resource; nothing is ever written to
//! Vault, and no value is read into memory (the client decodes key names only).

use std::collections::BTreeMap;

use super::{Assessment, Health};
use crate::desired::{App, ResourceId, ResourceSpec, SecretRequirement};
use crate::providers::vault::{Missing, VaultClient};

/// What one requirement came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The secret holds every key.
    Holds,
    /// It does not: why, for people (`Vault secret nomad/default/x lacks key K`).
    Lacks(String),
    /// It could not be checked (Vault unreachable, a policy gap): why.
    Unchecked(String),
    /// No Vault is configured: nothing was checked and nothing is blocked.
    NoVault,
}

/// The requirements of one app and their verdicts, in `app_secret_requirements` order.
#[derive(Debug, Clone, Default)]
pub struct SecretChecks {
    checks: Vec<(SecretRequirement, Verdict)>,
}

/// The message for a missing secret or missing keys: names the path and keys, never a value.
pub fn lacking_message(path: &str, missing: &Missing, keys: &[String]) -> Option<String> {
    match missing {
        Missing::Nothing => None,
        Missing::Secret => Some(format!(
            "Vault secret {path} does not exist (needs {} {})",
            plural_key(keys.len()),
            keys.join(", ")
        )),
        Missing::Keys(absent) => Some(format!(
            "Vault secret {path} lacks {} {}",
            plural_key(absent.len()),
            absent.join(", ")
        )),
    }
}

fn plural_key(n: usize) -> &'static str {
    if n == 1 { "key" } else { "keys" }
}

/// Check every requirement (one Vault read each; none without Vault).
pub async fn check(
    vault: Option<&VaultClient>,
    requirements: &[SecretRequirement],
) -> SecretChecks {
    let mut checks = Vec::new();
    for requirement in requirements.iter().cloned() {
        let verdict = match vault {
            None => Verdict::NoVault,
            Some(vault) => {
                let keys: Vec<String> = requirement.keys.iter().cloned().collect();
                match vault.check_requirement(&requirement.path, &keys).await {
                    Ok(missing) => match lacking_message(&requirement.path, &missing, &keys) {
                        None => Verdict::Holds,
                        Some(message) => Verdict::Lacks(message),
                    },
                    Err(e) if e.is_forbidden() => Verdict::Unchecked(format!(
                        "Vault secret {} cannot be read with drover's token (a policy gap?): {e}",
                        requirement.path
                    )),
                    Err(e) => Verdict::Unchecked(format!(
                        "Vault secret {} not checked: {e}",
                        requirement.path
                    )),
                }
            }
        };
        checks.push((requirement, verdict));
    }
    SecretChecks { checks }
}

impl SecretChecks {
    /// From given verdicts (for tests and callers that checked elsewhere).
    pub fn from_verdicts(checks: Vec<(SecretRequirement, Verdict)>) -> SecretChecks {
        SecretChecks { checks }
    }

    /// Every requirement holds (or no Vault is configured, so none was read).
    pub fn all_hold(&self) -> bool {
        self.checks
            .iter()
            .all(|(_, verdict)| matches!(verdict, Verdict::Holds | Verdict::NoVault))
    }

    /// The jobs of `app` that must not be registered now, each with the reasons: a job is
    /// blocked by every requirement one of its templates reads that does not hold (joined with
    /// `vault_secret` entries of the same path, whose keys count too). Without Vault nothing is
    /// blocked.
    pub fn blocked_jobs(&self, app: &App) -> BTreeMap<ResourceId, String> {
        let mut out: BTreeMap<ResourceId, String> = BTreeMap::new();
        for resource in &app.resources {
            let ResourceSpec::NomadJob(job) = &resource.spec else {
                continue;
            };
            let reasons: Vec<&str> = self
                .checks
                .iter()
                .filter(|(r, _)| r.required_by.iter().any(|o| o.file == job.file))
                .filter_map(|(_, verdict)| match verdict {
                    Verdict::Lacks(m) | Verdict::Unchecked(m) => Some(m.as_str()),
                    Verdict::Holds | Verdict::NoVault => None,
                })
                .collect();
            if !reasons.is_empty() {
                out.insert(resource.id.clone(), reasons.join("; "));
            }
        }
        out
    }

    /// The health of the `vault_secret` resource `id` (`mount` scope, `path` name).
    pub fn assessment(&self, id: &ResourceId) -> Assessment {
        let path = format!("{}/{}", id.scope, id.name);
        let found = self.checks.iter().find(|(r, _)| r.path == path);
        match found {
            Some((r, Verdict::Holds)) => Assessment::new(
                Health::Healthy,
                format!(
                    "holds {} {}",
                    plural_key(r.keys.len()),
                    r.keys.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            ),
            Some((_, Verdict::Lacks(m))) => Assessment::new(Health::Missing, m.clone()),
            Some((_, Verdict::Unchecked(m))) => Assessment::new(Health::Unknown, m.clone()),
            Some((_, Verdict::NoVault)) | None => Assessment::new(
                Health::Unknown,
                "not checked: no Vault configured (set VAULT_ADDR and VAULT_TOKEN, or \
                 VAULT_ROLE_ID and VAULT_SECRET_ID)",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::app_secret_requirements;

    fn app_with(files: &[(&str, &str)]) -> App {
        let files: std::collections::BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
            .collect();
        let loaded = crate::desired::load(&crate::source::Revision::from_files("test", files));
        loaded.apps[0]
            .result
            .clone()
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn a_requirement_that_fails_blocks_the_jobs_reading_it_and_only_with_vault() {
        let reads = r#"job "reads" {
  group "g" {
    task "t" {
      driver = "docker"
      config { image = "nginx" }
      template {
        data        = "{{ with secret \"nomad/data/default/x\" }}{{ .Data.data.K }}{{ end }}"
        destination = "local/x"
      }
    }
  }
}
"#;
        let plain = "job \"plain\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"docker\"\n      config { image = \"nginx\" }\n    }\n  }\n}\n";
        let app = app_with(&[
            (
                "apps/a/app.yaml",
                "resources:\n  - nomad_job: { file: reads.nomad.hcl }\n  - nomad_job: { file: plain.nomad.hcl }\n  - vault_secret: { mount: nomad, path: default/other, keys: [L] }\n",
            ),
            ("apps/a/reads.nomad.hcl", reads),
            ("apps/a/plain.nomad.hcl", plain),
        ]);
        let lacking = |r: &SecretRequirement| Verdict::Lacks(format!("{} lacks", r.path));
        let requirements = app_secret_requirements(&app);
        assert_eq!(requirements.len(), 2, "{requirements:?}");
        let checks = SecretChecks::from_verdicts(
            requirements
                .iter()
                .map(|r| (r.clone(), lacking(r)))
                .collect(),
        );
        let blocked = checks.blocked_jobs(&app);
        let names: Vec<&str> = blocked.keys().map(|id| id.name.as_str()).collect();
        // The listed-only secret blocks no job; the one a template reads blocks that job.
        assert_eq!(names, ["reads"]);
        let other =
            ResourceId::parse("vault_secret/nomad/default/other").unwrap_or_else(|| panic!("id"));
        assert_eq!(checks.assessment(&other).health, Health::Missing);
        let holds = SecretChecks::from_verdicts(
            requirements
                .iter()
                .map(|r| (r.clone(), Verdict::Holds))
                .collect(),
        );
        assert!(holds.blocked_jobs(&app).is_empty());
        assert_eq!(holds.assessment(&other).health, Health::Healthy);
        let no_vault = SecretChecks::from_verdicts(
            requirements
                .iter()
                .map(|r| (r.clone(), Verdict::NoVault))
                .collect(),
        );
        assert!(no_vault.blocked_jobs(&app).is_empty());
        assert_eq!(no_vault.assessment(&other).health, Health::Unknown);
    }

    #[test]
    fn messages_name_path_and_keys() {
        let keys = vec!["A".to_string(), "B".to_string()];
        assert_eq!(
            lacking_message("nomad/default/o", &Missing::Keys(vec!["B".into()]), &keys).as_deref(),
            Some("Vault secret nomad/default/o lacks key B")
        );
        assert_eq!(
            lacking_message("nomad/default/o", &Missing::Secret, &keys).as_deref(),
            Some("Vault secret nomad/default/o does not exist (needs keys A, B)")
        );
        assert_eq!(lacking_message("p", &Missing::Nothing, &keys), None);
    }
}
