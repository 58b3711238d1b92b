//! Waves: the order resources of one app are applied in. A resource's wave is above every
//! resource it depends on and at least its explicit `wave:`; without one, volumes, secrets,
//! buckets and config entries come before jobs. Deletion runs the other way round.

use std::collections::BTreeMap;

use crate::desired::{ResourceId, ResourceKind};

/// A dependency cycle among an app's resources: each resource waits for the next, and the last
/// is the first again (`a → b → a`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle: {}", path(.0))]
pub struct CycleError(pub Vec<ResourceId>);

fn path(cycle: &[ResourceId]) -> String {
    cycle
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The order of one app's resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Order {
    /// The wave of every ordered resource: lower waves are applied first.
    pub waves: BTreeMap<ResourceId, u32>,
    /// What each resource waits for (direct dependencies among the ordered resources only).
    pub dependencies: BTreeMap<ResourceId, Vec<ResourceId>>,
}

/// The wave of a resource without an explicit `wave:` nor dependencies.
fn base_rank(kind: ResourceKind) -> u32 {
    match kind {
        ResourceKind::NomadJob => 1,
        _ => 0,
    }
}

/// Edges that explicit waves imply: a resource with `wave: n` waits for every resource with an
/// explicit wave below `n` (so a failure there holds it back too). `(dependent, dependency)`.
pub fn wave_edges(explicit: &BTreeMap<ResourceId, u32>) -> Vec<(ResourceId, ResourceId)> {
    let mut edges = Vec::new();
    for (dependent, wave) in explicit {
        for (dependency, lower) in explicit {
            if lower < wave {
                edges.push((dependent.clone(), dependency.clone()));
            }
        }
    }
    edges
}

/// Order `ids`: `explicit` are the `wave:`s written in app.yaml, `edges` are `(dependent,
/// dependency)` pairs (edges to resources outside `ids` are ignored: another app's volume is
/// ordered by `depends_on`). A cycle is an error naming every resource on it.
pub fn order(
    ids: &[ResourceId],
    explicit: &BTreeMap<ResourceId, u32>,
    edges: &[(ResourceId, ResourceId)],
) -> Result<Order, CycleError> {
    let mut dependencies: BTreeMap<ResourceId, Vec<ResourceId>> = BTreeMap::new();
    for (dependent, dependency) in edges {
        if dependent != dependency && ids.contains(dependent) && ids.contains(dependency) {
            let deps = dependencies.entry(dependent.clone()).or_default();
            if !deps.contains(dependency) {
                deps.push(dependency.clone());
            }
        }
    }
    let mut walk = Walk {
        explicit,
        dependencies: &dependencies,
        waves: BTreeMap::new(),
        visiting: Vec::new(),
    };
    for id in ids {
        walk.wave_of(id)?;
    }
    let waves = walk.waves;
    Ok(Order {
        waves,
        dependencies,
    })
}

struct Walk<'a> {
    explicit: &'a BTreeMap<ResourceId, u32>,
    dependencies: &'a BTreeMap<ResourceId, Vec<ResourceId>>,
    waves: BTreeMap<ResourceId, u32>,
    /// The path from the resource being ordered to the current one.
    visiting: Vec<ResourceId>,
}

