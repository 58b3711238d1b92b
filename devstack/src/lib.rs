//! The embedded devstack: the Nomad, Consul and Vault HTTP APIs served from memory.
//!
//! It is a product feature (`drover devstack`, `drover demo`) and the test double for every
//! integration test. It has its own wire types, written from the API reference and never shared
//! with `src/providers/`, so that a casing bug cannot hide on both sides.

pub mod clock;
pub mod consul;
pub mod control;
pub mod faults;
pub mod nomad;
pub mod s3;
pub mod seed;
pub mod vault;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which of the three simulated servers a request reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    /// The Nomad HTTP API.
    Nomad,
    /// The Consul HTTP API.
    Consul,
    /// The Vault HTTP API.
    Vault,
}

impl System {
    /// Lower-case name, as used in the control API and the request log.
    pub fn as_str(self) -> &'static str {
        match self {
            System::Nomad => "nomad",
            System::Consul => "consul",
            System::Vault => "vault",
        }
    }
}

/// How to start a devstack.
#[derive(Debug, Clone)]
pub struct DevstackConfig {
    /// Address for the Nomad API; port 0 picks a free port.
    pub nomad_addr: SocketAddr,
    /// Address for the Consul API; port 0 picks a free port.
    pub consul_addr: SocketAddr,
    /// Address for the Vault API; port 0 picks a free port.
    pub vault_addr: SocketAddr,
    /// Vault root token, also Nomad's and Consul's management token when ACLs are on.
    pub root_token: String,
    /// Enforce Nomad ACLs (`X-Nomad-Token`).
    pub nomad_acl: bool,
    /// Enforce Consul ACLs (`X-Consul-Token`).
    pub consul_acl: bool,
    /// Multiplies every simulated delay (task start, min_healthy_time, deadlines). Tests use a
    /// small value so a 10 s `min_healthy_time` passes in milliseconds; the demo uses 1.0.
    pub time_scale: f64,
    /// Optional initial state (nodes, Vault secrets, CSI plugins, tokens).
    pub seed: Option<seed::Seed>,
    /// How often `/v1/event/stream` writes a `{}` heartbeat line (Nomad: 30 s).
    pub event_heartbeat: Duration,
    /// Index batches the event buffer keeps for `?index=` replay (Nomad's `event_buffer_size`,
    /// default 100).
    pub event_buffer: usize,
}

impl Default for DevstackConfig {
    fn default() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        DevstackConfig {
            nomad_addr: any,
            consul_addr: any,
            vault_addr: any,
            root_token: uuid::Uuid::new_v4().to_string(),
            nomad_acl: false,
            consul_acl: false,
            time_scale: 1.0,
            seed: None,
            event_heartbeat: Duration::from_secs(30),
            event_buffer: 100,
        }
    }
}

impl DevstackConfig {
    /// Scale a simulated duration by `time_scale`.
    pub fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.time_scale.max(0.0))
    }
}

/// Everything the three servers share: they are one simulated cluster.
pub struct DevState {
    /// The configuration the devstack started with.
    pub config: DevstackConfig,
    /// Nomad's state store, scheduler and CSI.
    pub nomad: nomad::NomadState,
    /// Consul's catalog, health, config entries, KV and sessions.
    pub consul: consul::ConsulState,
    /// Vault's mounts, secrets and tokens.
    pub vault: vault::VaultState,
    /// Injected faults, per path pattern.
    pub faults: faults::FaultTable,
    /// Every request served, for tests that count calls.
    pub requests: faults::RequestLog,
    /// Stops background tasks (the scheduler) on shutdown.
    pub shutdown: CancellationToken,
}

impl DevState {
    /// Forget all state and faults, then re-apply the seed (the control API's reset).
    pub fn reset(&self) {
        self.faults.clear();
        self.requests.clear();
        // Consul and Vault first: Nomad's reset registers its nodes in Consul.
        self.consul.reset(&self.config);
        self.vault.reset(&self.config);
        self.nomad.reset(&self.config);
    }
}

