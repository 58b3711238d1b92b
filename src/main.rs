//! The `drover` command line: the one place for `anyhow`. Exit codes: 0 ok, 1 error, 2 changes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use drover::devstack::{Devstack, DevstackConfig};

/// GitOps for Nomad, Consul, Vault and S3: make the cluster match a Git repository.
#[derive(Debug, Parser)]
#[command(name = "drover", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the embedded Nomad, Consul and Vault APIs on loopback until Ctrl-C.
    Devstack(DevstackArgs),
}

#[derive(Debug, clap::Args)]
struct DevstackArgs {
    /// Nomad API address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:4646")]
    nomad_addr: SocketAddr,
    /// Consul API address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8500")]
    consul_addr: SocketAddr,
    /// Vault API address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8200")]
    vault_addr: SocketAddr,
    /// YAML seed file: nodes, Vault secrets, CSI plugins, tokens.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Root token (default: a random UUID).
    #[arg(long, env = "DROVER_DEVSTACK_ROOT_TOKEN")]
    root_token: Option<String>,
    /// Enforce Nomad ACLs (X-Nomad-Token).
    #[arg(long)]
    nomad_acl: bool,
    /// Multiply every simulated delay by this factor.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
}

fn main() -> ExitCode {
    drover::telemetry::init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Devstack(args) => devstack(args).await,
    }
}

async fn devstack(args: DevstackArgs) -> anyhow::Result<ExitCode> {
    let mut config = DevstackConfig {
        nomad_addr: args.nomad_addr,
        consul_addr: args.consul_addr,
        vault_addr: args.vault_addr,
        nomad_acl: args.nomad_acl,
        time_scale: args.time_scale,
        ..DevstackConfig::default()
    };
    if let Some(token) = args.root_token {
        config.root_token = token;
    }
    if let Some(path) = args.seed {
        config.seed = Some(
            drover::devstack::seed::Seed::from_file(&path)
                .with_context(|| format!("reading seed {}", path.display()))?,
        );
    }
    let stack = Devstack::start(config).await?;
    print!("{}", stack.env_exports());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    stack.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
