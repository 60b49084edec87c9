//! The connection layer: MLflow's backend store URI, the connection type over the supported
//! backends, and the pool. Backend differences live here, never in the delete plan.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, R2D2Connection};
use diesel::sql_types::Text;
use url::Url;

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

/// The URI schemes MLflow's store takes (SQLAlchemy's, with the driver suffixes MLflow users
/// write), and the backend each names.
const SCHEMES: &[(&str, Backend)] = &[
    ("postgresql", Backend::Postgresql),
    ("postgresql+psycopg2", Backend::Postgresql),
    ("postgresql+psycopg", Backend::Postgresql),
    ("postgresql+pg8000", Backend::Postgresql),
    ("mysql", Backend::Mysql),
    ("mysql+pymysql", Backend::Mysql),
    ("mysql+mysqldb", Backend::Mysql),
    ("mysql+mysqlconnector", Backend::Mysql),
    ("mariadb", Backend::Mysql),
    ("mariadb+pymysql", Backend::Mysql),
    ("mariadb+mysqldb", Backend::Mysql),
    ("mariadb+mariadbconnector", Backend::Mysql),
    ("sqlite", Backend::Sqlite),
    ("sqlite+pysqlite", Backend::Sqlite),
];

/// The store when none is given: MLflow 3's default, `./mlflow.db`.
pub const DEFAULT_URI: &str = "sqlite:///mlflow.db";

/// A backend store URI as `mlflow server --backend-store-uri` takes it, with what the database
/// driver needs to connect.
#[derive(Clone)]
pub struct StoreUri {
    backend: Backend,
    /// What the user gave, to show in messages with the password hidden.
    given: String,
    target: Target,
}

#[derive(Clone)]
enum Target {
    /// A database server, as its driver's URL: SQLAlchemy's `+driver` suffix dropped.
    Server(Url),
    /// A SQLite database file.
    File(PathBuf),
}

