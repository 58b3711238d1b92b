//! Waves: the order resources of one app are applied in. A resource's wave is above every
//! resource it depends on; by default volumes, secrets, buckets and config entries come before jobs.

use std::collections::BTreeMap;

use crate::desired::{App, ResourceId, ResourceKind};

/// A dependency cycle among an app's resources.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle through {0}")]
pub struct CycleError(pub ResourceId);

fn base_rank(kind: ResourceKind) -> u32 {
    match kind {
        ResourceKind::NomadJob => 1,
        _ => 0,
    }
}

/// Wave of every resource of `app`; `edges` are `(dependent, dependency)` pairs.
pub fn waves(
    app: &App,
    edges: &[(ResourceId, ResourceId)],
) -> Result<BTreeMap<ResourceId, u32>, CycleError> {
    let mut deps: BTreeMap<&ResourceId, Vec<&ResourceId>> = BTreeMap::new();
    for (dependent, dependency) in edges {
        deps.entry(dependent).or_default().push(dependency);
    }
    let mut waves = BTreeMap::new();
    for r in &app.resources {
        let mut visiting = Vec::new();
        wave_of(&r.id, app, &deps, &mut waves, &mut visiting)?;
    }
    Ok(waves)
}

fn wave_of(
    id: &ResourceId,
    app: &App,
    deps: &BTreeMap<&ResourceId, Vec<&ResourceId>>,
    waves: &mut BTreeMap<ResourceId, u32>,
    visiting: &mut Vec<ResourceId>,
) -> Result<u32, CycleError> {
    if let Some(w) = waves.get(id) {
        return Ok(*w);
    }
    if visiting.contains(id) {
        return Err(CycleError(id.clone()));
    }
    visiting.push(id.clone());
    let mut wave = base_rank(id.kind);
    for dep in deps.get(id).map(Vec::as_slice).unwrap_or_default() {
        // Dependencies outside the app (another app's volume) are ordered by `depends_on`.
        if app.resources.iter().any(|r| &r.id == *dep) {
            wave = wave.max(wave_of(dep, app, deps, waves, visiting)? + 1);
        }
    }
    visiting.pop();
    waves.insert(id.clone(), wave);
    Ok(wave)
}
