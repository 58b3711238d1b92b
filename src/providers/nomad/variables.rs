//! Nomad Variables (`/v1/var/:path`, `/v1/vars?prefix=`): reads, and writes and deletes with
//! check-and-set (`?cas=<ModifyIndex>`; a mismatch is a 409 carrying the current variable).

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::NomadClient;
use super::error::NomadError;

/// A variable as `GET /v1/var/:path` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Variable {
    /// Its namespace.
    #[serde(rename = "Namespace", default)]
    pub namespace: String,
    /// Its path.
    #[serde(rename = "Path", default)]
    pub path: String,
    /// The index of its last write: the value a CAS write must name.
    #[serde(rename = "ModifyIndex", default)]
    pub modify_index: u64,
    /// Its items (absent when the caller may not read them).
    #[serde(rename = "Items", default, deserialize_with = "nullable_items")]
    pub items: BTreeMap<String, String>,
}

/// A variable as `GET /v1/vars` lists it (no items).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct VariableMetadata {
    /// Its path.
    #[serde(rename = "Path", default)]
    pub path: String,
    /// The index of its last write.
    #[serde(rename = "ModifyIndex", default)]
    pub modify_index: u64,
}

/// The outcome of a check-and-set write or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableWrite {
    /// Written (for a delete: the variable is gone); the variable's new `ModifyIndex` (0 after a
    /// delete).
    Done {
        /// The `ModifyIndex` after the write.
        modify_index: u64,
    },
    /// Someone else wrote first: the variable as it is now (`None` when it does not exist or the
    /// answer did not carry it).
    Conflict(Option<Variable>),
}

fn nullable_items<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Serialize)]
struct VariableBody<'a> {
    #[serde(rename = "Namespace")]
    namespace: &'a str,
    #[serde(rename = "Path")]
    path: &'a str,
    #[serde(rename = "Items")]
    items: &'a BTreeMap<String, String>,
}

/// A 409's body is the conflicting variable; one that never existed comes back with index 0.
fn conflict(error: &NomadError) -> Option<VariableWrite> {
    if error.status() != Some(409) {
        return None;
    }
    let current = error
        .body()
        .and_then(|body| serde_json::from_str::<Variable>(body).ok())
        .filter(|v| v.modify_index > 0);
    Some(VariableWrite::Conflict(current))
}

impl NomadClient {
    /// `GET /v1/var/:path` in `namespace`; `None` on 404.
    pub async fn read_variable(
        &self,
        namespace: &str,
        path: &str,
    ) -> Result<Option<Variable>, NomadError> {
        match self
            .send::<Variable>(
                Method::GET,
                &format!("/v1/var/{path}"),
                &[("namespace", namespace.to_string())],
                None::<&()>,
            )
            .await
        {
            Ok(found) => Ok(Some(found.value)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/vars?prefix=` in `namespace`: the variables under `prefix`, without items.
    pub async fn list_variables(
        &self,
        namespace: &str,
        prefix: &str,
    ) -> Result<Vec<VariableMetadata>, NomadError> {
        let listed: Option<Vec<VariableMetadata>> = self
            .send(
                Method::GET,
                "/v1/vars",
                &[
                    ("namespace", namespace.to_string()),
                    ("prefix", prefix.to_string()),
                ],
                None::<&()>,
            )
            .await?
            .value;
        Ok(listed.unwrap_or_default())
    }

    /// `PUT /v1/var/:path?cas=<index>`: write `items` only if the variable's `ModifyIndex` is
    /// still `cas` (0: only if it does not exist).
    pub async fn put_variable_cas(
        &self,
        namespace: &str,
        path: &str,
        items: &BTreeMap<String, String>,
        cas: u64,
    ) -> Result<VariableWrite, NomadError> {
        let body = VariableBody {
            namespace,
            path,
            items,
        };
        let sent = self
            .send::<Variable>(
                Method::PUT,
                &format!("/v1/var/{path}"),
                &[
                    ("namespace", namespace.to_string()),
                    ("cas", cas.to_string()),
                ],
                Some(&body),
            )
            .await;
        match sent {
            Ok(written) => Ok(VariableWrite::Done {
                modify_index: written.value.modify_index.max(written.index),
            }),
            Err(e) => conflict(&e).ok_or(e),
        }
    }

    /// `DELETE /v1/var/:path?cas=<index>`: delete only if the variable's `ModifyIndex` is still
    /// `cas`.
    pub async fn delete_variable_cas(
        &self,
        namespace: &str,
        path: &str,
        cas: u64,
    ) -> Result<VariableWrite, NomadError> {
        let sent = self
            .send_empty(
                Method::DELETE,
                &format!("/v1/var/{path}"),
                &[
                    ("namespace", namespace.to_string()),
                    ("cas", cas.to_string()),
                ],
            )
            .await;
        match sent {
            Ok(()) => Ok(VariableWrite::Done { modify_index: 0 }),
            Err(e) => conflict(&e).ok_or(e),
        }
    }
}
