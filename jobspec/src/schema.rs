//! The jobspec block schemas (HCL name → `api.*` Go field) and the schema-driven decoder.
//!
//! Every Go field of a struct is emitted: pointer fields as `null` when unset, value fields as
//! their Go zero value, slices and maps as `null` (Go's encoder writes nil collections so).

use hcl::edit::Span;
use hcl::edit::structure::{Block, Body, Structure};
use serde_json::{Map, Value};

use super::eval::{Diag, Scope, as_bool, as_f64, to_str};

/// How one field is written in HCL and encoded in JSON.
#[derive(Clone, Copy)]
pub enum K {
    Str,
    Int,
    Bool,
    /// A Go `time.Duration`: HCL duration string → integer nanoseconds.
    Dur,
    StrList,
    IntList,
    /// `map[string]string`, from an attribute or a block of attributes.
    StrMap,
    /// `map[string][]string` (check headers).
    StrListMap,
    /// `map[string]interface{}` (driver config): nested blocks become lists of objects.
    AnyMap,
    /// One optional unlabelled block.
    Block(&'static S),
    /// Repeated unlabelled blocks.
    List(&'static S),
    /// Repeated blocks with one label, stored into the given Go field of each element.
    Labeled(&'static S, &'static str),
    /// Labelled blocks collected into a map keyed by label.
    LabeledMap(&'static S, &'static str),
    /// Not settable from HCL (server or deprecated fields).
    None,
}

/// A field: HCL name (empty when none), Go name, kind, and whether the Go field is a pointer,
/// slice or map (so `null` when unset) rather than a value type (zero value when unset).
pub struct F(pub &'static str, pub &'static str, pub K, pub bool);

/// A block schema.
pub struct S {
    pub fields: &'static [F],
}

const P: bool = true;
const V: bool = false;

use K::*;

pub static JOB: S = S {
    fields: &[
        F("region", "Region", Str, P),
        F("namespace", "Namespace", Str, P),
        F("id", "ID", Str, P),
        F("name", "Name", Str, P),
        F("type", "Type", Str, P),
        F("priority", "Priority", Int, P),
        F("all_at_once", "AllAtOnce", Bool, P),
        F("datacenters", "Datacenters", StrList, P),
        F("node_pool", "NodePool", Str, P),
        F("constraint", "Constraints", List(&CONSTRAINT), P),
        F("affinity", "Affinities", List(&AFFINITY), P),
        F("group", "TaskGroups", Labeled(&GROUP, "Name"), P),
        // A job-level task is wrapped into its own group; a job-level vault applies to tasks.
        F("task", "", Labeled(&TASK, "Name"), P),
        F("vault", "", Block(&VAULT), P),
        F("update", "Update", Block(&UPDATE), P),
        F("multiregion", "Multiregion", None, P),
        F("spread", "Spreads", List(&SPREAD), P),
        F("periodic", "Periodic", Block(&PERIODIC), P),
        F(
            "parameterized",
            "ParameterizedJob",
            Block(&PARAMETERIZED),
            P,
        ),
        F("reschedule", "Reschedule", Block(&RESCHEDULE), P),
        F("migrate", "Migrate", Block(&MIGRATE), P),
        F("meta", "Meta", StrMap, P),
        F("ui", "UI", None, P),
        F("consul_token", "ConsulToken", Str, P),
        F("vault_token", "VaultToken", Str, P),
        F("", "ConsulNamespace", None, P),
        F("", "VaultNamespace", None, P),
        F("", "NomadTokenID", None, P),
        F("", "Stop", None, P),
        F("", "ParentID", None, P),
        // A Go bool: `false`, never null (measured on Nomad 2.0.5, api-facts §7).
        F("", "Dispatched", Bool, V),
        F("", "DispatchIdempotencyToken", None, P),
        F("", "Payload", None, P),
        F("", "Status", None, P),
        F("", "StatusDescription", None, P),
        F("", "Stable", None, P),
        F("", "Version", None, P),
        F("", "SubmitTime", None, P),
        F("", "CreateIndex", None, P),
        F("", "ModifyIndex", None, P),
        F("", "JobModifyIndex", None, P),
        F("", "VersionTag", None, P),
    ],
};

pub static GROUP: S = S {
    fields: &[
        F("", "Name", None, P),
        F("count", "Count", Int, P),
        F("constraint", "Constraints", List(&CONSTRAINT), P),
        F("affinity", "Affinities", List(&AFFINITY), P),
        F("task", "Tasks", Labeled(&TASK, "Name"), P),
        F("spread", "Spreads", List(&SPREAD), P),
        F("volume", "Volumes", LabeledMap(&VOLUME, "Name"), P),
        F("restart", "RestartPolicy", Block(&RESTART), P),
        F("disconnect", "Disconnect", Block(&DISCONNECT), P),
        F("reschedule", "ReschedulePolicy", Block(&RESCHEDULE), P),
        F("ephemeral_disk", "EphemeralDisk", Block(&EPHEMERAL_DISK), P),
        F("update", "Update", Block(&UPDATE), P),
        F("migrate", "Migrate", Block(&MIGRATE), P),
        F("network", "Networks", List(&NETWORK), P),
        F("meta", "Meta", StrMap, P),
        F("service", "Services", List(&SERVICE), P),
        F("shutdown_delay", "ShutdownDelay", Dur, P),
        F(
            "stop_after_client_disconnect",
            "StopAfterClientDisconnect",
            Dur,
            P,
        ),
        F("max_client_disconnect", "MaxClientDisconnect", Dur, P),
        F("scaling", "Scaling", Block(&SCALING), P),
        F("consul", "Consul", Block(&CONSUL), P),
        F(
            "prevent_reschedule_on_lost",
            "PreventRescheduleOnLost",
            Bool,
            P,
        ),
        // A group-level vault block applies to tasks without one.
        F("vault", "", Block(&VAULT), P),
        F("", "MaxRunDuration", None, P),
    ],
};

pub static TASK: S = S {
    fields: &[
        F("", "Name", None, V),
        F("driver", "Driver", Str, V),
        F("user", "User", Str, V),
        F("lifecycle", "Lifecycle", Block(&LIFECYCLE), P),
        F("config", "Config", AnyMap, P),
        F("constraint", "Constraints", List(&CONSTRAINT), P),
        F("affinity", "Affinities", List(&AFFINITY), P),
        F("env", "Env", StrMap, P),
        F("service", "Services", List(&SERVICE), P),
        F("resources", "Resources", Block(&RESOURCES), P),
        F("restart", "RestartPolicy", Block(&RESTART), P),
        F("meta", "Meta", StrMap, P),
        F("kill_timeout", "KillTimeout", Dur, P),
        F("logs", "LogConfig", Block(&LOGS), P),
        F("artifact", "Artifacts", List(&ARTIFACT), P),
        F("vault", "Vault", Block(&VAULT), P),
        F("consul", "Consul", Block(&CONSUL), P),
        F("template", "Templates", List(&TEMPLATE), P),
        F(
            "dispatch_payload",
            "DispatchPayload",
            Block(&DISPATCH_PAYLOAD),
            P,
        ),
        F("volume_mount", "VolumeMounts", List(&VOLUME_MOUNT), P),
        F("csi_plugin", "CSIPluginConfig", Block(&CSI_PLUGIN), P),
        F("leader", "Leader", Bool, V),
        F("shutdown_delay", "ShutdownDelay", Dur, V),
        F("kill_signal", "KillSignal", Str, V),
        F("kind", "Kind", Str, V),
        // `scaling "cpu"|"mem"` blocks; the label becomes the vertical policy type.
        F("scaling", "ScalingPolicies", Labeled(&SCALING, "Type"), P),
        F("secret", "Secrets", Labeled(&SECRET, "Name"), P),
        F("", "Identity", None, P),
        F("identity", "Identities", List(&IDENTITY), P),
        F("action", "Actions", Labeled(&ACTION, "Name"), P),
        F("", "Schedule", None, P),
    ],
};

pub static CONSTRAINT: S = S {
    fields: &[
        F("attribute", "LTarget", Str, V),
        F("value", "RTarget", Str, V),
        F("operator", "Operand", Str, V),
        // Shorthands; folded into Operand/RTarget after decoding.
        F("distinct_hosts", "", Bool, V),
        F("distinct_property", "", Str, V),
        F("regexp", "", Str, V),
        F("version", "", Str, V),
        F("semver", "", Str, V),
        F("set_contains", "", Str, V),
        F("set_contains_all", "", Str, V),
        F("set_contains_any", "", Str, V),
    ],
};

pub static AFFINITY: S = S {
    fields: &[
        F("attribute", "LTarget", Str, V),
        F("value", "RTarget", Str, V),
        F("operator", "Operand", Str, V),
        F("weight", "Weight", Int, P),
        F("regexp", "", Str, V),
        F("version", "", Str, V),
        F("semver", "", Str, V),
        F("set_contains", "", Str, V),
        F("set_contains_all", "", Str, V),
        F("set_contains_any", "", Str, V),
    ],
};

pub static SPREAD: S = S {
    fields: &[
        F("attribute", "Attribute", Str, V),
        F("weight", "Weight", Int, P),
        F(
            "target",
            "SpreadTarget",
            Labeled(&SPREAD_TARGET, "Value"),
            P,
        ),
    ],
};

pub static SPREAD_TARGET: S = S {
    fields: &[F("", "Value", None, V), F("percent", "Percent", Int, V)],
};

pub static UPDATE: S = S {
    fields: &[
        F("stagger", "Stagger", Dur, P),
        F("max_parallel", "MaxParallel", Int, P),
        F("health_check", "HealthCheck", Str, P),
        F("min_healthy_time", "MinHealthyTime", Dur, P),
        F("healthy_deadline", "HealthyDeadline", Dur, P),
        F("progress_deadline", "ProgressDeadline", Dur, P),
        F("canary", "Canary", Int, P),
        F("auto_revert", "AutoRevert", Bool, P),
        F("auto_promote", "AutoPromote", Bool, P),
    ],
};

pub static MIGRATE: S = S {
    fields: &[
        F("max_parallel", "MaxParallel", Int, P),
        F("health_check", "HealthCheck", Str, P),
        F("min_healthy_time", "MinHealthyTime", Dur, P),
        F("healthy_deadline", "HealthyDeadline", Dur, P),
    ],
};

pub static RESCHEDULE: S = S {
    fields: &[
        F("attempts", "Attempts", Int, P),
        F("interval", "Interval", Dur, P),
        F("delay", "Delay", Dur, P),
        F("delay_function", "DelayFunction", Str, P),
        F("max_delay", "MaxDelay", Dur, P),
        F("unlimited", "Unlimited", Bool, P),
    ],
};

pub static RESTART: S = S {
    fields: &[
        F("interval", "Interval", Dur, P),
        F("attempts", "Attempts", Int, P),
        F("delay", "Delay", Dur, P),
        F("mode", "Mode", Str, P),
        F("render_templates", "RenderTemplates", Bool, P),
    ],
};

pub static DISCONNECT: S = S {
    fields: &[
        F("lost_after", "LostAfter", Dur, V),
        F("replace", "Replace", Bool, P),
        F("reconcile", "Reconcile", Str, P),
        F("stop_on_client_after", "StopOnClientAfter", Dur, P),
    ],
};

pub static EPHEMERAL_DISK: S = S {
    fields: &[
        F("sticky", "Sticky", Bool, P),
        F("migrate", "Migrate", Bool, P),
        F("size", "SizeMB", Int, P),
    ],
};

pub static PERIODIC: S = S {
    fields: &[
        F("enabled", "Enabled", Bool, P),
        F("cron", "Spec", Str, P),
        F("crons", "Specs", StrList, P),
        F("", "SpecType", None, P),
        F("prohibit_overlap", "ProhibitOverlap", Bool, P),
        F("time_zone", "TimeZone", Str, P),
    ],
};

pub static PARAMETERIZED: S = S {
    fields: &[
        F("payload", "Payload", Str, V),
        F("meta_required", "MetaRequired", StrList, P),
        F("meta_optional", "MetaOptional", StrList, P),
    ],
};

pub static NETWORK: S = S {
    fields: &[
        F("mode", "Mode", Str, V),
        F("device", "Device", Str, V),
        F("cidr", "CIDR", Str, V),
        F("ip", "IP", Str, V),
        F("dns", "DNS", Block(&DNS), P),
        F("", "ReservedPorts", None, P),
        F("", "DynamicPorts", None, P),
        F("hostname", "Hostname", Str, V),
        F("mbits", "MBits", Int, P),
        F("", "CNI", None, P),
        // Split into ReservedPorts/DynamicPorts by the normaliser.
        F("port", "Ports", Labeled(&PORT, "Label"), P),
    ],
};

pub static PORT: S = S {
    fields: &[
        F("", "Label", None, V),
        F("static", "Value", Int, V),
        F("to", "To", Int, V),
        F("host_network", "HostNetwork", Str, V),
        F("", "IgnoreCollision", Bool, V),
    ],
};

pub static DNS: S = S {
    fields: &[
        F("servers", "Servers", StrList, P),
        F("searches", "Searches", StrList, P),
        F("options", "Options", StrList, P),
    ],
};

pub static SERVICE: S = S {
    fields: &[
        F("name", "Name", Str, V),
        F("tags", "Tags", StrList, P),
        F("canary_tags", "CanaryTags", StrList, P),
        F("enable_tag_override", "EnableTagOverride", Bool, V),
        F("port", "PortLabel", Str, V),
        F("address_mode", "AddressMode", Str, V),
        F("address", "Address", Str, V),
        F("check", "Checks", List(&CHECK), P),
        F("check_restart", "CheckRestart", Block(&CHECK_RESTART), P),
        F("connect", "Connect", Block(&CONNECT), P),
        F("meta", "Meta", StrMap, P),
        F("canary_meta", "CanaryMeta", StrMap, P),
        F("tagged_addresses", "TaggedAddresses", StrMap, P),
        F("task", "TaskName", Str, V),
        F("on_update", "OnUpdate", Str, V),
        F("identity", "Identity", Block(&IDENTITY), P),
        F("weights", "Weights", Block(&WEIGHTS), P),
        F("provider", "Provider", Str, V),
        F("cluster", "Cluster", Str, V),
        F("kind", "Kind", Str, V),
    ],
};

pub static WEIGHTS: S = S {
    fields: &[
        F("passing", "Passing", Int, V),
        F("warning", "Warning", Int, V),
    ],
};

pub static SECRET: S = S {
    fields: &[
        F("", "Name", None, V),
        F("provider", "Provider", Str, V),
        F("path", "Path", Str, V),
        F("config", "Config", AnyMap, P),
        F("env", "Env", StrMap, P),
    ],
};

pub static ACTION: S = S {
    fields: &[
        F("", "Name", None, V),
        F("command", "Command", Str, V),
        F("args", "Args", StrList, P),
    ],
};

pub static CHECK: S = S {
    fields: &[
        F("name", "Name", Str, V),
        F("type", "Type", Str, V),
        F("command", "Command", Str, V),
        F("args", "Args", StrList, P),
        F("path", "Path", Str, V),
        F("protocol", "Protocol", Str, V),
        F("port", "PortLabel", Str, V),
        F("expose", "Expose", Bool, V),
        F("address_mode", "AddressMode", Str, V),
        F("advertise", "Advertise", Str, V),
        F("interval", "Interval", Dur, V),
        F("timeout", "Timeout", Dur, V),
        F("initial_status", "InitialStatus", Str, V),
        F("notes", "Notes", Str, V),
        F("tls_server_name", "TLSServerName", Str, V),
        F("tls_skip_verify", "TLSSkipVerify", Bool, V),
        F("header", "Header", StrListMap, P),
        F("method", "Method", Str, V),
        F("check_restart", "CheckRestart", Block(&CHECK_RESTART), P),
        F("grpc_service", "GRPCService", Str, V),
        F("grpc_use_tls", "GRPCUseTLS", Bool, V),
        F("task", "TaskName", Str, V),
        F("success_before_passing", "SuccessBeforePassing", Int, V),
        F("failures_before_critical", "FailuresBeforeCritical", Int, V),
        F("failures_before_warning", "FailuresBeforeWarning", Int, V),
        F("body", "Body", Str, V),
        F("on_update", "OnUpdate", Str, V),
    ],
};

pub static CHECK_RESTART: S = S {
    fields: &[
        F("limit", "Limit", Int, V),
        F("grace", "Grace", Dur, P),
        F("ignore_warnings", "IgnoreWarnings", Bool, V),
    ],
};

pub static CONNECT: S = S {
    fields: &[
        F("native", "Native", Bool, V),
        F("gateway", "Gateway", Block(&GATEWAY), P),
        F(
            "sidecar_service",
            "SidecarService",
            Block(&SIDECAR_SERVICE),
            P,
        ),
        F("sidecar_task", "SidecarTask", Block(&SIDECAR_TASK), P),
    ],
};

/// `connect { gateway { … } }`: an ingress, terminating or mesh gateway (accepted by Nomad
/// 2.0.5, api-facts §7).
pub static GATEWAY: S = S {
    fields: &[
        F("proxy", "Proxy", Block(&GATEWAY_PROXY), P),
        F("ingress", "Ingress", Block(&INGRESS), P),
        F("terminating", "Terminating", Block(&TERMINATING), P),
        F("mesh", "Mesh", Block(&MESH), P),
    ],
};

pub static GATEWAY_PROXY: S = S {
    fields: &[
        F("connect_timeout", "ConnectTimeout", Dur, P),
        F(
            "envoy_gateway_bind_tagged_addresses",
            "EnvoyGatewayBindTaggedAddresses",
            Bool,
            V,
        ),
        F(
            "envoy_gateway_bind_addresses",
            "EnvoyGatewayBindAddresses",
            LabeledMap(&GATEWAY_BIND_ADDRESS, "Name"),
            P,
        ),
        F(
            "envoy_gateway_no_default_bind",
            "EnvoyGatewayNoDefaultBind",
            Bool,
            V,
        ),
        F("envoy_dns_discovery_type", "EnvoyDNSDiscoveryType", Str, V),
        F("config", "Config", AnyMap, P),
    ],
};

pub static GATEWAY_BIND_ADDRESS: S = S {
    fields: &[
        F("", "Name", None, V),
        F("address", "Address", Str, V),
        F("port", "Port", Int, V),
    ],
};

pub static GATEWAY_TLS: S = S {
    fields: &[
        F("enabled", "Enabled", Bool, V),
        F("tls_min_version", "TLSMinVersion", Str, V),
        F("tls_max_version", "TLSMaxVersion", Str, V),
        F("cipher_suites", "CipherSuites", StrList, P),
    ],
};

pub static INGRESS: S = S {
    fields: &[
        F("tls", "TLS", Block(&GATEWAY_TLS), P),
        F("listener", "Listeners", List(&INGRESS_LISTENER), P),
    ],
};

pub static INGRESS_LISTENER: S = S {
    fields: &[
        F("port", "Port", Int, V),
        F("protocol", "Protocol", Str, V),
        F("service", "Services", List(&INGRESS_SERVICE), P),
    ],
};

pub static INGRESS_SERVICE: S = S {
    fields: &[
        F("name", "Name", Str, V),
        F("hosts", "Hosts", StrList, P),
        F("max_connections", "MaxConnections", Int, P),
        F("max_pending_requests", "MaxPendingRequests", Int, P),
        F("max_concurrent_requests", "MaxConcurrentRequests", Int, P),
    ],
};

pub static TERMINATING: S = S {
    fields: &[F("service", "Services", List(&LINKED_SERVICE), P)],
};

pub static LINKED_SERVICE: S = S {
    fields: &[
        F("name", "Name", Str, V),
        F("ca_file", "CAFile", Str, V),
        F("cert_file", "CertFile", Str, V),
        F("key_file", "KeyFile", Str, V),
        F("sni", "SNI", Str, V),
    ],
};

pub static MESH: S = S { fields: &[] };

pub static SIDECAR_SERVICE: S = S {
    fields: &[
        F("tags", "Tags", StrList, P),
        F("port", "Port", Str, V),
        F("proxy", "Proxy", Block(&PROXY), P),
        F(
            "disable_default_tcp_check",
            "DisableDefaultTCPCheck",
            Bool,
            V,
        ),
        F("meta", "Meta", StrMap, P),
    ],
};

pub static PROXY: S = S {
    fields: &[
        F("local_service_address", "LocalServiceAddress", Str, V),
        F("local_service_port", "LocalServicePort", Int, V),
        F("expose", "Expose", Block(&EXPOSE), P),
        F("", "ExposeConfig", None, P),
        F("upstreams", "Upstreams", List(&UPSTREAM), P),
        F("transparent_proxy", "TransparentProxy", Block(&TPROXY), P),
        F("config", "Config", AnyMap, P),
    ],
};

pub static EXPOSE: S = S {
    fields: &[F("path", "Paths", List(&EXPOSE_PATH), P)],
};

pub static EXPOSE_PATH: S = S {
    fields: &[
        F("path", "Path", Str, V),
        F("protocol", "Protocol", Str, V),
        F("local_path_port", "LocalPathPort", Int, V),
        F("listener_port", "ListenerPort", Str, V),
    ],
};

pub static UPSTREAM: S = S {
    fields: &[
        F("destination_name", "DestinationName", Str, V),
        F("destination_peer", "DestinationPeer", Str, V),
        F("destination_type", "DestinationType", Str, V),
        F("destination_namespace", "DestinationNamespace", Str, V),
        F("destination_partition", "DestinationPartition", Str, V),
        F("local_bind_port", "LocalBindPort", Int, V),
        F("datacenter", "Datacenter", Str, V),
        F("local_bind_address", "LocalBindAddress", Str, V),
        F("local_bind_socket_path", "LocalBindSocketPath", Str, V),
        F("local_bind_socket_mode", "LocalBindSocketMode", Str, V),
        F("mesh_gateway", "MeshGateway", Block(&MESH_GATEWAY), P),
        F("config", "Config", AnyMap, P),
    ],
};

pub static MESH_GATEWAY: S = S {
    fields: &[F("mode", "Mode", Str, V)],
};

pub static TPROXY: S = S {
    fields: &[
        F("uid", "UID", Str, V),
        F("outbound_port", "OutboundPort", Int, V),
        F("exclude_inbound_ports", "ExcludeInboundPorts", StrList, P),
        F("exclude_outbound_ports", "ExcludeOutboundPorts", IntList, P),
        F("exclude_outbound_cidrs", "ExcludeOutboundCIDRs", StrList, P),
        F("exclude_uids", "ExcludeUIDs", StrList, P),
        F("no_dns", "NoDNS", Bool, V),
    ],
};

pub static SIDECAR_TASK: S = S {
    fields: &[
        F("name", "Name", Str, V),
        F("driver", "Driver", Str, V),
        F("user", "User", Str, V),
        F("config", "Config", AnyMap, P),
        F("env", "Env", StrMap, P),
        F("resources", "Resources", Block(&RESOURCES), P),
        F("meta", "Meta", StrMap, P),
        F("kill_timeout", "KillTimeout", Dur, P),
        F("logs", "LogConfig", Block(&LOGS), P),
        F("shutdown_delay", "ShutdownDelay", Dur, P),
        F("kill_signal", "KillSignal", Str, V),
        F("volume_mount", "VolumeMounts", List(&VOLUME_MOUNT), P),
    ],
};

pub static RESOURCES: S = S {
    fields: &[
        F("cpu", "CPU", Int, P),
        F("cores", "Cores", Int, P),
        F("memory", "MemoryMB", Int, P),
        F("memory_max", "MemoryMaxMB", Int, P),
        F("", "DiskMB", None, P),
        F("network", "Networks", List(&NETWORK), P),
        F("device", "Devices", Labeled(&DEVICE, "Name"), P),
        F("", "IOPS", None, P),
        F("", "NUMA", None, P),
        F("secrets", "SecretsMB", Int, P),
    ],
};

pub static DEVICE: S = S {
    fields: &[
        F("", "Name", None, V),
        F("count", "Count", Int, P),
        F("constraint", "Constraints", List(&CONSTRAINT), P),
        F("affinity", "Affinities", List(&AFFINITY), P),
    ],
};

pub static LIFECYCLE: S = S {
    fields: &[F("hook", "Hook", Str, V), F("sidecar", "Sidecar", Bool, V)],
};

pub static LOGS: S = S {
    fields: &[
        F("max_files", "MaxFiles", Int, P),
        F("max_file_size", "MaxFileSizeMB", Int, P),
        F("enabled", "Enabled", Bool, P),
        F("disabled", "Disabled", Bool, P),
    ],
};

pub static ARTIFACT: S = S {
    fields: &[
        F("source", "GetterSource", Str, P),
        F("options", "GetterOptions", StrMap, P),
        F("headers", "GetterHeaders", StrMap, P),
        F("mode", "GetterMode", Str, P),
        F("insecure", "GetterInsecure", Bool, P),
        F("destination", "RelativeDest", Str, P),
        F("chown", "Chown", Bool, V),
    ],
};

pub static VAULT: S = S {
    fields: &[
        F("policies", "Policies", StrList, P),
        F("role", "Role", Str, V),
        F("namespace", "Namespace", Str, P),
        F("cluster", "Cluster", Str, V),
        F("env", "Env", Bool, P),
        F("disable_file", "DisableFile", Bool, P),
        F("change_mode", "ChangeMode", Str, P),
        F("change_signal", "ChangeSignal", Str, P),
        F("allow_token_expiration", "AllowTokenExpiration", Bool, P),
    ],
};

pub static CONSUL: S = S {
    fields: &[
        F("cluster", "Cluster", Str, V),
        F("namespace", "Namespace", Str, V),
        F("partition", "Partition", Str, V),
    ],
};

pub static TEMPLATE: S = S {
    fields: &[
        F("source", "SourcePath", Str, P),
        F("destination", "DestPath", Str, P),
        F("data", "EmbeddedTmpl", Str, P),
        F("change_mode", "ChangeMode", Str, P),
        F("change_script", "ChangeScript", Block(&CHANGE_SCRIPT), P),
        F("change_signal", "ChangeSignal", Str, P),
        F("splay", "Splay", Dur, P),
        F("perms", "Perms", Str, P),
        F("uid", "Uid", Int, P),
        F("gid", "Gid", Int, P),
        F("left_delimiter", "LeftDelim", Str, P),
        F("right_delimiter", "RightDelim", Str, P),
        F("env", "Envvars", Bool, P),
        F("vault_grace", "VaultGrace", Dur, P),
        F("wait", "Wait", Block(&WAIT), P),
        F("error_on_missing_key", "ErrMissingKey", Bool, P),
        F("once", "Once", Bool, P),
    ],
};

pub static CHANGE_SCRIPT: S = S {
    fields: &[
        F("command", "Command", Str, P),
        F("args", "Args", StrList, P),
        F("timeout", "Timeout", Dur, P),
        F("fail_on_error", "FailOnError", Bool, P),
    ],
};

pub static WAIT: S = S {
    fields: &[F("min", "Min", Dur, P), F("max", "Max", Dur, P)],
};

pub static DISPATCH_PAYLOAD: S = S {
    fields: &[F("file", "File", Str, V)],
};

pub static VOLUME: S = S {
    fields: &[
        F("", "Name", None, V),
        F("type", "Type", Str, V),
        F("source", "Source", Str, V),
        F("read_only", "ReadOnly", Bool, V),
        F("sticky", "Sticky", Bool, V),
        F("access_mode", "AccessMode", Str, V),
        F("attachment_mode", "AttachmentMode", Str, V),
        F("mount_options", "MountOptions", Block(&MOUNT_OPTIONS), P),
        F("per_alloc", "PerAlloc", Bool, V),
    ],
};

pub static MOUNT_OPTIONS: S = S {
    fields: &[
        F("fs_type", "FSType", Str, V),
        F("mount_flags", "MountFlags", StrList, P),
    ],
};

pub static VOLUME_MOUNT: S = S {
    fields: &[
        F("volume", "Volume", Str, P),
        F("destination", "Destination", Str, P),
        F("read_only", "ReadOnly", Bool, P),
        F("propagation_mode", "PropagationMode", Str, P),
        F("selinux_label", "SELinuxLabel", Str, P),
    ],
};

pub static CSI_PLUGIN: S = S {
    fields: &[
        F("id", "ID", Str, V),
        F("type", "Type", Str, V),
        F("mount_dir", "MountDir", Str, V),
        F("stage_publish_base_dir", "StagePublishBaseDir", Str, V),
        F("health_timeout", "HealthTimeout", Dur, V),
    ],
};

pub static SCALING: S = S {
    fields: &[
        // Go strings: `""` when unset (measured on Nomad 2.0.5, api-facts §7).
        F("", "ID", Str, V),
        F("", "Namespace", Str, V),
        F("", "Type", None, V),
        F("", "Target", None, P),
        F("min", "Min", Int, P),
        F("max", "Max", Int, P),
        F("policy", "Policy", AnyMap, P),
        F("enabled", "Enabled", Bool, P),
        F("", "CreateIndex", None, V),
        F("", "ModifyIndex", None, V),
    ],
};

pub static IDENTITY: S = S {
    fields: &[
        F("name", "Name", Str, V),
        F("aud", "Audience", StrList, P),
        F("change_mode", "ChangeMode", Str, V),
        F("change_signal", "ChangeSignal", Str, V),
        F("env", "Env", Bool, V),
        F("file", "File", Bool, V),
        F("filepath", "Filepath", Str, V),
        F("service_name", "ServiceName", Str, V),
        F("ttl", "TTL", Dur, V),
        F("", "ExtraClaims", None, P),
    ],
};

/// The Go zero value a value-typed field takes when unset.
fn zero(k: K) -> Value {
    match k {
        Str => Value::String(String::new()),
        Int | Dur => Value::from(0),
        Bool => Value::Bool(false),
        _ => Value::Null,
    }
}

/// An output object with every Go field of `s` at its unset value.
pub fn empty(s: &S) -> Map<String, Value> {
    let mut m = Map::new();
    for f in s.fields {
        if f.1.is_empty() || f.1 == "Ports" {
            continue;
        }
        m.insert(f.1.to_string(), if f.3 { Value::Null } else { zero(f.2) });
    }
    m
}

pub(crate) fn block_label_ok(b: &Block, want: usize, sc: &Scope) -> Result<(), Diag> {
    labels_ok(&BlockRef::of(b, sc), want)
}

/// Decode a body against a schema. Unknown arguments and blocks are errors, like Nomad's
/// schema-based decoding.
pub(crate) fn decode(body: &Body, s: &S, sc: &mut Scope) -> Result<Map<String, Value>, Diag> {
    let mut out = empty(s);
    let mut seen: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    let mut seen_blocks: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    for st in body.iter() {
        match st {
            Structure::Attribute(a) => {
                let key_owned = super::key_name(a, sc);
                let key = key_owned.as_str();
                let krange = a.key.span().unwrap_or(0..0);
                let krange = sc.base + krange.start..sc.base + krange.end;
                let field = s.fields.iter().find(|f| f.0 == key && takes_attr(f.2));
                let Some(field) = field else {
                    let hint = if s.fields.iter().any(|f| f.0 == key && takes_block(f.2)) {
                        format!(" Did you mean to define a block of type \"{key}\"?")
                    } else {
                        suggest(
                            key,
                            s.fields.iter().filter(|f| takes_attr(f.2)).map(|f| f.0),
                        )
                    };
                    return Err(Diag::new(
                        krange,
                        "Unsupported argument",
                        format!("An argument named \"{key}\" is not expected here.{hint}"),
                    ));
                };
                if let Some((_, prev)) = seen.iter().find(|(k, _)| k == key) {
                    return Err(Diag::new(
                        krange,
                        "Attribute redefined",
                        format!(
                            "The argument \"{key}\" was already set at {}. Each argument may be set only once.",
                            super::pos_string(sc_text_root(sc), prev)
                        ),
                    ));
                }
                seen.push((key.to_string(), krange.clone()));
                let v = sc.eval(&a.value)?;
                let vrange = a.value.span().unwrap_or(0..0);
                let vrange = value_range(sc.text, sc.base + vrange.start..sc.base + vrange.end);
                let conv = convert(v, field.2, vrange)?;
                let name = if field.1.is_empty() { field.0 } else { field.1 };
                out.insert(name.to_string(), conv);
            }
            Structure::Block(b) if b.ident.value().as_str() == "dynamic" => {
                expand_dynamic(b, s, &mut out, &mut seen_blocks, sc)?;
            }
            Structure::Block(b) => {
                let br = BlockRef::of(b, sc);
                decode_block(&br, s, &mut out, &mut seen_blocks, sc)?;
            }
        }
    }
    Ok(out)
}

/// A block header and body, from the source or from a `dynamic` block's expansion.
pub(crate) struct BlockRef<'b> {
    ident: String,
    ident_range: std::ops::Range<usize>,
    labels: Vec<(String, std::ops::Range<usize>)>,
    body: &'b Body,
}

impl<'b> BlockRef<'b> {
    fn of(b: &'b Block, sc: &Scope) -> BlockRef<'b> {
        let shift = |r: std::ops::Range<usize>| sc.base + r.start..sc.base + r.end;
        BlockRef {
            ident: b.ident.value().to_string(),
            ident_range: shift(b.ident.span().unwrap_or(0..0)),
            labels: b
                .labels
                .iter()
                .map(|l| (l.as_str().to_string(), shift(l.span().unwrap_or(0..0))))
                .collect(),
            body: &b.body,
        }
    }
}

/// `dynamic "x" { for_each, iterator, labels, content {} }`: one `x` block per element, with
/// the iterator symbol (`<name>.key`, `<name>.value`) in scope, like HCL's dynblock extension.
fn expand_dynamic(
    b: &Block,
    s: &S,
    out: &mut Map<String, Value>,
    seen_blocks: &mut Vec<(String, std::ops::Range<usize>)>,
    sc: &mut Scope,
) -> Result<(), Diag> {
    let shift = |r: std::ops::Range<usize>| sc.base + r.start..sc.base + r.end;
    let range = shift(b.ident.span().unwrap_or(0..0));
    let Some(label) = b.labels.first() else {
        return Err(Diag::new(
            range,
            "Missing name for dynamic",
            "All dynamic blocks must have 1 labels (name).",
        ));
    };
    let block_type = label.as_str().to_string();
    let label_range = shift(label.span().unwrap_or(0..0));
    let mut iter_name = block_type.clone();
    let mut for_each = Option::None;
    let mut labels_expr = Option::None;
    let mut content = Option::None;
    for st in b.body.iter() {
        match st {
            Structure::Attribute(a) => match a.key.value().as_str() {
                "for_each" => for_each = Some(&a.value),
                "labels" => labels_expr = Some(&a.value),
                "iterator" => {
                    if let Some(id) = a.value.as_variable() {
                        iter_name = id.to_string();
                    }
                }
                other => {
                    return Err(Diag::new(
                        shift(a.key.span().unwrap_or(0..0)),
                        "Unsupported argument",
                        format!("An argument named \"{other}\" is not expected here."),
                    ));
                }
            },
            Structure::Block(cb) if cb.ident.value().as_str() == "content" => content = Some(cb),
            Structure::Block(cb) => {
                return Err(Diag::new(
                    shift(cb.ident.span().unwrap_or(0..0)),
                    "Unsupported block type",
                    format!(
                        "Blocks of type \"{}\" are not expected here.",
                        cb.ident.value()
                    ),
                ));
            }
        }
    }
    let (Some(for_each), Some(content)) = (for_each, content) else {
        return Err(Diag::new(
            range,
            "Missing required argument",
            "A dynamic block requires a for_each argument and a content block.",
        ));
    };
    let items: Vec<(Value, Value)> = match sc.eval(for_each)? {
        Value::Array(a) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Value::from(i as u64), v))
            .collect(),
        Value::Object(o) => o.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
        Value::Null => Vec::new(),
        _ => {
            return Err(Diag::new(
                range,
                "Invalid dynamic for_each value",
                "Cannot use a primitive value in for_each. An iterable collection is required.",
            ));
        }
    };
    for (k, v) in items {
        let depth = sc.iter.len();
        let mut it = Map::new();
        it.insert("key".into(), k);
        it.insert("value".into(), v);
        sc.iter.push((iter_name.clone(), Value::Object(it)));
        let labels = match labels_expr {
            Some(e) => match sc.eval(e) {
                Ok(Value::Array(ls)) => ls
                    .iter()
                    .map(|l| (to_str(l).unwrap_or_default(), label_range.clone()))
                    .collect(),
                Ok(_) => Vec::new(),
                Err(d) => {
                    sc.iter.truncate(depth);
                    return Err(d);
                }
            },
            Option::None => Vec::new(),
        };
        let br = BlockRef {
            ident: block_type.clone(),
            ident_range: label_range.clone(),
            labels,
            body: &content.body,
        };
        let r = decode_block(&br, s, out, seen_blocks, sc);
        sc.iter.truncate(depth);
        r?;
    }
    Ok(())
}