impl StoreUri {
    pub fn parse(uri: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidUri { uri: redact(uri), reason: reason.into() };
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(invalid("it has no scheme, such as postgresql:// or sqlite:///"));
        };
        let Some(&(_, backend)) =
            SCHEMES.iter().find(|(known, _)| known.eq_ignore_ascii_case(scheme))
        else {
            let accepted: Vec<String> = SCHEMES.iter().map(|(s, _)| format!("{s}://")).collect();
            return Err(Error::UnsupportedScheme {
                scheme: scheme.to_owned(),
                accepted: accepted.join(", "),
            });
        };
        let target = match backend {
            Backend::Sqlite => {
                // SQLAlchemy's form: `sqlite:///relative.db`, `sqlite:////absolute.db`.
                let path = rest.split_once('?').map_or(rest, |(path, _)| path);
                let Some(path) = path.strip_prefix('/') else {
                    return Err(invalid(
                        "a SQLite URI has three slashes before a relative path \
                         (sqlite:///mlflow.db) and four before an absolute one",
                    ));
                };
                if path.is_empty() {
                    return Err(invalid("it names no database file (sqlite:///mlflow.db)"));
                }
                Target::File(PathBuf::from(path))
            }
            Backend::Postgresql | Backend::Mysql => {
                let mut url = Url::parse(uri).map_err(|e| invalid(&e.to_string()))?;
                let (driver_scheme, example) = match backend {
                    Backend::Postgresql => ("postgresql", "postgresql://HOST/DATABASE"),
                    _ => ("mysql", "mysql://HOST/DATABASE"),
                };
                url.set_scheme(driver_scheme).map_err(|()| invalid("cannot rewrite the scheme"))?;
                if url.path().trim_start_matches('/').is_empty() {
                    return Err(invalid(&format!("it names no database ({example})")));
                }
                Target::Server(url)
            }
        };
        Ok(StoreUri { backend, given: uri.to_owned(), target })
    }

    /// The store MLflow uses when given none: `./mlflow.db`.
    pub fn default_store() -> Self {
        StoreUri::parse(DEFAULT_URI).expect("the default URI is valid")
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URI as given, password included: to hand to another program (MLflow, a child).
    pub fn given(&self) -> &str {
        &self.given
    }

    /// The database name, or a SQLite store's file name.
    pub fn database(&self) -> &str {
        match &self.target {
            Target::Server(url) => url.path().trim_start_matches('/'),
            Target::File(path) => path.file_name().and_then(|n| n.to_str()).unwrap_or_default(),
        }
    }

    /// A SQLite store's file.
    pub fn sqlite_file(&self) -> Option<&Path> {
        match &self.target {
            Target::File(path) => Some(path),
            Target::Server(_) => None,
        }
    }

    /// True for a store on this machine: a file, a server on loopback or a Unix socket.
    pub fn is_local(&self) -> bool {
        let Target::Server(url) = &self.target else { return true };
        let socket_param =
            url.query_pairs().find(|(k, _)| k == "host" || k == "unix_socket").map(|(_, v)| v);
        // URLs of non-special schemes keep IP hosts as text: compare the text.
        let host = match (&socket_param, url.host_str()) {
            (Some(param), _) => param.as_ref(),
            (None, Some(host)) => host,
            (None, None) => return true,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.is_empty()
            || host.starts_with('/')
            || host.to_ascii_lowercase().starts_with("%2f")
            || host == "localhost"
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// What the driver connects with.
    fn connection_url(&self) -> String {
        match &self.target {
            Target::Server(url) => url.to_string(),
            // `mode=rw`: never create a missing file (a typo would make an empty store).
            Target::File(path) => {
                let path = path.to_string_lossy();
                let escaped = path.replace('%', "%25").replace('?', "%3f").replace('#', "%23");
                format!("file:{escaped}?mode=rw")
            }
        }
    }

    /// The same server with another database (a SQLite store: another file in its folder):
    /// used to reach the server's maintenance database, or a sibling test database.
    pub fn with_database(&self, database: &str) -> StoreUri {
        match &self.target {
            Target::Server(url) => {
                let mut url = url.clone();
                url.set_path(&format!("/{database}"));
                let given = match Url::parse(&self.given) {
                    Ok(mut given) => {
                        given.set_path(&format!("/{database}"));
                        given.into()
                    }
                    Err(_) => url.to_string(),
                };
                StoreUri { backend: self.backend, given, target: Target::Server(url) }
            }
            Target::File(path) => {
                let path = path.with_file_name(database);
                let given = format!("sqlite:///{}", path.display());
                StoreUri { backend: self.backend, given, target: Target::File(path) }
            }
        }
    }

    /// Opens a pool of connections, and checks one out so that a bad host, password or
    /// database is reported now, in one line.
    pub fn connect(&self, max_size: u32) -> Result<DbPool> {
        let pool = Pool::builder()
            .max_size(max_size)
            // Connect on demand only: the first connection's error is reported as it is.
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(30))
            .connection_customizer(Box::new(SessionSettings))
            .build_unchecked(StoreConnector { uri: self.clone() });
        self.establish().map(drop)?;
        Ok(pool)
    }

    /// One connection outside any pool, with the session settings of the pool's.
    pub fn establish(&self) -> Result<DbConnection> {
        let mut conn = self.open()?;
        SessionSettings.on_acquire(&mut conn)?;
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
            Target::Server(_) => diesel::MysqlConnection::establish(&url).map(DbConnection::Mysql),
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
                diesel::SqliteConnection::establish(&url).map(DbConnection::Sqlite)
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

/// Makes the pool's connections with [`StoreUri::establish`]'s backend choice and errors.
#[derive(Clone)]
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
impl fmt::Display for StoreUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.given))
    }
}

