//! The connection layer: MLflow's backend store URI, the connection type over the supported
//! backends, and the pool. Backend differences live here, never in the delete plan.

use std::fmt;
use std::time::Duration;

use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sql_types::Text;
use url::Url;

use crate::error::{Error, Result};

/// A connection to any backend mlflow-janitor supports. Every query of the library goes through
/// this type, so the delete plan is written once for all backends.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
}

/// The backend type of [`DbConnection`], for boxed queries.
pub type DbBackend = <DbConnection as diesel::Connection>::Backend;
pub type DbPool = Pool<ConnectionManager<DbConnection>>;

/// An MLflow schema: the alembic revision its `mlflow db upgrade` leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownSchema {
    pub mlflow: &'static str,
    pub revision: &'static str,
}

/// The schemas whose tables the delete plan knows, oldest first.
pub const KNOWN_SCHEMAS: &[KnownSchema] = &[LATEST];

/// The newest schema: the one `init` creates and the mirror in `schema.rs` describes.
pub const LATEST: KnownSchema = KnownSchema { mlflow: "3.17.2", revision: "dc11669786a5" };

/// A backend store URI as `mlflow server --backend-store-uri` takes it, with the connection
/// string the database driver needs.
#[derive(Clone)]
pub struct StoreUri {
    /// What the user gave, to show in messages with the password hidden.
    given: Url,
    /// What libpq connects with: the scheme without SQLAlchemy's `+driver` suffix.
    connection_url: String,
}

impl StoreUri {
    pub fn parse(uri: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidUri { uri: redact(uri), reason };
        let given = Url::parse(uri).map_err(|e| invalid(e.to_string()))?;
        let (dialect, _driver) = match given.scheme().split_once('+') {
            Some((dialect, driver)) => (dialect, Some(driver)),
            None => (given.scheme(), None),
        };
        if dialect != "postgresql" {
            return Err(Error::UnsupportedScheme { scheme: given.scheme().to_owned() });
        }
        if given.path().trim_start_matches('/').is_empty() {
            return Err(invalid("it names no database (postgresql://HOST/DATABASE)".into()));
        }
        let mut connection_url = given.clone();
        connection_url
            .set_scheme("postgresql")
            .map_err(|()| invalid("cannot rewrite the scheme".into()))?;
        Ok(StoreUri { given, connection_url: connection_url.into() })
    }

    /// The database name, as the path of the URI gives it.
    pub fn database(&self) -> &str {
        self.given.path().trim_start_matches('/')
    }