fn decode_block(
    b: &BlockRef,
    s: &S,
    out: &mut Map<String, Value>,
    seen_blocks: &mut Vec<(String, std::ops::Range<usize>)>,
    sc: &mut Scope,
) -> Result<(), Diag> {
    let ident = b.ident.as_str();
    let field = s.fields.iter().find(|f| f.0 == ident && takes_block(f.2));
    let Some(field) = field else {
        let hint = if s.fields.iter().any(|f| f.0 == ident && takes_attr(f.2)) {
            format!(
                " Did you mean to define argument \"{ident}\"? If so, use the equals sign to assign it a value."
            )
        } else {
            suggest(
                ident,
                s.fields.iter().filter(|f| takes_block(f.2)).map(|f| f.0),
            )
        };
        return Err(Diag::new(
            b.ident_range.clone(),
            "Unsupported block type",
            format!("Blocks of type \"{ident}\" are not expected here.{hint}"),
        ));
    };
    let key = if field.1.is_empty() { field.0 } else { field.1 };
    match field.2 {
        Block(inner) => {
            labels_ok(b, 0)?;
            if let Some((_, prev)) = seen_blocks.iter().find(|(k, _)| k == ident) {
                return Err(Diag::new(
                    b.ident_range.clone(),
                    &format!("Duplicate {ident} block"),
                    format!(
                        "Only one {ident} block is allowed. Another was defined at {}.",
                        super::pos_string(sc.text, prev)
                    ),
                ));
            }
            seen_blocks.push((ident.to_string(), b.ident_range.clone()));
            out.insert(key.to_string(), Value::Object(decode(b.body, inner, sc)?));
        }
        List(inner) => {
            labels_ok(b, 0)?;
            let v = Value::Object(decode(b.body, inner, sc)?);
            push(out, key, v);
        }
        Labeled(inner, label_field) => {
            labels_ok(b, 1)?;
            let mut m = decode(b.body, inner, sc)?;
            m.insert(
                label_field.to_string(),
                Value::String(b.labels[0].0.clone()),
            );
            push(out, key, Value::Object(m));
        }
        LabeledMap(inner, label_field) => {
            labels_ok(b, 1)?;
            let label = b.labels[0].0.clone();
            let mut m = decode(b.body, inner, sc)?;
            m.insert(label_field.to_string(), Value::String(label.clone()));
            if !out.get(key).is_some_and(Value::is_object) {
                out.insert(key.to_string(), Value::Object(Map::new()));
            }
            if let Some(Value::Object(map)) = out.get_mut(key) {
                map.insert(label, Value::Object(m));
            }
        }
        StrMap | StrListMap => {
            labels_ok(b, 0)?;
            // `env {}`/`meta {}` are the jobspec's own attribute blocks: a key set twice is an
            // error there, unlike inside a driver config.
            refuse_redefined(b.body, sc)?;
            let raw = decode_any(b.body, sc)?;
            let conv = convert(Value::Object(raw), field.2, b.ident_range.clone())?;
            merge_into(out, key, conv);
        }
        AnyMap => {
            labels_ok(b, 0)?;
            let raw = decode_any(b.body, sc)?;
            merge_into(out, key, Value::Object(raw));
        }
        _ => {}
    }
    Ok(())
}