impl Walk<'_> {
    fn wave_of(&mut self, id: &ResourceId) -> Result<u32, CycleError> {
        if let Some(w) = self.waves.get(id) {
            return Ok(*w);
        }
        if let Some(start) = self.visiting.iter().position(|v| v == id) {
            let mut cycle = self.visiting[start..].to_vec();
            cycle.push(id.clone());
            return Err(CycleError(cycle));
        }
        self.visiting.push(id.clone());
        let mut wave = self
            .explicit
            .get(id)
            .copied()
            .unwrap_or_else(|| base_rank(id.kind));
        let dependencies = self.dependencies;
        for dep in dependencies.get(id).map(Vec::as_slice).unwrap_or_default() {
            wave = wave.max(self.wave_of(dep)?.saturating_add(1));
        }
        self.visiting.pop();
        self.waves.insert(id.clone(), wave);
        Ok(wave)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{id, job_id, volume_id};

    fn entry_id(name: &str) -> ResourceId {
        id(ResourceKind::ConsulConfigEntry, "service-intentions", name)
    }

    fn bucket_id(name: &str) -> ResourceId {
        id(ResourceKind::Bucket, "", name)
    }

    fn waves_of(order: &Order) -> Vec<(String, u32)> {
        order
            .waves
            .iter()
            .map(|(id, w)| (id.to_string(), *w))
            .collect()
    }

    #[test]
    fn without_edges_or_waves_jobs_come_after_everything_else() {
        let ids = [job_id("web"), volume_id("data"), bucket_id("media")];
        let got = order(&ids, &BTreeMap::new(), &[]).expect("no cycle");
        assert_eq!(
            waves_of(&got),
            [
                ("nomad_job/default/web".to_string(), 1),
                ("csi_volume/default/data".to_string(), 0),
                ("bucket/media".to_string(), 0),
            ]
        );
        assert!(got.dependencies.is_empty());
    }

    #[test]
    fn a_resource_comes_one_wave_after_its_deepest_dependency_whatever_the_listing_order() {
        // web → intentions → data (a chain), listed in reverse.
        let ids = [job_id("web"), entry_id("minio"), volume_id("data")];
        let edges = [
            (job_id("web"), entry_id("minio")),
            (entry_id("minio"), volume_id("data")),
        ];
        let got = order(&ids, &BTreeMap::new(), &edges).expect("no cycle");
        assert_eq!(got.waves[&volume_id("data")], 0);
        assert_eq!(got.waves[&entry_id("minio")], 1);
        assert_eq!(got.waves[&job_id("web")], 2);
        assert_eq!(got.dependencies[&job_id("web")], [entry_id("minio")]);
    }

    #[test]
    fn an_explicit_wave_is_a_floor_and_dependencies_still_push_above_it() {
        let ids = [volume_id("data"), job_id("web"), job_id("early")];
        let explicit = BTreeMap::from([(volume_id("data"), 5), (job_id("early"), 0)]);
        let edges = [(job_id("web"), volume_id("data"))];
        let got = order(&ids, &explicit, &edges).expect("no cycle");
        assert_eq!(got.waves[&volume_id("data")], 5);
        assert_eq!(got.waves[&job_id("web")], 6);
        // An explicit 0 lowers a job below its default rank.
        assert_eq!(got.waves[&job_id("early")], 0);
    }

    #[test]
    fn edges_to_resources_outside_the_ordered_ones_and_self_edges_are_ignored() {
        let ids = [job_id("web")];
        let edges = [
            (job_id("web"), volume_id("elsewhere")),
            (job_id("web"), job_id("web")),
        ];
        let got = order(&ids, &BTreeMap::new(), &edges).expect("no cycle");
        assert_eq!(got.waves[&job_id("web")], 1);
        assert!(got.dependencies.is_empty());
    }

    #[test]
    fn duplicate_edges_give_one_dependency() {
        let ids = [job_id("web"), volume_id("data")];
        let edge = (job_id("web"), volume_id("data"));
        let got = order(&ids, &BTreeMap::new(), &[edge.clone(), edge]).expect("no cycle");
        assert_eq!(got.dependencies[&job_id("web")], [volume_id("data")]);
    }

    #[test]
    fn a_cycle_names_every_resource_on_it_from_first_back_to_first() {
        let ids = [
            volume_id("data"),
            job_id("web"),
            entry_id("minio"),
            job_id("free"),
        ];
        let edges = [
            (volume_id("data"), job_id("web")),
            (job_id("web"), entry_id("minio")),
            (entry_id("minio"), volume_id("data")),
        ];
        let err = order(&ids, &BTreeMap::new(), &edges).expect_err("a cycle");
        assert_eq!(
            err.0,
            [
                volume_id("data"),
                job_id("web"),
                entry_id("minio"),
                volume_id("data")
            ]
        );
        assert_eq!(
            err.to_string(),
            "dependency cycle: csi_volume/default/data → nomad_job/default/web → \
             consul_config_entry/service-intentions/minio → csi_volume/default/data"
        );
    }

    #[test]
    fn a_cycle_reached_from_outside_names_only_the_cycle() {
        let ids = [job_id("entry"), job_id("a"), job_id("b")];
        let edges = [
            (job_id("entry"), job_id("a")),
            (job_id("a"), job_id("b")),
            (job_id("b"), job_id("a")),
        ];
        let err = order(&ids, &BTreeMap::new(), &edges).expect_err("a cycle");
        assert_eq!(err.0, [job_id("a"), job_id("b"), job_id("a")]);
    }

    #[test]
    fn explicit_waves_make_each_resource_wait_for_every_lower_explicit_wave_only() {
        let explicit = BTreeMap::from([
            (volume_id("a"), 0),
            (volume_id("b"), 1),
            (volume_id("c"), 1),
            (volume_id("d"), 2),
        ]);
        let mut got = wave_edges(&explicit);
        got.sort();
        let mut want = vec![
            (volume_id("b"), volume_id("a")),
            (volume_id("c"), volume_id("a")),
            (volume_id("d"), volume_id("a")),
            (volume_id("d"), volume_id("b")),
            (volume_id("d"), volume_id("c")),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn an_explicit_wave_against_an_implicit_edge_is_a_cycle() {
        // The job mounts the volume, but the volume was put in a later wave than the job.
        let explicit = BTreeMap::from([(volume_id("data"), 2), (job_id("web"), 1)]);
        let mut edges = wave_edges(&explicit);
        edges.push((job_id("web"), volume_id("data")));
        let ids = [job_id("web"), volume_id("data")];
        let err = order(&ids, &explicit, &edges).expect_err("a cycle");
        assert_eq!(err.0, [job_id("web"), volume_id("data"), job_id("web")]);
    }
}
