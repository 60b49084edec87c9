//! Connections: the connection type over the three backends, opening one as the URI says
//! (within the connect timeout, TLS checked), the pool, and the settings every session gets.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, R2D2Connection};
use diesel::sql_types::Text;

use super::uri::{SslMode, Target, DEFAULT_URI};
use super::StoreUri;
use crate::error::{Error, Result};

/// A connection to any backend MLflow's SQL store runs on. Every query of the library goes
/// through this type, so the delete plan is written once for all backends.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Mysql(diesel::MysqlConnection),
    Sqlite(diesel::SqliteConnection),
}

/// The backend type of [`DbConnection`] (the embedded snapshots are migrations for it).
pub type DbBackend = <DbConnection as diesel::Connection>::Backend;
pub type DbPool = Pool<StoreConnector>;

/// The database software behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgresql,
    /// MySQL or MariaDB.
    Mysql,
    Sqlite,
}

impl DbConnection {
    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Postgresql(_) => Backend::Postgresql,
            DbConnection::Mysql(_) => Backend::Mysql,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

impl StoreUri {
    /// Opens a pool of connections, and checks one out so that a bad host, password or
    /// database is reported now, in one line.
    pub fn connect(&self, max_size: u32) -> Result<DbPool> {
        let pool = self.pool(max_size, SessionSettings::default());
        self.establish().map(drop)?;
        Ok(pool)
    }

    /// A pool for a writer's parallel work: each connection bounded as
    /// [`super::limit_session`] bounds a session. Connects on demand.
    pub fn writers_pool(
        &self,
        max_size: u32,
        lock_timeout: Duration,
        statement_timeout: Duration,
    ) -> DbPool {
        self.pool(max_size, SessionSettings { limits: Some((lock_timeout, statement_timeout)) })
    }

    fn pool(&self, max_size: u32, settings: SessionSettings) -> DbPool {
        Pool::builder()
            .max_size(max_size)
            // Connect on demand only: the first connection's error is reported as it is.
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(30))
            .connection_customizer(Box::new(settings))
            .build_unchecked(StoreConnector { uri: self.clone() })
    }

    /// One connection outside any pool, with the session settings of the pool's.
    pub fn establish(&self) -> Result<DbConnection> {
        let mut conn = self.open()?;
        SessionSettings::default().on_acquire(&mut conn)?;
        Ok(conn)
    }

    /// Connects to the backend the scheme names (MultiConnection's own `establish` guesses the
    /// backend and hides why each attempt failed).
    fn open(&self) -> Result<DbConnection> {
        let url = self.connection_url();
        let connected = match &self.target {
            Target::Server(_) if self.backend == Backend::Postgresql => {
                diesel::PgConnection::establish(&url).map(DbConnection::Postgresql)
            }
            // The MySQL client library takes no timeout through diesel: bound it from here.
            Target::Server(driver_url) => {
                let mode = SslMode::of(driver_url);
                let database = self.mysql_database_to_use();
                return within(self.connect_timeout, move || {
                    diesel::MysqlConnection::establish(&url)
                })
                .and_then(|mut conn| {
                    if let Some(mode) = mode.filter(|mode| *mode >= SslMode::Required) {
                        check_encrypted(&mut conn, mode)?;
                    }
                    if let Some(database) = database {
                        let quoted = database.replace('`', "``");
                        conn.batch_execute(&format!("USE `{quoted}`"))
                            .map_err(|e| one_line(&e.to_string()))?;
                    }
                    Ok(conn)
                })
                .map_err(|reason| Error::Connect { uri: self.to_string(), reason })
                .map(DbConnection::Mysql);
            }
            Target::File(path) => {
                if !path.is_file() {
                    return Err(Error::NoSqliteFile {
                        path: path.display().to_string(),
                        default: if self.given == DEFAULT_URI {
                            " (the default store when no URI is given)"
                        } else {
                            ""
                        },
                    });
                }
                // SQLite opens any file, and only a first read tells that it is no database.
                // That read waits out a writer's commit, as the session's statements will.
                let probe = format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; SELECT count(*) FROM sqlite_master"
                );
                diesel::SqliteConnection::establish(&url).and_then(|mut conn| {
                    conn.batch_execute(&probe)
                        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                    Ok(DbConnection::Sqlite(conn))
                })
            }
        };
        connected
            .map_err(|e| Error::Connect { uri: self.to_string(), reason: one_line(&e.to_string()) })
    }

    /// Creates the database (a SQLite store: its file) if it does not exist. Returns whether it
    /// did. A server database is created through the server's maintenance database; when that
    /// cannot be reached the target may still exist, and connecting to it will tell.
    pub fn create_database_if_missing(&self) -> Result<bool> {
        match self.backend {
            Backend::Sqlite => {
                let path = self.sqlite_file().expect("a SQLite store is a file");
                match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(Error::Connect {
                        uri: self.to_string(),
                        reason: format!("cannot create {}: {e}", path.display()),
                    }),
                }
            }
            Backend::Postgresql => {
                let Ok(mut admin) = self.with_database("postgres").establish() else {
                    return Ok(false);
                };
                let found: Count = diesel::sql_query(
                    "SELECT count(*) AS count FROM pg_database WHERE datname = $1",
                )
                .bind::<Text, _>(self.database())
                .get_result(&mut admin)?;
                if found.count > 0 {
                    return Ok(false);
                }
                let quoted = self.database().replace('"', "\"\"");
                diesel::sql_query(format!("CREATE DATABASE \"{quoted}\"")).execute(&mut admin)?;
                Ok(true)
            }
            Backend::Mysql => {
                let Ok(mut admin) = self.with_database("mysql").establish() else {
                    return Ok(false);
                };
                let quoted = self.database().replace('`', "``");
                let created =
                    diesel::sql_query(format!("CREATE DATABASE IF NOT EXISTS `{quoted}`"))
                        .execute(&mut admin)?;
                Ok(created > 0)
            }
        }
    }
}