/// HCL's `Attribute redefined` for the second definition of a key in `body`.
fn refuse_redefined(body: &Body, sc: &Scope) -> Result<(), Diag> {
    let mut seen: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    for st in body.iter() {
        let Structure::Attribute(a) = st else {
            continue;
        };
        let key = super::key_name(a, sc);
        let r = a.key.span().unwrap_or(0..0);
        let r = sc.base + r.start..sc.base + r.end;
        if let Some((_, prev)) = seen.iter().find(|(k, _)| *k == key) {
            return Err(Diag::new(
                r,
                "Attribute redefined",
                format!(
                    "The argument \"{key}\" was already set at {}. Each argument may be set only once.",
                    super::pos_string(sc.text, prev)
                ),
            ));
        }
        seen.push((key, r));
    }
    Ok(())
}

fn labels_ok(b: &BlockRef, want: usize) -> Result<(), Diag> {
    let have = b.labels.len();
    let ident = &b.ident;
    if have == want {
        Ok(())
    } else if have < want {
        Err(Diag::new(
            b.ident_range.clone(),
            &format!("Missing name for {ident}"),
            format!("All {ident} blocks must have {want} labels (name)."),
        ))
    } else {
        Err(Diag::new(
            b.labels[want].1.clone(),
            &format!("Extraneous label for {ident}"),
            format!("Only {want} labels (name) are expected for {ident} blocks."),
        ))
    }
}

