//! `flo2`: the command-line entry point.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flo2::config::{Config, LogFormat, SETTINGS};
use flo2::{admin, server, Mode};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// flo2: one OpenAI- and Anthropic-compatible endpoint over your own provider keys, with
/// routing, fallback, racing and exact cost accounting.
///
/// With no configuration, `flo2` (or `flo2 serve`) runs both planes on 127.0.0.1:8080 with an
/// embedded SQLite database and a generated master key under ./data. Every setting is an
/// FLO2_* environment variable or a key in the TOML file given by --config; `flo2 config`
/// lists them all with their defaults.
#[derive(Parser)]
#[command(name = "flo2", version)]
struct Cli {
    /// TOML configuration file (keys are the FLO2_* names in lowercase, without the prefix).
    /// Environment variables override it. Also read from FLO2_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (/v1) and the console (/api/v1, pages) on one port. The default.
    Serve,
    /// Run only the data plane (/v1), e.g. several replicas behind a load balancer sharing
    /// one PostgreSQL.
    Gateway,
    /// Run only the control plane (/api/v1 and the console pages).
    Console,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Master-key tools.
    #[command(subcommand, name = "master-key")]
    MasterKey(MasterKeyCommand),
    /// Print every setting with its default, its effective value (secrets redacted) and meaning.
    Config,
}

#[derive(Subcommand)]
enum MasterKeyCommand {
    /// Print a new random master key (base64) to standard output.
    Generate,
    /// Re-wrap every organization's data key under FLO2_MASTER_KEY. Run it after restarting
    /// every flo2 process with the new key in FLO2_MASTER_KEY and the old one in
    /// FLO2_PREVIOUS_MASTER_KEYS; then drop the old key.
    Rotate,
    /// Check that the configured master key can read this database, without serving.
    Check,
}

fn init_logging(config: &Config) {
    let filter: Targets = config.log.parse().unwrap_or_else(|_| {
        eprintln!(
            "FLO2_LOG {:?} is not a valid filter; using `info`",
            config.log
        );
        Targets::new().with_default(tracing::Level::INFO)
    });
    let registry = tracing_subscriber::registry().with(filter);
    match config.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true),
            )
            .init(),
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer()).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::MasterKey(MasterKeyCommand::Generate)) = cli.command {
        println!("{}", flo2_vault::MasterKey::generate().to_base64());
        return ExitCode::SUCCESS;
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flo2: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Config) = cli.command {
        print_config(&config);
        return ExitCode::SUCCESS;
    }
    init_logging(&config);
    // The main thread runs the accept loop and background work (usage writes, change feed);
    // requests are served on the serving threads `flo2::serving` starts, one per core.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("flo2: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(&config, Mode::Serve).await,
            Command::Gateway => serve(&config, Mode::Gateway).await,
            Command::Console => serve(&config, Mode::Console).await,
            Command::Migrate => {
                let mut migrating = config.clone();
                migrating.migrate_on_start = true;
                let store = server::open_store(&migrating).await?;
                store.close().await;
                println!("migrations applied");
                Ok(())
            }
            Command::MasterKey(MasterKeyCommand::Rotate) => {
                let n = admin::rotate_master_key(&config).await?;
                println!(
                    "re-wrapped {n} organization data key(s) under master key {}",
                    flo2::keyring::load(&config)?.primary().id()
                );
                Ok(())
            }
            Command::MasterKey(MasterKeyCommand::Check) => {
                let store = server::open_store(&config).await?;
                let keyring = flo2::keyring::load(&config)?;
                flo2::keyring::check_against(&store, &keyring).await?;
                store.close().await;
                println!(
                    "master key {} can read this database",
                    keyring.primary().id()
                );
                Ok(())
            }
            Command::MasterKey(MasterKeyCommand::Generate) | Command::Config => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "flo2 failed");
            eprintln!("flo2: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: &Config, mode: Mode) -> Result<(), flo2::StartError> {
    let running = flo2::start(config, mode).await?;
    running.run_until_signal().await;
    Ok(())
}

fn print_config(config: &Config) {
    let effective = format!("{config:#?}");
    println!("Settings (environment variable | default | meaning):\n");
    for s in SETTINGS {
        let default = if s.default.is_empty() {
            "(unset)"
        } else {
            s.default
        };
        println!("  {:<28} {:<32} {}", s.env, default, s.doc);
    }
    println!("\nEffective configuration (secrets shown as *****):\n{effective}");
}
