//! `imgforge`: the command line. Loads the config (a file, or the environment alone), then runs
//! the gateway, only checks or prints the config, or asks a running instance whether it is ready.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use imgforge::config::{ConfigError, Loaded, Source};

/// mimalloc instead of glibc malloc: the proxy allocates and frees body buffers on every
/// request, and glibc's trimming turned that into page faults and TLB shootdowns (measured with
/// `perf record` on the passthrough benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The config file read when none is given and it exists.
const DEFAULT_CONFIG: &str = "conf/imgforge.toml";

/// Edge image gateway on Pingora.
///
/// Without -c (or IMGFORGE_CONFIG) and without conf/imgforge.toml, imgforge is configured from
/// the environment alone (IMGFORGE_KEY, IMGFORGE_SALT, … or imgproxy's IMGPROXY_* names) and
/// serves imgproxy URLs at `/`: see docs/configuration.md.
#[derive(Parser, Debug)]
#[command(name = "imgforge", version, about)]
struct Cli {
    /// Config file (TOML) [default: conf/imgforge.toml when it exists, else the environment]
    #[arg(short = 'c', long = "config", env = "IMGFORGE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Validate the config and exit: 0 when valid, 1 with the errors otherwise.
    #[arg(long)]
    check: bool,
    /// Print the effective configuration as TOML (secrets masked) and exit.
    #[arg(long, conflicts_with = "check")]
    print_config: bool,
    /// With --print-config: print keys, salts and tokens too (the output then passes --check).
    #[arg(long, requires = "print_config")]
    show_secrets: bool,
    /// Zero-downtime upgrade: take over the listeners of the running process (then send it SIGQUIT).
    #[arg(short = 'u', long)]
    upgrade: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ask the running instance (found from the same config) whether it is ready: exit 0 when it
    /// is, 1 when it is not or does not answer. For container health checks.
    Health {
        /// How long to wait for the answer.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        timeout: Duration,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    imgforge::config::units::HumanDuration::parse(s).map(|d| d.0)
}

fn main() -> ExitCode {
    // Before any thread exists, so it holds however the process is started.
    imgforge_vips::limit_malloc_arenas();
    let cli = Cli::parse();
    let source = Source::choose(cli.config.clone(), Path::new(DEFAULT_CONFIG));
    let vars = imgforge::config::process_vars();
    if let Some(Command::Health { timeout }) = cli.command {
        return health(&source, &vars, timeout);
    }
    let loaded = match imgforge::config::load_source(&source, &vars) {
        Ok(l) => l,
        Err(errors) => return refused(&source, &errors),
    };
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    if cli.print_config {
        return match loaded.to_toml(cli.show_secrets) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        };
    }
    if cli.check {
        println!("{}: configuration is valid", name(&source));
        return ExitCode::SUCCESS;
    }
    run(loaded, cli.upgrade)
}

fn run(loaded: Loaded, upgrade: bool) -> ExitCode {
    let config = loaded.config;
    if let Err(e) = imgforge::telemetry::init(&config.log, &config.tracing) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    for w in &loaded.warnings {
        tracing::warn!(warning = %w, "environment");
    }
    match imgforge::server::run(config, imgforge::server::RunOptions { upgrade }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "imgforge failed to start");
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// `imgforge health`: exit 0 when the instance answers ready.
fn health(source: &Source, vars: &imgforge::config::Vars, timeout: Duration) -> ExitCode {
    // Names are not looked up: the answer must not depend on DNS.
    let loaded = match imgforge::config::load_source_offline(source, vars) {
        Ok(l) => l,
        Err(errors) => return refused(source, &errors),
    };
    let target = match imgforge::admin::probe::target(&loaded.config.server) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match imgforge::admin::probe::probe(target, timeout) {
        Ok(status) => {
            println!(
                "ready ({status} from {} listener {})",
                target.listener, target.addr
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("not ready: {e}");
            ExitCode::from(1)
        }
    }
}

fn name(source: &Source) -> String {
    match source {
        Source::File(p) => p.display().to_string(),
        Source::Environment => imgforge::config::ENVIRONMENT.to_string(),
    }
}

fn refused(source: &Source, errors: &[ConfigError]) -> ExitCode {
    for e in errors {
        eprintln!("error: {e}");
    }
    if *source == Source::Environment {
        eprintln!(
            "note: no config file ({DEFAULT_CONFIG} does not exist and neither -c nor IMGFORGE_CONFIG \
             names one), so imgforge is configured from the environment (docs/configuration.md)"
        );
    }
    eprintln!(
        "{}: {} error(s); imgforge did not start",
        name(source),
        errors.len()
    );
    ExitCode::from(1)
}