/// HCL's "Did you mean" hint: the closest candidate within edit distance 2.
fn suggest<'a>(given: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    candidates
        .filter(|c| !c.is_empty())
        .map(|c| (strsim::levenshtein(given, c), c))
        .filter(|(d, _)| *d < 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!(" Did you mean \"{c}\"?"))
        .unwrap_or_default()
}

fn sc_text_root<'a>(sc: &Scope<'a>) -> &'a str {
    sc.text
}

fn merge_into(out: &mut Map<String, Value>, key: &str, v: Value) {
    match (out.get_mut(key), v) {
        (Some(Value::Object(existing)), Value::Object(new)) => existing.extend(new),
        (_, v) => {
            out.insert(key.to_string(), v);
        }
    }
}

fn push(out: &mut Map<String, Value>, key: &str, v: Value) {
    match out.get_mut(key) {
        Some(Value::Array(a)) => a.push(v),
        _ => {
            out.insert(key.to_string(), Value::Array(vec![v]));
        }
    }
}

fn takes_attr(k: K) -> bool {
    !matches!(k, Block(_) | List(_) | Labeled(..) | LabeledMap(..) | None)
}

fn takes_block(k: K) -> bool {
    matches!(
        k,
        Block(_) | List(_) | Labeled(..) | LabeledMap(..) | StrMap | StrListMap | AnyMap
    )
}

