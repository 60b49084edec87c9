//! The command line: parses arguments, sets up logging, runs one command and turns its result
//! into an exit code. Each command lives in its own file as `Opts` + `run`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod doctor;
mod init;
mod metrics_file;
mod progress;
mod purge;
mod reset;
mod restore;
mod status;

#[derive(Debug, Parser)]
#[command(
    name = "mlflow-janitor",
    version,
    about,
    max_term_width = 100,
    after_help = "\
Every command takes the store as `mlflow server --backend-store-uri` does (or from
MLFLOW_BACKEND_STORE_URI): PostgreSQL, MySQL/MariaDB or SQLite; without one, ./mlflow.db, as
MLflow. `mlflow-janitor COMMAND --help` shows examples.

Examples:
  mlflow-janitor status --backend-store-uri postgresql://mlflow@db/mlflow
  mlflow-janitor purge  --backend-store-uri mysql+pymysql://mlflow@db/mlflow --older-than 30d --yes
  mlflow-janitor purge  --backend-store-uri sqlite:///mlflow.db --dry-run
  mlflow-janitor doctor --backend-store-uri postgresql://mlflow@db/mlflow --fix --yes
  mlflow-janitor reset  --backend-store-uri postgresql://postgres@127.0.0.1/mlflow_test --yes"
)]
pub struct Cli {
    /// Only warnings and errors on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,

    /// Logs on stderr as text, or as one JSON object per line for log collectors.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Purge(Box<purge::Opts>),
    Init(init::Opts),
    Reset(reset::Opts),
    Status(status::Opts),
    Doctor(doctor::Opts),
    Restore(restore::Opts),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

/// `--version` also names the MLflow schemas the delete plan knows.
fn long_version() -> String {
    let schemas: Vec<String> = mlflow_janitor::store::revision::KNOWN_SCHEMAS
        .iter()
        .map(|s| format!("MLflow {} (alembic {})", s.mlflow, s.revision))
        .collect();
    format!("{}\nknows the schemas of: {}", env!("CARGO_PKG_VERSION"), schemas.join(", "))
}

pub fn command() -> clap::Command {
    Cli::command().long_version(long_version())
}

pub fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    // At a terminal, progress bars and summaries speak; logs are for machines and RUST_LOG.
    let default_level = if cli.quiet || std::io::stderr().is_terminal() { "warn" } else { "info" };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    JSON_LOGS.set(cli.log_format == LogFormat::Json).expect("set once");
    match cli.log_format {
        LogFormat::Text => {
            logs.with_ansi(std::io::stderr().is_terminal()).with_target(false).init()
        }
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(false).init(),
    }
    let result = match cli.command {
        Command::Purge(opts) => purge::run(*opts, cli.quiet),
        Command::Init(opts) => init::run(opts),
        Command::Reset(opts) => reset::run(opts),
        Command::Status(opts) => status::run(opts),
        Command::Doctor(opts) => doctor::run(opts, cli.quiet),
        Command::Restore(opts) => restore::run(opts),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command(), "mlflow-janitor", &mut script);
            write_stdout(&String::from_utf8_lossy(&script));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, whatever the driver put in its message (libpq adds hint lines).
            let message = err.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
            if json_logs() {
                tracing::error!(exit_code = err.exit_status(), "{message}");
            } else {
                eprintln!("error: {message}");
            }
            err.exit_code()
        }
    }
}

static JSON_LOGS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn json_logs() -> bool {
    JSON_LOGS.get().copied().unwrap_or(false)
}

/// A report as JSON, for machines, on stdout.
fn write_json(report: &impl serde::Serialize) {
    let json = serde_json::to_string_pretty(report).expect("a report serializes");
    write_stdout(&(json + "\n"));
}

/// Writes a command's result (its report, listing or script) to stdout. A reader that has gone
/// (`purge --dry-run | head -3`) took what it wanted: no panic, no error. Another failure to write
/// is a warning: the command's work and exit code stand, as with a late metrics file.
fn write_stdout(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            tracing::warn!(error = %e, "cannot write the result to stdout")
        }
        _ => {}
    }
}

/// A one-line summary for the person or the log collector reading stderr: plain text, or with
/// `--log-format json` one more JSON log line.
fn summary(line: &str) {
    if json_logs() {
        tracing::info!("{line}");
    } else {
        eprintln!("{line}");
    }
}

/// The store argument of the commands: MLflow's own, with MLflow's default.
#[derive(Debug, clap::Args)]
struct StoreArg {
    /// The store, as given to `mlflow server --backend-store-uri` [default: sqlite:///mlflow.db,
    /// as MLflow's]
    #[arg(long, env = "MLFLOW_BACKEND_STORE_URI", hide_env_values = true, value_name = "URI")]
    backend_store_uri: Option<String>,

    /// Give up connecting after this long; 0s waits for ever [default: the URI's
    /// connect_timeout=, else 10s]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    connect_timeout: Option<std::time::Duration>,
}

impl StoreArg {
    fn uri(&self) -> mlflow_janitor::Result<mlflow_janitor::StoreUri> {
        let uri = self.backend_store_uri.as_deref().map_or_else(
            || Ok(mlflow_janitor::StoreUri::default_store()),
            mlflow_janitor::StoreUri::parse,
        )?;
        Ok(match self.connect_timeout {
            Some(timeout) => uri.with_connect_timeout(timeout),
            None => uri,
        })
    }
}

/// Bytes for people: KiB, MiB or GiB, one decimal.
fn size(bytes: u64) -> String {
    let bytes = bytes as f64;
    match bytes {
        _ if bytes >= (1u64 << 30) as f64 => format!("{:.1} GiB", bytes / (1u64 << 30) as f64),
        _ if bytes >= (1u64 << 20) as f64 => format!("{:.1} MiB", bytes / (1u64 << 20) as f64),
        _ if bytes >= 1024.0 => format!("{:.1} KiB", bytes / 1024.0),
        _ => format!("{bytes} B"),
    }
}

/// A duration flag, in MLflow's format.
fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 30d, 12h, 1d2h30m)"))
}

/// Asks a yes/no question on the terminal; without a terminal, refuses to go on with `action`.
fn confirm(action: &'static str, question: &str) -> mlflow_janitor::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(mlflow_janitor::Error::ConfirmationRequired { action });
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