#[derive(QueryableByName)]
struct SessionStatus {
    #[diesel(sql_type = Text, column_name = "Value")]
    value: String,
}

/// Refuses a session that is not encrypted though the URI requires TLS. The client library
/// decides, and one that ignores `ssl_mode` (as Debian's libmariadb does) must not go unnoticed.
fn check_encrypted(
    conn: &mut diesel::MysqlConnection,
    mode: SslMode,
) -> std::result::Result<(), String> {
    let cipher = diesel::sql_query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .get_result::<SessionStatus>(conn)
        .map_err(|e| one_line(&e.to_string()))?;
    if cipher.value.is_empty() {
        return Err(format!(
            "the session is not encrypted, though the URI asks for TLS (ssl_mode={}): enable \
             TLS on the server",
            mode.name()
        ));
    }
    Ok(())
}

/// Makes the pool's connections with [`StoreUri::establish`]'s backend choice and errors.
#[derive(Clone, Debug)]
pub struct StoreConnector {
    uri: StoreUri,
}

impl ManageConnection for StoreConnector {
    type Connection = DbConnection;
    type Error = Error;

    fn connect(&self) -> Result<DbConnection> {
        self.uri.open()
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<()> {
        conn.ping().map_err(Error::from)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}
/// Server messages span lines (libpq adds hints on a tab-indented line): errors print on one.
pub(super) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs a blocking connect on a thread of its own and gives up after `limit` (zero: never).
/// A connect given up on is left to finish or fail by itself; its connection is then dropped.
fn within<C: Send + 'static>(
    limit: Duration,
    connect: impl FnOnce() -> diesel::ConnectionResult<C> + Send + 'static,
) -> std::result::Result<C, String> {
    if limit.is_zero() {
        return connect().map_err(|e| one_line(&e.to_string()));
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(connect()));
    match receiver.recv_timeout(limit) {
        Ok(connected) => connected.map_err(|e| one_line(&e.to_string())),
        Err(_) => Err(format!(
            "no answer within {} (set --connect-timeout, or connect_timeout= in the URI)",
            humantime::format_duration(limit)
        )),
    }
}

/// How long a SQLite statement waits for another writer (the tracking server) before failing,
/// unless `--lock-timeout` says otherwise.
const SQLITE_BUSY_TIMEOUT_MS: u128 = 5_000;

/// Per-session settings, applied to every connection the pool hands out.
#[derive(Debug, Clone, Copy, Default)]
struct SessionSettings {
    /// A writer's bounds: lock timeout and statement timeout, as [`super::limit_session`] takes;
    /// a writer's deletes also go through indexes ([`super::delete_through_indexes`]).
    limits: Option<(Duration, Duration)>,
}

impl CustomizeConnection<DbConnection, Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<()> {
        let settings = match conn.backend() {
            // Lets a DBA see in pg_stat_activity who holds the locks.
            Backend::Postgresql => "SET application_name = 'mlflow-janitor'".to_owned(),
            // What PostgreSQL does by default: each statement sees what is committed (a batch
            // re-checks that its entities are still deleted) and deletes take no gap locks
            // that would stall the tracking server's inserts next to the purged rows.
            Backend::Mysql => "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED".to_owned(),
            // SQLite enforces foreign keys only when asked, per connection; and waits for a
            // busy database only with a timeout.
            Backend::Sqlite => {
                format!("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};")
            }
        };
        conn.batch_execute(&settings)?;
        match self.limits {
            Some((lock_timeout, statement_timeout)) => {
                super::limit_session(conn, lock_timeout, statement_timeout)?;
                super::delete_through_indexes(conn)
            }
            None => Ok(()),
        }
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}
