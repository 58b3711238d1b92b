//! The `drover` command line: the one place for `anyhow`. Exit codes: 0 ok, 1 error, 2 changes.

mod demo;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use drover::app_stack::{self, DesiredSource, LiveReading, load_desired};
use drover::config::Settings;
use drover::controller::{AppStatus, ControllerSettings};
use drover::health::Health;
use drover::providers::nomad::NomadConfig;
use drover::store::Store;
use drover::web::api::{
    ApiError, HistoryEntry, Pinned, RepoView, SourceView, SyncRequested, Unpinned,
};
use drover_devstack::{Devstack, DevstackConfig};

// Output goes through these instead of std's `println!`/`print!`, which panic when stdout is a
// closed pipe (`drover plan | head -1`): a failed write returns an [`StdoutError`] from the
// command, and `main` exits quietly on a broken pipe like a tool killed by SIGPIPE.
macro_rules! println {
    ($($arg:tt)*) => {
        write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}
macro_rules! print {
    ($($arg:tt)*) => {
        write_stdout(format_args!($($arg)*))?
    };
}

/// Writing to stdout failed.
#[derive(Debug, thiserror::Error)]
#[error("writing to stdout")]
struct StdoutError(#[source] std::io::Error);

fn write_stdout(text: std::fmt::Arguments<'_>) -> Result<(), StdoutError> {
    use std::io::Write as _;
    std::io::stdout()
        .lock()
        .write_fmt(text)
        .map_err(StdoutError)
}

/// The exit code of a process killed by SIGPIPE (128 + 13), which shells and `pipefail` expect.
const BROKEN_PIPE_EXIT: u8 = 141;

/// GitOps for Nomad, Consul, Vault and S3: make the cluster match a Git repository.
#[derive(Debug, Parser)]
#[command(name = "drover", version, about)]
struct Cli {
    /// Log lines on stderr: `text`, or `json` (one object a line). Default: text on a terminal,
    /// JSON otherwise.
    #[arg(long, global = true, env = "DROVER_LOG_FORMAT", value_enum)]
    log_format: Option<drover::telemetry::LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the demo: devstack, S3, a local Git repo of the example media stack, and drover.
    Demo(DemoArgs),
    /// Run drover: watch the repository and keep the cluster equal to it.
    Serve(ServeArgs),
    /// Serve the embedded Nomad, Consul and Vault APIs on loopback until Ctrl-C.
    Devstack(DevstackArgs),
    /// Check a desired-state folder and list every error (exit 1 when there are errors).
    Validate(ValidateArgs),
    /// Show what a sync would change (exit 2 when there are changes, like terraform -detailed-exitcode).
    Plan(PlanArgs),
    /// Ask the running drover to sync an app now (or show its pending diff with --dry-run).
    Sync(SyncArgs),
    /// Show every app's sync status and health from the running drover.
    Status(ServerArgs),
    /// Show an app's sync history.
    History(AppArgs),
    /// Apply an older revision's desired state for an app and pin it there.
    Rollback(RollbackArgs),
    /// Remove an app's rollback pin: it follows the branch again.
    Unpin(AppArgs),
    /// Print what apps render to (pack renders included), or render one pack like `nomad-pack render`.
    Render(RenderArgs),
    /// List the packs drover ships and the repository's charts/, with their variables.
    Charts(ChartsArgs),
    /// Write a consistent copy of drover's store (SQLite) to a new file; safe while serve runs.
    Backup(BackupArgs),
    /// Put a backup in place as drover's store (the old one kept aside); refused while a drover
    /// runs on the data directory unless --force.
    Restore(RestoreArgs),
    /// Write a desired-state repository from what you have today: a Terraform configuration
    /// or a running cluster.
    #[command(subcommand)]
    Import(ImportCommand),
}

/// Where the store is: --data-dir, else drover.yaml's `data_dir`.
#[derive(Debug, clap::Args)]
struct DataDirArgs {
    /// The data directory (default: drover.yaml's data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// drover.yaml, read for data_dir when --data-dir is not given.
    #[arg(short, long, default_value = "drover.yaml")]
    config: PathBuf,
}

impl DataDirArgs {
    fn resolve(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        let text = std::fs::read_to_string(&self.config)
            .with_context(|| format!("reading {} (or pass --data-dir)", self.config.display()))?;
        let file = drover::config::FileSettings::parse(&text, &self.config.display().to_string())?;
        Ok(file
            .data_dir
            .unwrap_or_else(|| PathBuf::from(drover::config::DEFAULT_DATA_DIR)))
    }
}

#[derive(Debug, clap::Args)]
struct BackupArgs {
    /// The backup file to write (must not exist).
    file: PathBuf,
    #[command(flatten)]
    store: DataDirArgs,
}

#[derive(Debug, clap::Args)]
struct RestoreArgs {
    /// The backup file to restore.
    file: PathBuf,
    #[command(flatten)]
    store: DataDirArgs,
    /// Restore even though a drover holds the data directory.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
struct RenderArgs {
    /// The desired-state folder (omit with --pack).
    #[arg(required_unless_present = "pack", conflicts_with = "pack")]
    dir: Option<PathBuf>,
    /// Only this app.
    #[arg(long)]
    app: Option<String>,
    /// Render this pack folder instead, as `nomad-pack render` does.
    #[arg(long)]
    pack: Option<PathBuf>,
    /// A pack variable, NAME=VALUE (a dependency's as ALIAS.NAME=VALUE); repeatable.
    #[arg(long = "var", requires = "pack")]
    vars: Vec<String>,
    /// A pack variable file (HCL, JSON or YAML); repeatable, later files win.
    #[arg(long = "var-file", requires = "pack")]
    var_files: Vec<PathBuf>,
    /// Write the rendered files under this folder (OUT/<pack>/<template without .tpl>).
    #[arg(long, requires = "pack")]
    to_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ChartsArgs {
    /// A desired-state folder whose charts/ to list too.
    dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Adopt the jobs, CSI volumes and Consul config entries running in the cluster
    /// (NOMAD_ADDR, CONSUL_HTTP_ADDR) into apps/ of a repository, so the first sync changes nothing.
    Nomad {
        /// The repository folder to write apps/<app>/ into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Do not write the owner meta (`drover.app`) onto adopted jobs and config entries now;
        /// drover's first sync then writes it.
        #[arg(long)]
        no_stamp: bool,
    },
    /// From a Terraform configuration using the Nomad provider: one app per module.
    Terraform {
        /// The Terraform root module's folder.
        dir: PathBuf,
        /// The repository to write (must not exist, or be empty).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Status page address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Folder for the demo's Git repo, data and S3 objects (default: a new temporary folder).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// A desired-state folder to seed the demo's repository from (default: the example media
    /// stack built into drover).
    #[arg(long)]
    example: Option<PathBuf>,
    /// Devstack time scale (smaller is faster).
    #[arg(long, default_value_t = 0.5)]
    time_scale: f64,
    /// Git poll interval.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    poll_interval: Duration,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// drover.yaml.
    #[arg(short, long, default_value = "drover.yaml")]
    config: PathBuf,
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
    /// Enforce Consul ACLs (X-Consul-Token).
    #[arg(long)]
    consul_acl: bool,
    /// Multiply every simulated delay by this factor.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
}

#[derive(Debug, clap::Args)]
struct ValidateArgs {
    /// The desired-state folder (with apps/*/app.yaml).
    dir: PathBuf,
    /// Also list what each valid app requires of Vault (its `vault_secret`s and the secrets its
    /// job templates read), paths and key names only.
    #[arg(long)]
    verbose: bool,
}

#[derive(Debug, clap::Args)]
struct PlanArgs {
    /// The desired-state folder.
    #[arg(required_unless_present = "git")]
    dir: Option<PathBuf>,
    /// Plan a Git repository (path or URL) instead of a folder.
    #[arg(long, conflicts_with = "dir")]
    git: Option<String>,
    /// Branch or tag of --git.
    #[arg(long = "ref", default_value = "HEAD")]
    reference: String,
    /// Only this app.
    #[arg(long)]
    app: Option<String>,
    /// A drover data dir whose last-applied markers to use (read-only).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Show the values of env, meta and driver config keys that look secret (hidden by default).
    #[arg(long)]
    show_secrets: bool,
}

#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// The running drover's address.
    #[arg(long, env = "DROVER_ADDR", default_value = "http://127.0.0.1:8080")]
    server: String,
}

#[derive(Debug, clap::Args)]
struct SyncArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Only this app (default: all).
    #[arg(long)]
    app: Option<String>,
    /// Show the pending diff instead of syncing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, clap::Args)]
struct AppArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The app.
    app: String,
}

#[derive(Debug, clap::Args)]
struct RollbackArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The app.
    app: String,
    /// A commit (full or short) or tag.
    #[arg(long)]
    to: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    drover::telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error)
            if error
                .downcast_ref::<StdoutError>()
                .is_some_and(|e| e.0.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::from(BROKEN_PIPE_EXIT)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo(args).await,
        Command::Serve(args) => serve(args).await,
        Command::Devstack(args) => devstack(args).await,
        Command::Validate(args) => validate(args).await,
        Command::Plan(args) => plan(args).await,
        Command::Sync(args) => sync(args).await,
        Command::Status(args) => status(args).await,
        Command::History(args) => history(args).await,
        Command::Rollback(args) => rollback(args).await,
        Command::Unpin(args) => unpin(args).await,
        Command::Render(args) => render(args),
        Command::Backup(args) => {
            let version = drover::store::backup::backup(&args.store.resolve()?, &args.file)?;
            println!(
                "wrote {} (store schema version {version})",
                args.file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore(args) => {
            let dir = args.store.resolve()?;
            let aside = drover::store::backup::restore(&args.file, &dir, args.force)?;
            let kept = aside.map(|p| format!("; the old store is {}", p.display()));
            println!(
                "restored {} into {}{}",
                args.file.display(),
                dir.display(),
                kept.unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Charts(args) => {
            print!("{}", drover::chart::cli::list_charts(args.dir.as_deref())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(command) => import(command).await,
    }
}

async fn import(command: ImportCommand) -> anyhow::Result<ExitCode> {
    match command {
        ImportCommand::Nomad { out, no_stamp } => import_nomad(out, !no_stamp).await,
        ImportCommand::Terraform { dir, out } => {
            let imported = drover::import::terraform::import_terraform(&dir, &out)?;
            print!("{}", imported.report(&dir));
            println!(
                "\nwrote {} app(s) to {}; check it with: drover validate {}",
                imported.apps.len(),
                out.display(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn import_nomad(out: PathBuf, stamp: bool) -> anyhow::Result<ExitCode> {
    let nomad = drover::providers::nomad::NomadClient::new(NomadConfig::from_env())?;
    let consul =
        drover::providers::consul::ConsulConfig::from_lookup_when_set(|k| std::env::var(k).ok())
            .map(drover::providers::consul::ConsulClient::new)
            .transpose()?;
    let options = drover::import::nomad::ImportOptions { out, stamp };
    let report = drover::import::nomad::import(&nomad, consul.as_ref(), &options).await?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let temporary = args.work_dir.is_none();
    let work_dir = match args.work_dir {
        Some(dir) => dir,
        None => tempfile::Builder::new()
            .prefix("drover-demo-")
            .tempdir()
            .context("creating a temporary folder")?
            .keep(),
    };
    let started = demo::start(demo::DemoOptions {
        example_dir: args.example,
        work_dir: work_dir.clone(),
        listen: args.listen,
        time_scale: args.time_scale,
        poll_interval: args.poll_interval,
    })
    .await;
    let demo = match started {
        Ok(demo) => demo,
        Err(error) => {
            if temporary {
                let _ = std::fs::remove_dir_all(&work_dir);
            }
            let message = drover::telemetry::error_chain(&error);
            if matches!(
                error,
                demo::DemoError::Start(drover::controller::runtime::StartError::Listen { .. })
            ) {
                bail!("{message}\nhint: --listen 127.0.0.1:0 picks a free port");
            }
            bail!("{message}");
        }
    };
    println!("drover demo is running.\n");
    println!("  Status page:  {}", demo.status_url());
    println!("  Git repo:     {}", demo.repo.display());
    println!(
        "  S3 server:    {} (access key {})",
        demo.s3.url(),
        demo.s3.access_key
    );
    println!("\nPaste these lines into the shell where you run nomad, consul, vault or curl:\n");
    print!("{}", demo.devstack.env_exports());
    // For `drover sync/rollback/unpin` and curl against the demo (changes need the token).
    println!(
        "export {}={}",
        drover::config::API_TOKEN_ENV,
        demo.api_token
    );
    if demo.commit_hook {
        println!(
            "\nEdit a file under {}/apps, then `git commit -am \"...\"` there: its post-commit hook calls drover's Git webhook, so drover applies it at once (otherwise within one poll, {}).",
            demo.repo.display(),
            humantime::format_duration(args.poll_interval)
        );
    } else {
        println!(
            "\nEdit a file under {}/apps, then `git commit -am \"...\"` there: drover applies it within one poll ({}).",
            demo.repo.display(),
            humantime::format_duration(args.poll_interval)
        );
    }
    println!("Ctrl-C stops everything.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    demo.stop().await;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(&args.config)?;
    let shutdown = CancellationToken::new();
    let running = drover::controller::runtime::start(settings, shutdown.clone()).await?;
    println!(
        "drover is serving its status page on http://{}/",
        running.web_addr
    );
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal.context("waiting for Ctrl-C")?,
        // Only a lost leader lock cancels from inside: exit 3 so a supervisor restarts a follower.
        () = shutdown.cancelled() => {
            running.stop().await;
            return Ok(ExitCode::from(3));
        }
    }
    running.stop().await;
    Ok(ExitCode::SUCCESS)
}

async fn devstack(args: DevstackArgs) -> anyhow::Result<ExitCode> {
    let mut config = DevstackConfig {
        nomad_addr: args.nomad_addr,
        consul_addr: args.consul_addr,
        vault_addr: args.vault_addr,
        nomad_acl: args.nomad_acl,
        consul_acl: args.consul_acl,
        time_scale: args.time_scale,
        ..DevstackConfig::default()
    };
    if let Some(token) = args.root_token {
        config.root_token = token;
    }
    if let Some(path) = args.seed {
        config.seed = Some(
            drover_devstack::seed::Seed::from_file(&path)
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

/// What `validate` and `plan` say when a folder or commit holds no app: most likely the wrong
/// folder, or a layout drover does not read (a Terraform repository).
fn no_apps_found(source: &str) -> String {
    format!(
        "no apps found in {source}: drover reads one app per folder, apps/<app>/app.yaml, with \
         the files it references beside it, e.g.\n  apps/web/app.yaml\n  apps/web/web.nomad.hcl"
    )
}

fn render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    use drover::chart::cli;
    if let Some(pack) = &args.pack {
        let rendered = cli::render_pack_dir(pack, &args.vars, &args.var_files)?;
        match &args.to_dir {
            Some(out) => {
                for path in cli::write_rendered(&rendered, out)? {
                    println!("wrote {path}");
                }
            }
            None => print!("{}", cli::print_rendered(&rendered)),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    let (text, errors) = cli::render_repo(&dir, args.app.as_deref())?;
    print!("{text}");
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let source = DesiredSource::Dir(args.dir);
    let loaded = load_desired(&source).await?;
    // No cluster here: the jobspecs are checked with Nomad's parser rules offline.
    let loaded = &drover::desired::check_jobspecs_offline(std::sync::Arc::unwrap_or_clone(
        loaded.desired.loaded,
    ));
    let mut errors = 0;
    for diagnostic in &loaded.repo_errors {
        println!("{diagnostic}");
        errors += 1;
    }
    if loaded.apps.is_empty() {
        eprintln!("{}", no_apps_found(&source.display()));
        return Ok(ExitCode::from(1));
    }
    let mut warnings = 0;
    for app in &loaded.apps {
        match &app.result {
            Ok(a) => {
                println!("ok    {} ({} resources)", a.name, a.resources.len());
                if args.verbose {
                    for requirement in drover::desired::app_secret_requirements(a) {
                        println!("  {}", vault_requirement_line(&requirement));
                    }
                }
            }
            Err(diagnostics) => {
                println!("error {}: {} problem(s)", app.name, diagnostics.len());
                for d in diagnostics {
                    println!("  {d}");
                }
                errors += diagnostics.len();
            }
        }
        // Warnings never fail validation: the app works, without the field named.
        for w in &app.warnings {
            println!("  warning: {w}");
        }
        warnings += app.warnings.len();
    }
    if warnings > 0 {
        println!("\n{warnings} warning(s)");
    }
    if errors > 0 {
        println!("\n{errors} error(s)");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `vault secret nomad/default/web: keys A, B (required by apps/web/app.yaml:4, …)`.
fn vault_requirement_line(requirement: &drover::desired::SecretRequirement) -> String {
    let keys: Vec<&str> = requirement.keys.iter().map(String::as_str).collect();
    let keys = if keys.is_empty() {
        "no key named".to_string()
    } else {
        format!("keys {}", keys.join(", "))
    };
    let by: Vec<String> = requirement
        .required_by
        .iter()
        .map(|o| format!("{}:{}", o.file, o.line))
        .collect();
    format!(
        "vault secret {}: {keys} (required by {})",
        requirement.path,
        by.join(", ")
    )
}

async fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let source = match (args.dir, args.git) {
        (Some(dir), _) => DesiredSource::Dir(dir),
        (None, Some(url)) => DesiredSource::Git {
            url,
            reference: args.reference,
        },
        (None, None) => bail!("give a folder or --git URL"),
    };
    let loaded = load_desired(&source).await?;
    let desired = &loaded.desired;
    if desired.loaded.apps.is_empty() {
        for diagnostic in &desired.loaded.repo_errors {
            println!("{diagnostic}");
        }
        eprintln!("{}", no_apps_found(&source.display()));
        return Ok(ExitCode::from(1));
    }
    if let Some(app) = &args.app
        && desired.app(app).is_none()
    {
        let names: Vec<&str> = desired
            .loaded
            .apps
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        bail!(
            "no app named {app} in this revision (apps: {})",
            names.join(", ")
        );
    }
    // No cluster given: check the jobspecs offline first, as `validate` does, and stop before
    // any Nomad call when Nomad would refuse one. With a cluster, its own parser decides.
    if std::env::var_os("NOMAD_ADDR").is_none_or(|addr| addr.is_empty()) {
        let refused = drover::desired::refused_jobspecs(&desired.loaded, |name| {
            args.app.as_ref().is_none_or(|a| a == name)
        });
        for (app, errors) in &refused {
            println!("app {app}:");
            for e in errors {
                println!("  error: {e}");
            }
        }
        if !refused.is_empty() {
            println!("\n(checked offline: NOMAD_ADDR is not set)");
            return Ok(ExitCode::from(1));
        }
    }
    let store = match &args.data_dir {
        Some(dir) => Store::open(&app_stack::store_file(dir))?,
        None => Store::open_in_memory()?,
    };
    let ctx = app_stack::context(
        NomadConfig::from_env(),
        drover::providers::consul::ConsulConfig::from_lookup_when_set(|k| std::env::var(k).ok()),
        store,
        LiveReading::Once,
        ControllerSettings {
            colour: std::io::stdout().is_terminal(),
            redaction: if args.show_secrets {
                drover::plan::render::Redaction::reveal_all()
            } else {
                drover::plan::render::Redaction::default()
            },
            ..ControllerSettings::default()
        },
    )
    .await?;
    let ctx = ctx.with_vault(app_stack::vault_client(
        drover::providers::vault::VaultConfig::from_env(),
    )?);
    let s3 = drover::providers::s3::S3Config::from_lookup_when_set(|k| std::env::var(k).ok());
    let ctx = ctx.with_s3(app_stack::s3_client(s3).await);
    let mut changes = false;
    let mut failed = !desired.loaded.repo_errors.is_empty();
    for d in &desired.loaded.repo_errors {
        println!("{d}");
    }
    for planned in app_stack::dry_run(&ctx, desired, args.app.as_deref()).await {
        println!("app {}:", planned.loaded.name);
        for w in &planned.loaded.warnings {
            println!("  warning: {w}");
        }
        // Information only: a sync waits for these, a plan does not.
        for (dep, health) in &planned.dependencies {
            match health {
                Some(Health::Healthy) => println!("  depends on {dep} (Healthy)"),
                Some(health) => {
                    println!("  depends on {dep} (not healthy: {health:?}; a sync waits for it)")
                }
                None => println!("  depends on {dep} (not planned: invalid or missing)"),
            }
        }
        for e in &planned.outcome.status.errors {
            println!("  error: {e}");
            failed = true;
        }
        if let Some(plan) = planned.outcome.plan {
            for step in &plan.steps {
                match &step.change {
                    drover::plan::Change::Create { diff }
                    | drover::plan::Change::Update { diff } => {
                        changes = true;
                        println!("  {} {}:", step.change.verb(), step.id);
                        for line in diff.lines() {
                            println!("    {line}");
                        }
                    }
                    drover::plan::Change::Delete => {
                        changes = true;
                        println!("  delete {} (if prune is on)", step.id);
                    }
                    _ if step.id.kind == drover::desired::ResourceKind::VaultSecret => {
                        // A requirement is checked, never written: show what the check found,
                        // in the status's words (never a value).
                        let id = step.id.to_string();
                        match planned.outcome.status.resources.iter().find(|r| r.id == id) {
                            Some(r) => println!(
                                "  {} {id}: {:?}, {}",
                                r.change.as_str(),
                                r.health,
                                r.message
                            ),
                            None => println!("  {} {id}", step.change.verb()),
                        }
                    }
                    other => println!("  {} {}", other.verb(), step.id),
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else if changes {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn http() -> anyhow::Result<reqwest::Client> {
    drover::providers::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building HTTP client")
}

/// Call the running drover's API and decode its answer into the type the server serializes.
async fn api<T: serde::de::DeserializeOwned>(
    method: reqwest::Method,
    server: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<T> {
    let url = format!("{}{}", server.trim_end_matches('/'), path);
    let mutating = method != reqwest::Method::GET;
    let mut request = http()?.request(method, &url);
    // Changes (and reads on a private server) need the API token; reqwest marks it sensitive.
    if let Some(token) = std::env::var(drover::config::API_TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        request = request.bearer_auth(token.trim());
    }
    // The API refuses changes without a JSON body (a cross-site form cannot send one).
    if let Some(body) = body.or_else(|| mutating.then(|| serde_json::json!({}))) {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach drover at {server} (is `drover serve` running?)"))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("{url}: reading the answer"))?;
    if !status.is_success() {
        let reason = serde_json::from_slice::<ApiError>(&bytes)
            .map(|e| e.error)
            .unwrap_or_default();
        bail!("{url}: {status}: {reason}");
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{url}: unexpected answer"))
}

/// A status enum as the API and the page spell it (`OutOfSync`).
fn word(value: impl std::fmt::Debug) -> String {
    format!("{value:?}")
}

async fn sync(args: SyncArgs) -> anyhow::Result<ExitCode> {
    let apps: Vec<AppStatus> = api(
        reqwest::Method::GET,
        &args.server.server,
        "/api/v1/apps",
        None,
    )
    .await?;
    let selected: Vec<&AppStatus> = apps
        .iter()
        .filter(|s| args.app.as_ref().is_none_or(|a| *a == s.name))
        .collect();
    if let Some(app) = &args.app
        && selected.is_empty()
    {
        bail!("no app named {app}");
    }
    if args.dry_run {
        let mut changes = false;
        for status in &selected {
            println!("app {}: {}", status.name, word(status.sync));
            for r in &status.resources {
                if let Some(diff) = &r.diff {
                    changes = true;
                    println!("  {} {}:", r.change.as_str(), r.id);
                    for line in diff.lines() {
                        println!("    {line}");
                    }
                }
            }
        }
        return Ok(if changes {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        });
    }
    for status in &selected {
        let _: SyncRequested = api(
            reqwest::Method::POST,
            &args.server.server,
            &format!("/api/v1/apps/{}/sync", status.name),
            None,
        )
        .await?;
        println!("sync requested: {}", status.name);
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let apps: Vec<AppStatus> =
        api(reqwest::Method::GET, &args.server, "/api/v1/apps", None).await?;
    // What the page's banner shows: the Git fetch error and the repository's problems.
    let source: SourceView =
        api(reqwest::Method::GET, &args.server, "/api/v1/source", None).await?;
    let repo: RepoView = api(reqwest::Method::GET, &args.server, "/api/v1/status", None).await?;
    for line in status_lines(&apps, &source, &repo, std::time::SystemTime::now()) {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `drover status`: what the page shows, as text (the banner, then one block per app).
fn status_lines(
    apps: &[AppStatus],
    source: &SourceView,
    repo: &RepoView,
    now: std::time::SystemTime,
) -> Vec<String> {
    use drover::web::page::{Moment, duration_text, is_drift};
    let at = |unix: u64| Moment::new(std::time::UNIX_EPOCH + Duration::from_secs(unix), now);
    let mut out = Vec::new();
    if let Some(error) = &source.last_error {
        let since = repo
            .git_failing_since
            .map(|t| {
                let m = at(t);
                format!(" (failing since {}, {})", m.absolute, m.relative)
            })
            .unwrap_or_default();
        out.push(format!("! Git fetch failing{since}: {error}"));
    }
    for problem in &repo.problems {
        out.push(format!("! {problem}"));
    }
    let leadership = drover::ha::Leadership {
        role: repo.role,
        this_replica: None,
        leader: repo.leader.clone(),
    };
    if let Some(role) = drover::web::page::role_line(&leadership) {
        out.push(format!("! {role}"));
    }
    out.push(format!(
        "{:<24} {:<12} {:<12} {:<14} PHASE",
        "APP", "SYNC", "HEALTH", "REVISION"
    ));
    for s in apps {
        let pinned = s
            .pinned
            .as_ref()
            .map(|p| format!(" (pinned {})", p.get(..12).unwrap_or(p)))
            .unwrap_or_default();
        out.push(format!(
            "{:<24} {:<12} {:<12} {:<14} {}{pinned}",
            s.name,
            word(s.sync),
            word(s.health),
            s.revision.get(..12).unwrap_or(&s.revision),
            s.phase
        ));
        match &s.last_sync {
            Some(last) => {
                let when = Moment::new(last.at, now);
                let took = last
                    .duration_ms
                    .map(|ms| format!(" in {}", duration_text(ms)))
                    .unwrap_or_default();
                out.push(format!(
                    "    last sync: {} {} ({}){took} at {}",
                    last.result.as_str(),
                    when.absolute,
                    when.relative,
                    last.revision.get(..12).unwrap_or(&last.revision)
                ));
            }
            None => out.push("    last sync: never".to_string()),
        }
        for r in s.resources.iter().filter(|r| is_drift(r)) {
            out.push(format!(
                "    drift: {} {} ({}, changed in the cluster)",
                r.change.as_str(),
                r.id,
                r.reason
            ));
        }
        for p in &s.probes {
            out.push(format!(
                "    probe {} ({}) {}: {} {}",
                p.name,
                serde_json::to_value(p.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                p.target,
                word(p.health),
                p.message
            ));
        }
        for e in &s.errors {
            out.push(format!("    ! {e}"));
        }
        for w in &s.warnings {
            out.push(format!("    warning: {w}"));
        }
    }
    out
}

async fn history(args: AppArgs) -> anyhow::Result<ExitCode> {
    let records: Vec<HistoryEntry> = api(
        reqwest::Method::GET,
        &args.server.server,
        &format!("/api/v1/apps/{}/history", args.app),
        None,
    )
    .await?;
    println!(
        "{:<6} {:<14} {:<12} {:<8} CHANGES",
        "ID", "REVISION", "RESULT", "TRIGGER"
    );
    for r in &records {
        println!(
            "{:<6} {:<14} {:<12} {:<8} {}",
            r.id,
            r.revision.get(..12).unwrap_or(&r.revision),
            r.result.map_or("running", |result| result.as_str()),
            r.trigger.as_str(),
            r.changes.join(", ")
        );
        if let Some(message) = &r.message {
            println!("       {message}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn rollback(args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let answer: Pinned = api(
        reqwest::Method::POST,
        &args.server.server,
        &format!("/api/v1/apps/{}/rollback", args.app),
        Some(serde_json::json!({ "revision": args.to })),
    )
    .await?;
    println!(
        "{} pinned to {}; `drover unpin {}` follows the branch again",
        args.app, answer.pinned, args.app
    );
    Ok(ExitCode::SUCCESS)
}

async fn unpin(args: AppArgs) -> anyhow::Result<ExitCode> {
    let _: Unpinned = api(
        reqwest::Method::POST,
        &args.server.server,
        &format!("/api/v1/apps/{}/unpin", args.app),
        None,
    )
    .await?;
    println!("{} follows the branch again", args.app);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover::controller::{
        ChangeKind, Phase, ProbeKind, ProbeStatus, ResourceStatus, SyncOutcome, SyncResult,
    };
    use std::time::UNIX_EPOCH;

    #[test]
    fn status_prints_the_banner_last_sync_drift_and_probes() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut app = AppStatus::unknown("web", "0123456789abcdef", Phase::Synced);
        app.last_sync = Some(SyncOutcome {
            result: SyncResult::Failed,
            revision: "0123456789abcdef".into(),
            changes: Vec::new(),
            problems: Vec::new(),
            at: now - Duration::from_secs(180),
            duration_ms: Some(1500),
        });
        app.resources.push(ResourceStatus {
            id: "nomad_job/default/web".into(),
            change: ChangeKind::Update,
            reason: "live_changed".into(),
            health: Health::Healthy,
            message: String::new(),
            diff: None,
            wave: Some(0),
        });
        app.probes.push(ProbeStatus {
            name: "home".into(),
            kind: ProbeKind::Http,
            target: "http://web/".into(),
            health: Health::Degraded,
            message: "503 in 12 ms".into(),
            latency_ms: Some(12),
            days_left: None,
            age_seconds: None,
            checked_at: Some(now),
        });
        let source = SourceView {
            url: "file:///repo".into(),
            revision: None,
            message: None,
            last_error: Some("no repository at this path".into()),
            last_fetch: None,
            consecutive_failures: 3,
        };
        let repo = RepoView {
            revision: None,
            problems: vec!["prune refused: 3 of 4 apps left Git".into()],
            git_error: source.last_error.clone(),
            git_failing_since: Some(1_800_000_000 - 600),
            changes_enabled: true,
            role: drover::ha::Role::Follower,
            leader: Some("10.0.0.7:8080".into()),
        };
        let text = status_lines(&[app], &source, &repo, now).join("\n");
        for expected in [
            "! Git fetch failing (failing since 2027-01-15T07:50:00Z, 10m ago): no repository at this path",
            "! prune refused: 3 of 4 apps left Git",
            "! follower (read-only): the leader is 10.0.0.7:8080; changes are made there",
            "    last sync: failed 2027-01-15T07:57:00Z (3m ago) in 1.5 s at 0123456789ab",
            "    drift: update nomad_job/default/web (live_changed, changed in the cluster)",
            "    probe home (http) http://web/: Degraded 503 in 12 ms",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }
}