impl fmt::Debug for StoreUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Server messages span lines (libpq adds hints on a tab-indented line): errors print on one.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Hides the password of a URI that may not even parse, for error messages.
fn redact(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.into()
        }
        Ok(_) => uri.to_owned(),
        Err(_) => match (uri.find("://"), uri.rfind('@')) {
            (Some(start), Some(at)) if at > start => {
                format!("{}***{}", &uri[..start + 3], &uri[at..])
            }
            _ => uri.to_owned(),
        },
    }
}

/// How long a SQLite statement waits for another writer (the tracking server) before failing,
/// unless `--lock-timeout` says otherwise.
const SQLITE_BUSY_TIMEOUT_MS: u128 = 5_000;

/// Per-session settings, applied to every connection the pool hands out.
#[derive(Debug, Clone, Copy)]
struct SessionSettings;

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
        conn.batch_execute(&settings).map_err(Error::from)
    }
}

/// Runs `work` in a transaction that may write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`), so that it waits its turn behind another writer instead of failing when
/// it first writes after reading.
pub fn write_transaction<T, E>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> std::result::Result<T, E>,
) -> std::result::Result<T, E>
where
    E: From<diesel::result::Error>,
{
    let outermost = match conn {
        DbConnection::Sqlite(sqlite) => transaction_depth(sqlite)? == 0,
        _ => false,
    };
    match conn {
        DbConnection::Sqlite(sqlite) if outermost => {
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?
        }
        // Nested: a savepoint.
        _ => DbConnection::begin_transaction(conn)?,
    }
    match work(conn) {
        Ok(value) => {
            DbConnection::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => {
            DbConnection::rollback_transaction(conn)?;
            Err(err)
        }
    }
}

fn transaction_depth(conn: &mut diesel::SqliteConnection) -> QueryResult<u32> {
    let status = AnsiTransactionManager::transaction_manager_status_mut(conn);
    Ok(status.transaction_depth()?.map_or(0, u32::from))
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// Refuses a store whose sessions cannot write, before any work, rather than failing at the
/// first batch.
pub fn check_writable(conn: &mut DbConnection, uri: &StoreUri) -> Result<()> {
    let read_only = |why: String| Err(Error::ReadOnly { uri: uri.to_string(), why });
    match conn {
        DbConnection::Postgresql(pg) => {
            let row: Setting =
                diesel::sql_query("SELECT current_setting('transaction_read_only') AS value")
                    .get_result(pg)?;
            if row.value == "on" {
                return read_only("default_transaction_read_only, or a standby server".into());
            }
            Ok(())
        }
        // No setting tells it on every version (read_only, super_read_only, tx_read_only,
        // transaction_read_only, a read-only file or folder): try a write that changes nothing.
        _ => {
            let probe = conn.transaction(|conn| {
                diesel::sql_query("UPDATE alembic_version SET version_num = version_num")
                    .execute(conn)?;
                Err::<(), _>(diesel::result::Error::RollbackTransaction)
            });
            match probe {
                Ok(()) | Err(diesel::result::Error::RollbackTransaction) => Ok(()),
                Err(e) => read_only(one_line(&e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_spelling_of_mlflow() {
        let servers = [
            ("postgresql", Backend::Postgresql, "postgresql"),
            ("postgresql+psycopg2", Backend::Postgresql, "postgresql"),
            ("postgresql+psycopg", Backend::Postgresql, "postgresql"),
            ("mysql", Backend::Mysql, "mysql"),
            ("mysql+pymysql", Backend::Mysql, "mysql"),
            ("mysql+mysqldb", Backend::Mysql, "mysql"),
            ("mariadb", Backend::Mysql, "mysql"),
        ];
        for (scheme, backend, driver) in servers {
            let uri = StoreUri::parse(&format!("{scheme}://u:p%40ss@db.example:6543/mlflow?ssl=x"))
                .unwrap();
            assert_eq!(uri.backend(), backend);
            assert_eq!(
                uri.connection_url(),
                format!("{driver}://u:p%40ss@db.example:6543/mlflow?ssl=x")
            );
            assert_eq!(uri.database(), "mlflow");
        }
        let relative = StoreUri::parse("sqlite:///mlflow.db").unwrap();
        assert_eq!(relative.backend(), Backend::Sqlite);
        assert_eq!(relative.sqlite_file(), Some(Path::new("mlflow.db")));
        assert_eq!(relative.connection_url(), "file:mlflow.db?mode=rw");
        let absolute = StoreUri::parse("sqlite:////var/lib/mlflow/a?b.db").unwrap();
        assert_eq!(absolute.sqlite_file(), Some(Path::new("/var/lib/mlflow/a")));
        let odd = StoreUri::parse("sqlite:////tmp/50%#1.db").unwrap();
        assert_eq!(odd.connection_url(), "file:/tmp/50%25%231.db?mode=rw");
        assert_eq!(StoreUri::default_store().sqlite_file(), Some(Path::new("mlflow.db")));
    }

    #[test]
    fn rejects_what_mlflow_would_not_take() {
        let err = StoreUri::parse("mongodb://localhost/mlflow").unwrap_err();
        assert!(err.to_string().contains("`mongodb`"), "{err}");
        assert!(err.to_string().contains("mysql+pymysql://"), "{err}");
        assert!(err.to_string().contains("sqlite://"), "{err}");
        for (uri, says) in [
            ("postgresql://localhost", "names no database"),
            ("mysql+pymysql://root@localhost", "names no database"),
            ("sqlite://", "three slashes"),
            ("sqlite:///", "names no database file"),
            ("sqlite://host/mlflow.db", "three slashes"),
            ("/var/lib/mlflow.db", "no scheme"),
        ] {
            let err = StoreUri::parse(uri).unwrap_err();
            assert!(err.to_string().contains(says), "{uri}: {err}");
        }
    }

    #[test]
    fn hides_the_password() {
        let uri = StoreUri::parse("postgresql+psycopg2://me:secret@localhost/mlflow").unwrap();
        assert_eq!(uri.to_string(), "postgresql+psycopg2://me:***@localhost/mlflow");
        assert_eq!(uri.given(), "postgresql+psycopg2://me:secret@localhost/mlflow");
        let err = StoreUri::parse("mongodb://me:secret@localhost/mlflow").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = StoreUri::parse("mysql://me:secret@localhost").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn tells_local_from_remote() {
        let local = [
            "postgresql://127.0.0.1/m",
            "postgresql://localhost:5432/m",
            "postgresql://[::1]/m",
            "postgresql:///m",
            "postgresql:///m?host=/var/run/postgresql",
            "postgresql://%2Fvar%2Frun%2Fpostgresql/m",
            "mysql+pymysql://root@127.0.0.1:3306/m",
            "mysql://root@db.internal/m?unix_socket=/run/mysqld/mysqld.sock",
            "sqlite:////srv/mlflow.db",
        ];
        for uri in local {
            assert!(StoreUri::parse(uri).unwrap().is_local(), "{uri}");
        }
        for uri in [
            "postgresql://10.0.0.5/m",
            "postgresql://db.internal/m",
            "postgresql:///m?host=db",
            "mysql://root@db.internal/m",
        ] {
            assert!(!StoreUri::parse(uri).unwrap().is_local(), "{uri}");
        }
    }

    #[test]
    fn names_a_sibling_database() {
        let pg = StoreUri::parse("postgresql+psycopg2://u:pw@h/one").unwrap().with_database("two");
        assert_eq!(pg.given(), "postgresql+psycopg2://u:pw@h/two");
        assert_eq!(pg.database(), "two");
        let sqlite = StoreUri::parse("sqlite:////tmp/x/one.db").unwrap().with_database("two.db");
        assert_eq!(sqlite.given(), "sqlite:////tmp/x/two.db");
        assert_eq!(sqlite.database(), "two.db");
    }
}
