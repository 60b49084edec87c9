//! One error type for the library, each message saying what to do next, and the exit code each
//! kind of failure maps to (pinned by tests and listed in the README). [`ArtifactError`] is the
//! part about one artifact location, which a purge reports and goes on from; it lives here so
//! that the artifact layer depends on this module and not the other way round.

use std::process::ExitCode;

/// Exit codes of the binary. 0 means done (nothing to do included).
pub mod exit_code {
    /// Bad arguments or bad input: nothing was touched.
    pub const USAGE: u8 = 2;
    /// The store cannot be used: unreachable, not MLflow's, an unknown schema. Nothing was touched.
    pub const STORE: u8 = 3;
    /// Some batches were committed, then the purge failed. A rerun finishes the job.
    pub const PARTIAL: u8 = 4;
    /// The confirmation was declined: nothing was touched.
    pub const NOT_CONFIRMED: u8 = 5;
    /// `doctor` found problems (and `--fix` did not remove them all).
    pub const PROBLEMS_FOUND: u8 = 6;
    /// Another writer (purge, reset, doctor --fix) of the same store is running: nothing was
    /// touched.
    pub const ALREADY_RUNNING: u8 = 7;
    /// `--max-duration` was reached between batches: what was done is whole; rerun to go on.
    pub const NOT_FINISHED: u8 = 8;
    /// The purge finished, except for entities whose artifacts could not be deleted: they keep
    /// their rows, and the report says why.
    pub const ENTITIES_KEPT: u8 = 9;
    /// SIGINT or SIGTERM stopped the purge between batches: what was done is whole; rerun to go
    /// on. (A second signal ends it at once, with the shell's 130 or 143.)
    pub const INTERRUPTED: u8 = 10;
    /// A restore put back everything but entities whose key or name the store holds already
    /// (taken by another), or whose experiment is gone: the report lists each.
    pub const LEFT_OUT: u8 = 11;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "unsupported backend store URI scheme `{scheme}`: use one that `mlflow server` takes: \
         {accepted}"
    )]
    UnsupportedScheme { scheme: String, accepted: String },

    #[error(
        "no SQLite store at {path}{default}: give the store's URI with --backend-store-uri \
         (or MLFLOW_BACKEND_STORE_URI)"
    )]
    NoSqliteFile { path: String, default: &'static str },

    #[error("invalid backend store URI `{uri}`: {reason}")]
    InvalidUri { uri: String, reason: String },

    #[error("cannot connect to {uri}: {reason}")]
    Connect { uri: String, reason: String },

    #[error(
        "{uri} is not an MLflow store: it has no alembic_version table. \
         Check the database name in the URI"
    )]
    NotMlflow { uri: String },

    #[error(
        "{uri} has MLflow schema revision `{revision}`, which mlflow-janitor does not know \
         (it knows: {known}). Use an mlflow-janitor release that knows your MLflow version; \
         `status` and `doctor` read the store as it is, and `purge --allow-unknown-schema` goes \
         on if every table that references what a purge deletes is one the delete plan knows"
    )]
    UnknownSchema { uri: String, revision: String, known: String },

    #[error(
        "`{command}` reads the schemas of MLflow {oldest} and later, and {uri} has MLflow \
         {found}'s: upgrade the store with `mlflow db upgrade` first (purge and reset work on \
         it as it is)"
    )]
    SchemaTooOld { command: &'static str, uri: String, found: &'static str, oldest: &'static str },

    #[error(
        "table `{table}` references `{parent}` through foreign key `{constraint}` (ON DELETE \
         {on_delete}), and the delete plan does not know it: this store is newer than \
         mlflow-janitor. Nothing was deleted; use a release that knows this table"
    )]
    UnknownReference { table: String, parent: String, constraint: String, on_delete: String },

    #[error("{0}")]
    InvalidScope(String),

    /// A setting that cannot be used: a policy file, a path to write.
    #[error("{0}")]
    InvalidSettings(String),

    #[error(
        "{uri} already has {tables} tables: init makes a new store; to empty an MLflow store \
         use `mlflow-janitor reset`"
    )]
    NotEmpty { uri: String, tables: i64 },

    #[error(
        "refusing to reset {uri}: the server it reached is not on this machine (the connection \
         went over {address}; the URI's host, hostaddr=, PGHOST, PGHOSTADDR and MYSQL_HOST all \
         count). Pass --allow-remote if it is a test store"
    )]
    RemoteStore { uri: String, address: String },

    #[error(
        "{uri} is read-only ({why}): point mlflow-janitor at a store it may write, with a user \
         that may delete (a dry run reads only, and runs here)"
    )]
    ReadOnly { uri: String, why: String },

    #[error("the embedded schema snapshot could not be loaded: {0}")]
    Snapshot(String),

    #[error(
        "refusing to {action} without confirmation: pass --yes, or run on a terminal to be asked"
    )]
    ConfirmationRequired { action: &'static str },

    #[error("not confirmed: nothing was deleted")]
    Declined,

    #[error(
        "another purge (or reset, or doctor --fix) of {uri} is running: it holds the store's \
         lock. Nothing was touched"
    )]
    AlreadyRunning { uri: String },

    #[error(
        "--max-duration reached after {batches} batches: what was purged is whole; the next run \
         goes on"
    )]
    NotFinished { batches: u64 },

    #[error(
        "stopped by {signal} after {batches} batches: what was purged is whole; rerun to go on"
    )]
    Interrupted { signal: &'static str, batches: u64 },

    #[error(
        "{kept} {} kept because the artifacts could not be deleted (the report lists each, and \
         why; the first: {first}); everything else {}. Fix what the errors name, then rerun",
        match (*.kept == 1, *.dry_run) {
            (true, false) => "entity was",
            (true, true) => "entity would be",
            (false, false) => "entities were",
            (false, true) => "entities would be",
        },
        if *.dry_run { "would be purged" } else { "was purged" }
    )]
    EntitiesKept { kept: usize, first: String, dry_run: bool },

    #[error("{problems} problem(s) found{hint}")]
    ProblemsFound { problems: usize, hint: &'static str },

    #[error(
        "{changed} of a batch of {batch} {entity}s changed while being purged (restored by \
         another client?); the batch was rolled back. Rerun to finish"
    )]
    ConcurrentChange { entity: &'static str, batch: usize, changed: usize },

    #[error(transparent)]
    Artifacts(#[from] ArtifactError),

    #[error(transparent)]
    Archive(#[from] ArchiveError),

    #[error(
        "{rows} rows of `{table}` were archived but {deleted} deleted (changed meanwhile?); the \
         batch was rolled back. Rerun to finish"
    )]
    ArchivedNotDeleted { table: &'static str, rows: u64, deleted: u64 },

    #[error(
        "restore stopped after {batches} committed batches: {source}. Each batch came back \
         whole; rerun it to finish (what came back counts as already there)"
    )]
    RestoreStopped { batches: u64, source: Box<Error> },

    #[error(
        "{left_out} {} left out, the rest restored (the report lists each, and why; the first: \
         {first})",
        if *.left_out == 1 { "entity was" } else { "entities were" }
    )]
    LeftOut { left_out: usize, first: String },

    #[error(
        "not enough free disk to VACUUM the SQLite file: {path} has {available} bytes free and \
         the VACUUM needs {needed}. Nothing was touched; free some space, or set SQLITE_TMPDIR \
         to a folder on a disk with room, or purge without --reclaim"
    )]
    NoRoomToVacuum { path: String, needed: u64, available: u64 },

    #[error(
        "the purge is done, but reclaiming its space stopped: {reason}. Rerun `purge --reclaim` \
         to go on: with nothing to purge, it reclaims"
    )]
    ReclaimStopped { reason: String },

    #[error(
        "--max-duration reached while reclaiming, after {done} of {of}: the purge is done; the \
         next `purge --reclaim` reclaims again"
    )]
    ReclaimNotFinished { done: usize, of: usize },

    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),

    #[error(
        "purge stopped after {batches} committed batches ({entities} entities purged): \
         {source}. Nothing is half-deleted; rerun to finish"
    )]
    PartlyDone { batches: u64, entities: u64, source: Box<Error> },
}

