//! `imgforge`: the command line. Loads the config, then runs the gateway or only checks it.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc malloc: the proxy allocates and frees body buffers on every
/// request, and glibc's trimming turned that into page faults and TLB shootdowns (measured with
/// `perf record` on the passthrough benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Edge image gateway on Pingora.
#[derive(Parser, Debug)]
#[command(name = "imgforge", version, about)]
struct Cli {
    /// Config file (TOML).
    #[arg(short = 'c', long = "config", default_value = "conf/imgforge.toml")]
    config: PathBuf,
    /// Validate the config and exit: 0 when valid, 1 with the errors otherwise.
    #[arg(long)]
    check: bool,
    /// Zero-downtime upgrade: take over the listeners of the running process (then send it SIGQUIT).
    #[arg(short = 'u', long)]
    upgrade: bool,
}

fn main() -> ExitCode {
    // Before any thread exists, so it holds however the process is started.
    imgforge_vips::limit_malloc_arenas();
    let cli = Cli::parse();
    let config = match imgforge::config::load(&cli.config) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{}: {} error(s); imgforge did not start",
                cli.config.display(),
                errors.len()
            );
            return ExitCode::from(1);
        }
    };
    if cli.check {
        println!("{}: configuration is valid", cli.config.display());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = imgforge::telemetry::init(&config.log, &config.tracing) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    match imgforge::server::run(
        config,
        imgforge::server::RunOptions {
            upgrade: cli.upgrade,
        },
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "imgforge failed to start");
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
