//! The command line: parses arguments, sets up logging, runs one command and turns its result
//! into an exit code. Each command lives in its own file as `Opts` + `run`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod init;
mod purge;
mod reset;
mod status;

#[derive(Debug, Parser)]
#[command(name = "mlflow-janitor", version, about, max_term_width = 100)]
pub struct Cli {
    /// Only warnings and errors on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Purge(purge::Opts),
    Init(init::Opts),
    Reset(reset::Opts),
    Status(status::Opts),
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if cli.quiet { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Purge(opts) => purge::run(opts),
        Command::Init(opts) => init::run(opts),
        Command::Reset(opts) => reset::run(opts),
        Command::Status(opts) => status::run(opts),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    }
}

/// Asks a yes/no question on the terminal; without a terminal, refuses.
fn confirm(question: &str) -> mlflow_janitor::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(mlflow_janitor::Error::ConfirmationRequired);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok();
    match answer.trim() {
        "y" | "Y" | "yes" => Ok(()),
        _ => Err(mlflow_janitor::Error::Declined),
    }
}