impl Error {
    /// The database rolled the transaction back to break a deadlock (or a serialization
    /// conflict): nothing of it stayed, and running it again is safe. MySQL's is error 1213;
    /// diesel gives no SQLSTATE for PostgreSQL's (40P01), so its message tells.
    pub fn is_deadlock(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error as Diesel};
        match self {
            Error::Database(Diesel::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => {
                true
            }
            Error::Database(Diesel::DatabaseError(_, info)) => {
                info.message().starts_with("deadlock detected")
            }
            _ => false,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_status())
    }

    /// The exit code as a number, for logs.
    pub fn exit_status(&self) -> u8 {
        match self {
            Error::UnsupportedScheme { .. }
            | Error::InvalidUri { .. }
            | Error::InvalidScope(_)
            | Error::InvalidSettings(_)
            | Error::NotEmpty { .. }
            | Error::RemoteStore { .. }
            | Error::ConfirmationRequired { .. } => exit_code::USAGE,
            Error::Connect { .. }
            | Error::NoSqliteFile { .. }
            | Error::NotMlflow { .. }
            | Error::UnknownSchema { .. }
            | Error::SchemaTooOld { .. }
            | Error::UnknownReference { .. }
            | Error::Database(_)
            | Error::Snapshot(_)
            | Error::ReadOnly { .. }
            | Error::NoRoomToVacuum { .. } => exit_code::STORE,
            Error::ReclaimStopped { .. } => exit_code::PARTIAL,
            Error::ReclaimNotFinished { .. } => exit_code::NOT_FINISHED,
            Error::Artifacts(ArtifactError::InvalidDestination { .. }) => exit_code::USAGE,
            Error::Artifacts(_) => exit_code::STORE,
            Error::Archive(
                ArchiveError::Io { .. }
                | ArchiveError::Remote { .. }
                | ArchiveError::UnknownColumn { .. },
            ) => exit_code::STORE,
            Error::Archive(_) => exit_code::USAGE,
            Error::ArchivedNotDeleted { .. } | Error::RestoreStopped { .. } => exit_code::PARTIAL,
            Error::LeftOut { .. } => exit_code::LEFT_OUT,
            Error::Declined => exit_code::NOT_CONFIRMED,
            Error::ProblemsFound { .. } => exit_code::PROBLEMS_FOUND,
            Error::AlreadyRunning { .. } => exit_code::ALREADY_RUNNING,
            Error::NotFinished { .. } => exit_code::NOT_FINISHED,
            Error::Interrupted { .. } => exit_code::INTERRUPTED,
            Error::EntitiesKept { .. } => exit_code::ENTITIES_KEPT,
            Error::ConcurrentChange { .. } | Error::PartlyDone { .. } => exit_code::PARTIAL,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an archive could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive file {path}: {source}")]
    Io { path: String, source: std::io::Error },

    #[error(
        "table `{table}` has a column `{column}` that mlflow-janitor does not know (a newer \
         MLflow?): it could not be archived. Nothing was deleted; use a release that knows it, or \
         purge without --archive"
    )]
    UnknownColumn { table: String, column: String },