/// A free-form body (driver `config {}`, scaling `policy {}`): attributes by name, nested
/// blocks as lists of objects, and each label one more level of a list of objects
/// (`check "x" { … }` → `check: [{"x": [{…}]}]`, measured on Nomad 2.0.5, api-facts §7).
pub(crate) fn decode_any(body: &Body, sc: &mut Scope) -> Result<Map<String, Value>, Diag> {
    let mut out = Map::new();
    for st in body.iter() {
        match st {
            Structure::Attribute(a) => {
                // A key defined twice is accepted here, the last one winning: Nomad decodes a
                // driver config leniently (measured on Nomad 2.0.5, api-facts §7).
                let v = sc.eval(&a.value)?;
                out.insert(super::key_name(a, sc), v);
            }
            Structure::Block(b) => {
                let mut v = Value::Object(decode_any(&b.body, sc)?);
                for l in b.labels.iter().rev() {
                    let mut m = Map::new();
                    m.insert(l.as_str().to_string(), Value::Array(vec![v]));
                    v = Value::Object(m);
                }
                push(&mut out, b.ident.value().as_str(), v);
            }
        }
    }
    Ok(out)
}

/// The range a conversion error points at: a quoted string's contents, without the quotes
/// (measured on Nomad 2.0.5, api-facts §7: `27,19-38`, not `27,18-39`).
fn value_range(text: &str, r: std::ops::Range<usize>) -> std::ops::Range<usize> {
    match text.get(r.clone()) {
        Some(v) if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') => r.start + 1..r.end - 1,
        _ => r,
    }
}