    /// True for a server on this machine: loopback, or a Unix socket (no host, or a path).
    pub fn is_local(&self) -> bool {
        let host_param = self.given.query_pairs().find(|(k, _)| k == "host").map(|(_, v)| v);
        // URLs of non-special schemes keep IP hosts as text: compare the text.
        let host = match (&host_param, self.given.host_str()) {
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

    pub fn connection_url(&self) -> &str {
        &self.connection_url
    }

    /// The same store with another database name: used to reach the server's maintenance
    /// database, or a sibling test database.
    pub fn with_database(&self, database: &str) -> StoreUri {
        let mut given = self.given.clone();
        given.set_path(&format!("/{database}"));
        let mut connection_url = Url::parse(&self.connection_url).expect("was a valid URL");
        connection_url.set_path(&format!("/{database}"));
        StoreUri { given, connection_url: connection_url.into() }
    }

    /// Opens a pool of connections, and checks one out so that a bad host, password or
    /// database is reported now, in one line.
    pub fn connect(&self, max_size: u32) -> Result<DbPool> {
        let manager = ConnectionManager::<DbConnection>::new(self.connection_url.clone());
        let pool = Pool::builder()
            .max_size(max_size)
            // Connect on demand only: a background connect would report a failure without the
            // server's reason (MultiConnection's establish hides it).
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(30))
            .connection_customizer(Box::new(SessionSettings))
            // The pool would retry a refused connection until the timeout; the first error is
            // what the user needs to see.
            .build_unchecked(manager);
        self.establish().map(drop)?;
        Ok(pool)
    }

    /// One connection outside any pool, with the real error if it fails.
    pub fn establish(&self) -> Result<DbConnection> {
        // MultiConnection::establish hides which backend failed and why: connect to the backend
        // named by the scheme directly, so the message is the server's own.
        let conn = diesel::PgConnection::establish(&self.connection_url).map_err(|e| {
            Error::Connect { uri: self.to_string(), reason: one_line(&e.to_string()) }
        })?;
        let mut conn = DbConnection::Postgresql(conn);
        SessionSettings.on_acquire(&mut conn).map_err(|e| Error::Pool(e.to_string()))?;
        Ok(conn)
    }
}

impl fmt::Display for StoreUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.given.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        f.write_str(shown.as_str())
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

/// Per-session settings, applied to every connection the pool hands out.
#[derive(Debug, Clone, Copy)]
struct SessionSettings;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut DbConnection) -> std::result::Result<(), diesel::r2d2::Error> {
        match conn {
            // Lets a DBA see in pg_stat_activity who holds the locks.
            DbConnection::Postgresql(pg) => {
                diesel::sql_query("SET application_name = 'mlflow-janitor'").execute(pg)
            }
        }
        .map(drop)
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

#[derive(QueryableByName)]
struct ReadOnly {
    #[diesel(sql_type = Text)]
    read_only: String,
}

/// Refuses a store whose sessions cannot write (a read-only default, or a hot standby), before
/// any work, rather than failing at the first batch.
pub fn check_writable(conn: &mut DbConnection, uri: &StoreUri) -> Result<()> {
    let row: ReadOnly =
        diesel::sql_query("SELECT current_setting('transaction_read_only') AS read_only")
            .get_result(conn)?;
    if row.read_only == "on" {
        return Err(Error::ReadOnly { uri: uri.to_string() });
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Revision {
    #[diesel(sql_type = Text)]
    version_num: String,
}

/// Reads the store's alembic revision and checks that the delete plan knows it.
/// Returns the MLflow version that revision belongs to.
pub fn check_schema(conn: &mut DbConnection, uri: &StoreUri) -> Result<&'static str> {
    if !crate::introspect::table_exists(conn, "alembic_version")? {
        return Err(Error::NotMlflow { uri: uri.to_string() });
    }
    let revision: Revision = diesel::sql_query("SELECT version_num FROM alembic_version")
        .get_result(conn)
        .map_err(|e| match e {
            diesel::result::Error::NotFound => Error::NotMlflow { uri: uri.to_string() },
            e => e.into(),
        })?;
    KNOWN_SCHEMAS
        .iter()
        .find(|known| known.revision == revision.version_num)
        .map(|known| known.mlflow)
        .ok_or_else(|| Error::UnknownSchema {
            uri: uri.to_string(),
            revision: revision.version_num,
            known: KNOWN_SCHEMAS
                .iter()
                .map(|known| format!("{} (MLflow {})", known.revision, known.mlflow))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_postgres_spelling_of_mlflow() {
        for scheme in ["postgresql", "postgresql+psycopg2", "postgresql+psycopg"] {
            let uri = StoreUri::parse(&format!(
                "{scheme}://u:p%40ss@db.example:6543/mlflow?sslmode=require&application_name=x"
            ))
            .unwrap();
            assert_eq!(
                uri.connection_url(),
                "postgresql://u:p%40ss@db.example:6543/mlflow?sslmode=require&application_name=x"
            );
            assert_eq!(uri.database(), "mlflow");
        }
    }

    #[test]
    fn hides_the_password() {
        let uri = StoreUri::parse("postgresql+psycopg2://me:secret@localhost/mlflow").unwrap();
        assert_eq!(uri.to_string(), "postgresql+psycopg2://me:***@localhost/mlflow");
        let err = StoreUri::parse("mysql://me:secret@localhost/mlflow").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(err.to_string().contains("postgresql+psycopg2://"), "{err}");
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
        ];
        for uri in local {
            assert!(StoreUri::parse(uri).unwrap().is_local(), "{uri}");
        }
        for uri in
            ["postgresql://10.0.0.5/m", "postgresql://db.internal/m", "postgresql:///m?host=db"]
        {
            assert!(!StoreUri::parse(uri).unwrap().is_local(), "{uri}");
        }
    }

    #[test]
    fn rejects_a_uri_without_database() {
        let err = StoreUri::parse("postgresql://localhost").unwrap_err();
        assert!(err.to_string().contains("names no database"), "{err}");
    }
}