/// Errors starting the devstack.
#[derive(Debug, thiserror::Error)]
pub enum DevstackError {
    /// A listener could not bind its address.
    #[error("cannot listen on {addr} for {system:?}")]
    Bind {
        /// The system whose listener failed.
        system: System,
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The seed file could not be read or parsed.
    #[error("devstack seed: {0}")]
    Seed(String),
}

/// A running devstack; dropping it does not stop it, call [`Devstack::shutdown`].
pub struct Devstack {
    /// Where the Nomad API listens.
    pub nomad_addr: SocketAddr,
    /// Where the Consul API listens.
    pub consul_addr: SocketAddr,
    /// Where the Vault API listens.
    pub vault_addr: SocketAddr,
    state: Arc<DevState>,
    servers: Vec<JoinHandle<()>>,
}

impl Devstack {
    /// Bind the three listeners, start the simulated scheduler and serve until shutdown.
    pub async fn start(config: DevstackConfig) -> Result<Devstack, DevstackError> {
        let nomad_listener = bind(System::Nomad, config.nomad_addr).await?;
        let consul_listener = bind(System::Consul, config.consul_addr).await?;
        let vault_listener = bind(System::Vault, config.vault_addr).await?;
        let local = |l: &TcpListener, system, addr| {
            l.local_addr().map_err(|source| DevstackError::Bind {
                system,
                addr,
                source,
            })
        };
        let nomad_addr = local(&nomad_listener, System::Nomad, config.nomad_addr)?;
        let consul_addr = local(&consul_listener, System::Consul, config.consul_addr)?;
        let vault_addr = local(&vault_listener, System::Vault, config.vault_addr)?;

        let state = Arc::new(DevState {
            nomad: nomad::NomadState::new(&config),
            consul: consul::ConsulState::new(&config),
            vault: vault::VaultState::new(&config),
            faults: faults::FaultTable::default(),
            requests: faults::RequestLog::default(),
            shutdown: CancellationToken::new(),
            config,
        });
        state.reset();
        nomad::spawn_background(state.clone());

        let mut servers = Vec::new();
        for (system, listener, api) in [
            (System::Nomad, nomad_listener, nomad::router()),
            (System::Consul, consul_listener, consul::router()),
            (System::Vault, vault_listener, vault::router()),
        ] {
            let app = server_router(state.clone(), system, api);
            let stop = state.shutdown.clone();
            servers.push(tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(error) = served {
                    tracing::error!(system = system.as_str(), %error, "devstack server stopped");
                }
            }));
        }
        tracing::info!(%nomad_addr, %consul_addr, %vault_addr, "devstack listening");
        Ok(Devstack {
            nomad_addr,
            consul_addr,
            vault_addr,
            state,
            servers,
        })
    }

    /// `http://host:port` of the Nomad API.
    pub fn nomad_url(&self) -> String {
        format!("http://{}", self.nomad_addr)
    }

    /// `http://host:port` of the Consul API.
    pub fn consul_url(&self) -> String {
        format!("http://{}", self.consul_addr)
    }

    /// `http://host:port` of the Vault API.
    pub fn vault_url(&self) -> String {
        format!("http://{}", self.vault_addr)
    }

    /// The root token (Vault's, and the management token when ACLs are on).
    pub fn root_token(&self) -> &str {
        &self.state.config.root_token
    }

    /// The shared simulated-cluster state, for in-process inspection.
    pub fn state(&self) -> &Arc<DevState> {
        &self.state
    }

    /// The shell lines a user pastes to point the HashiCorp CLIs (and drover) here.
    pub fn env_exports(&self) -> String {
        format!(
            "export NOMAD_ADDR={}\nexport CONSUL_HTTP_ADDR={}\nexport VAULT_ADDR={}\nexport VAULT_TOKEN={}\n",
            self.nomad_url(),
            self.consul_addr,
            self.vault_url(),
            self.root_token()
        )
    }

    /// Stop serving and wait for the servers to finish.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        for server in self.servers {
            let _ = server.await;
        }
    }
}

async fn bind(system: System, addr: SocketAddr) -> Result<TcpListener, DevstackError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DevstackError::Bind {
            system,
            addr,
            source,
        })
}

/// One server: its API, the control API under `/_devstack`, and the fault/request-log layer.
fn server_router(state: Arc<DevState>, system: System, api: Router<Arc<DevState>>) -> Router {
    api.nest("/_devstack", control::router())
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), system),
            faults::middleware,
        ))
        .with_state(state)
}
