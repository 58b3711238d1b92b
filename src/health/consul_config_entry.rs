//! Health of a `consul_config_entry`: from the watched list alone (Consul validates an entry
//! on write, so one that exists is in force).

use super::{Assessment, Health};
use crate::live::LiveSnapshot;

/// Health of a config entry: Healthy when listed, Missing when its kind's list lacks it,
/// Unknown before the kind was listed (or without a Consul client).
pub fn consul_config_entry(live: &LiveSnapshot, kind: &str, name: &str) -> Assessment {
    if !live.config_kinds_ready.contains(kind) {
        return Assessment::new(
            Health::Unknown,
            if live.consul_configured {
                "config entries of this kind not listed yet"
            } else {
                "no Consul client configured (set CONSUL_HTTP_ADDR)"
            },
        );
    }
    match live.config_entry(kind, name) {
        Some(_) => Assessment::new(Health::Healthy, "config entry in force"),
        None => Assessment::new(Health::Missing, "config entry not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::consul::ConfigEntry;
    use serde_json::json;

    #[test]
    fn an_entry_is_healthy_when_listed_missing_when_not_and_unknown_before_its_kind_is_listed() {
        let mut live = LiveSnapshot::default();
        let health =
            |live: &LiveSnapshot| consul_config_entry(live, "service-defaults", "web").health;
        assert_eq!(health(&live), Health::Unknown);
        live.config_kinds_ready.insert("service-defaults".into());
        assert_eq!(health(&live), Health::Missing);
        live.config_entries.insert(
            ("service-defaults".into(), "web".into()),
            ConfigEntry(json!({"Kind": "service-defaults", "Name": "web"})),
        );
        assert_eq!(health(&live), Health::Healthy);
    }
}
