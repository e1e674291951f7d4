//! `tributary`: parse flags, load configuration, start the runtime, run.

use clap::Parser;
use tributary::config::{Cli, Command, Config, EXAMPLE_HEADER, SloCommand};

/// mimalloc, with the options `main` starts it with (see `tributary::allocator`).
#[global_allocator]
static ALLOCATOR: tributary::allocator::Allocator = tributary::allocator::Allocator;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Slo(SloCommand::Generate { file })) = &cli.command {
        return slo_generate(file);
    }
    let cfg = match Config::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tributary: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let ingester = cfg.server.role == tributary::config::Role::Ingest;
    if let Err(e) = tributary::allocator::start_with_options(ingester) {
        eprintln!("tributary: starting over with the allocator's options failed ({e}); running with its defaults");
    }
    if cli.print_config {
        #[expect(clippy::print_stdout, reason = "the flag's whole job is printing")]
        {
            print!("{EXAMPLE_HEADER}{}", cfg.to_toml());
        }
        return std::process::ExitCode::SUCCESS;
    }
    tributary::telemetry::init_logging(&cfg.server.log, cfg.server.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tributary: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let flags = tributary::status::flags(&cli, &cfg);
    let outcome = runtime.block_on(tributary::run(cfg, flags));
    // Cancels what still runs (requests past `server.shutdown_timeout`; the head is flushed by
    // now) without waiting on it for long.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "tributary failed");
            eprintln!("tributary: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `tributary slo generate FILE`: the rule file on stdout; a bad spec on stderr, exit code 2.
fn slo_generate(file: &std::path::Path) -> std::process::ExitCode {
    let generated = std::fs::read_to_string(file)
        .map_err(|e| format!("reading {}: {e}", file.display()))
        .and_then(|spec| tributary_query::slo::generate(&spec).map_err(|e| format!("{}: {e}", file.display())));
    match generated {
        Ok(rules) => {
            #[expect(clippy::print_stdout, reason = "the command's whole job is printing")]
            {
                print!("{rules}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tributary: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
