//! The `servicedesk` binary: parse the command line, start logging, hand off
//! to [`servicedesk::cli`].
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = servicedesk::cli::Cli::parse();
    let default = match cli.command {
        servicedesk::cli::Command::Run { .. } | servicedesk::cli::Command::Web => "info",
        _ => "warn",
    };
    let filter =
        EnvFilter::try_from_env("SERVICEDESK_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match servicedesk::config::log_format_of(&cli.config) {
        servicedesk::config::LogFormat::Json => logger.json().flatten_event(true).init(),
        servicedesk::config::LogFormat::Text => logger.init(),
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("servicedesk: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(servicedesk::cli::main(cli))
}