    #[error("invalid archive location `{given}`: {why}")]
    InvalidPlace { given: String, why: String },

    #[error("archive file {url}: {reason}")]
    Remote { url: String, reason: String },

    #[error("{path} is not an archive: it holds no manifest.jsonl, and no directory that does")]
    NotAnArchive { path: String },

    #[error("archive {path} is damaged: {why}. Nothing was restored")]
    Damaged { path: String, why: String },

    #[error(
        "archive {path} is of MLflow schema revision `{archived}` and the store of `{store}`, \
         which {why}. Nothing was restored; restore into a store of the archive's revision \
         (`mlflow-janitor init` makes one)"
    )]
    Incompatible { path: String, archived: String, store: String, why: String },

    #[error(
        "archive {path} holds {value} in `{table}.{column}`, which MySQL cannot store. Nothing \
         was restored; restore this archive into PostgreSQL or SQLite"
    )]
    NotStorable { path: String, table: String, column: String, value: &'static str },
}

impl ArchiveError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ArchiveError::Io { path: path.display().to_string(), source }
    }
}

/// Why an entity's artifacts could not be resolved, sized or deleted. Each is about one location:
/// the caller reports it, keeps that entity's rows and goes on with the others.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(
        "`{uri}` is stored by the tracking server's artifact proxy: pass --artifacts-destination \
         with the root that `mlflow server --artifacts-destination` uses (a path or an s3:// URI)"
    )]
    NoDestination { uri: String },

    #[error(
        "`{uri}`: artifact store `{scheme}` is not supported (local paths, file://, s3://, gs:// \
         and mlflow-artifacts: are): delete its artifacts with that store's own tools"
    )]
    Unsupported { uri: String, scheme: String },

    #[error(
        "refusing to delete the artifacts at `{uri}`: {why}. Delete them by hand if they must go"
    )]
    Refused { uri: String, why: &'static str },

    #[error(
        "refusing to delete the artifacts at `{uri}`: they lie outside their experiment's \
         artifact location `{experiment}`, where MLflow puts them. Delete them by hand if they \
         must go"
    )]
    OutsideExperiment { uri: String, experiment: String },

    #[error("invalid --artifacts-destination `{destination}`: {why}")]
    InvalidDestination { destination: String, why: &'static str },

    #[error(
        "refusing to delete {location}: {count} live location(s) lie inside it ({}{}). Delete \
         those entities first, or move their artifacts out",
        .first.join(", "),
        if *.count > .first.len() { ", ..." } else { "" }
    )]
    LiveInside { location: String, count: usize, first: Vec<String> },

    #[error(
        "refusing to delete {location}: the store also names `{first}`, which could lie \
         anywhere and cannot be resolved, so no deletion can be checked against it. Pass \
         --artifacts-destination (the root of `mlflow server --artifacts-destination`) for \
         mlflow-artifacts: locations"
    )]
    Unchecked { location: String, first: String },

    #[error(
        "cannot reach {location}: {reason}. Check the store's settings (AWS_* variables and \
         MLFLOW_S3_ENDPOINT_URL for S3, GOOGLE_APPLICATION_CREDENTIALS for GCS)"
    )]
    Client { location: String, reason: String },

    #[error("cannot start the runtime for artifact deletion: {0}")]
    Runtime(#[source] std::io::Error),

    #[error("cannot measure the artifacts at {location}: {reason}; {hint}")]
    Size { location: String, reason: String, hint: &'static str },

    #[error(
        "deleting the artifacts at {location} failed after {deleted} object(s): {reason}. The \
         rest is still there: {hint}, then rerun to finish"
    )]
    Delete { location: String, deleted: u64, reason: String, hint: &'static str },
}