/// cty's message for a string that does not convert: `a number is required`.
fn not_convertible(range: std::ops::Range<usize>, v: &Value, what: &str) -> Diag {
    if v.is_string() {
        Diag::new(
            range,
            "Unsuitable value type",
            format!("Unsuitable value: a {what} is required"),
        )
    } else {
        unsuitable(range, what)
    }
}

fn unsuitable(range: std::ops::Range<usize>, what: &str) -> Diag {
    Diag::new(
        range,
        "Unsuitable value type",
        format!("Unsuitable value: {what} required"),
    )
}

/// Convert an evaluated value to the kind's JSON shape, with cty's lenient conversions.
fn convert(v: Value, k: K, range: std::ops::Range<usize>) -> Result<Value, Diag> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    match k {
        Str => to_str(&v)
            .map(Value::String)
            .ok_or_else(|| unsuitable(range, "string")),
        Int => match as_f64(&v) {
            Some(f) if f.fract() == 0.0 => Ok(Value::from(f as i64)),
            Some(_) => Err(Diag::new(
                range,
                "Unsuitable value type",
                "Unsuitable value: a whole number is required",
            )),
            Option::None => Err(not_convertible(range, &v, "number")),
        },
        Bool => as_bool(&v)
            .map(Value::Bool)
            .ok_or_else(|| not_convertible(range, &v, "bool")),
        Dur => match &v {
            Value::String(s) => parse_duration(s).map(Value::from).ok_or_else(|| {
                Diag::new(
                    range,
                    "Unsuitable value type",
                    format!("Unsuitable duration value: time: invalid duration {s:?}"),
                )
            }),
            Value::Number(_) => Ok(v),
            _ => Err(Diag::new(
                range,
                "Unsuitable value type",
                "Unsuitable value: expected a string but found another type",
            )),
        },
        StrList => match v {
            Value::Array(a) => a
                .iter()
                .map(|x| {
                    to_str(x)
                        .map(Value::String)
                        .ok_or_else(|| unsuitable(range.clone(), "list of string"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            _ => Err(unsuitable(range, "list of string")),
        },
        IntList => match v {
            Value::Array(a) => a
                .iter()
                .map(|x| {
                    as_f64(x)
                        .map(|f| Value::from(f as i64))
                        .ok_or_else(|| unsuitable(range.clone(), "list of number"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            _ => Err(unsuitable(range, "list of number")),
        },
        StrMap => match v {
            Value::Object(o) => o
                .into_iter()
                .map(|(key, x)| {
                    to_str(&x)
                        .map(|s| (key, Value::String(s)))
                        .ok_or_else(|| unsuitable(range.clone(), "map of string"))
                })
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object),
            _ => Err(unsuitable(range, "map of string")),
        },
        StrListMap => match v {
            Value::Object(o) => o
                .into_iter()
                .map(|(key, x)| convert(x, StrList, range.clone()).map(|l| (key, l)))
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object),
            _ => Err(unsuitable(range, "map of list of string")),
        },
        AnyMap => match v {
            Value::Object(_) => Ok(v),
            _ => Err(unsuitable(range, "map")),
        },
        _ => Ok(v),
    }
}

/// Go's `time.ParseDuration` → signed nanoseconds (jobspecs may write `"-1s"`).
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        Option::None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let ns = i64::try_from(crate::duration::parse_go_duration(rest)?.as_nanos()).ok()?;
    Some(if neg { -ns } else { ns })
}

/// Add every Go field of the schema that a JSON job (e.g. one submitted to the register API)
/// left out, recursively, so stored jobs have the full shape whatever the client omitted.
pub fn fill_shape(v: &mut Value, s: &S) {
    let Some(o) = v.as_object_mut() else { return };
    for f in s.fields {
        if f.1.is_empty() || f.1 == "Ports" {
            continue;
        }
        if !o.contains_key(f.1) {
            o.insert(f.1.to_string(), if f.3 { Value::Null } else { zero(f.2) });
            continue;
        }
        let Some(child) = o.get_mut(f.1) else {
            continue;
        };
        match f.2 {
            Block(inner) => fill_shape(child, inner),
            List(inner) | Labeled(inner, _) => {
                if let Some(a) = child.as_array_mut() {
                    for x in a {
                        fill_shape(x, inner);
                    }
                }
            }
            LabeledMap(inner, _) => {
                if let Some(m) = child.as_object_mut() {
                    for x in m.values_mut() {
                        fill_shape(x, inner);
                    }
                }
            }
            _ => {}
        }
    }
}
