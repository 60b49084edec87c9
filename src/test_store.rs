//! Disposable MLflow stores for test suites: each [`TestStore`] is a uniquely named database (a
//! SQLite store: a file in a new temporary folder) with an MLflow schema, removed when the
//! store goes out of scope (a panicking test included). PostgreSQL stores of the latest schema
//! are copied from a template database built once from the committed snapshot.
//!
//! The servers are the ones `MLFLOW_JANITOR_TEST_DATABASE_URL` (PostgreSQL, by default
//! `postgresql://postgres@127.0.0.1:5432/postgres`) and `MLFLOW_JANITOR_TEST_MYSQL_URL` (by
//! default `mysql://root@127.0.0.1:3306/mysql`) name, with any database.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use crate::error::{Error, Result};
use crate::store::revision::{StoreSchema, UnknownRevision, LATEST};
use crate::store::{Backend, DbConnection, DbPool, StoreUri};

pub const TEST_DATABASE_URL_VAR: &str = "MLFLOW_JANITOR_TEST_DATABASE_URL";
pub const TEST_MYSQL_URL_VAR: &str = "MLFLOW_JANITOR_TEST_MYSQL_URL";
const DEFAULT_POSTGRES_SERVER: &str = "postgresql://postgres@127.0.0.1:5432/postgres";
const DEFAULT_MYSQL_SERVER: &str = "mysql://root@127.0.0.1:3306/mysql";

/// A store with an MLflow schema that exists as long as this value.
pub struct TestStore {
    uri: StoreUri,
    /// The server that drops it; none for a SQLite file.
    server: Option<StoreUri>,
}

impl TestStore {
    /// An empty PostgreSQL store of the latest schema (no experiment yet).
    pub fn new() -> Result<TestStore> {
        TestStore::on(Backend::Postgresql)
    }

    /// An empty store of the latest schema on `backend`.
    pub fn on(backend: Backend) -> Result<TestStore> {
        TestStore::of_version(backend, LATEST.mlflow)
    }

    /// An empty store with the schema of an MLflow version mlflow-janitor knows.
    pub fn of_version(backend: Backend, mlflow_version: &str) -> Result<TestStore> {
        if backend == Backend::Postgresql && mlflow_version == LATEST.mlflow {
            let server = server_for(backend)?;
            let template = template(&server)?;
            let name = unique_name();
            diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .execute(&mut server.establish()?)?;
            return Ok(TestStore { uri: server.with_database(&name), server: Some(server) });
        }
        let store = TestStore::without_tables(backend)?;
        // On failure the store is dropped, and its database with it.
        crate::fresh_store::create_schema(&mut store.connect()?, mlflow_version)?;
        Ok(store)
    }

    /// A database without tables (a SQLite store: an empty file), for a client that builds
    /// its own schema, as MLflow's does on its first connection.
    pub fn without_tables(backend: Backend) -> Result<TestStore> {
        let name = unique_name();
        match backend {
            Backend::Sqlite => {
                let folder = std::env::temp_dir().join(&name);
                std::fs::create_dir(&folder).map_err(|e| Error::Connect {
                    uri: folder.display().to_string(),
                    reason: e.to_string(),
                })?;
                let uri = StoreUri::parse(&format!("sqlite:///{}/mlflow.db", folder.display()))?;
                let store = TestStore { uri, server: None };
                store.uri.create_database_if_missing()?;
                Ok(store)
            }
            Backend::Postgresql | Backend::Mysql => {
                let server = server_for(backend)?;
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut server.establish()?)?;
                Ok(TestStore { uri: server.with_database(&name), server: Some(server) })
            }
        }
    }

    pub fn uri(&self) -> &StoreUri {
        &self.uri
    }

    pub fn connect(&self) -> Result<DbConnection> {
        self.uri.establish()
    }

    /// Empties the store again, as `mlflow-janitor reset` does (under the store's lock): experiment
    /// 0 `Default` and nothing else of MLflow's.
    pub fn reset(&self) -> Result<crate::fresh_store::ResetReport> {
        let mut conn = self.connect()?;
        let _lock = crate::store::lock_store(&mut conn, &self.uri)?;
        let schema = StoreSchema::read(&mut conn, &self.uri, UnknownRevision::Refuse)?;
        crate::fresh_store::reset(&mut conn, &schema)
    }

    /// A pool of connections to the store, for the test's own code.
    pub fn pool(&self) -> Result<DbPool> {
        self.uri.connect(4)
    }

    fn remove(&self) -> Result<()> {
        match (&self.server, self.uri.sqlite_file()) {
            (Some(server), _) => {
                let force =
                    if server.backend() == Backend::Postgresql { " WITH (FORCE)" } else { "" };
                let drop = format!("DROP DATABASE IF EXISTS {}{force}", self.uri.database());
                diesel::sql_query(drop).execute(&mut server.establish()?)?;
                Ok(())
            }
            (None, Some(file)) => {
                let folder = file.parent().expect("the store's file is in its own folder");
                std::fs::remove_dir_all(folder).map_err(|e| Error::Connect {
                    uri: self.uri.to_string(),
                    reason: e.to_string(),
                })
            }
            (None, None) => Ok(()),
        }
    }
}

/// A name no other test store has, in this process or another.
fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "mlflow_janitor_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos()
    )
}

/// The server test stores of `backend` are made on (any database of it).
fn server_for(backend: Backend) -> Result<StoreUri> {
    let (variable, default) = match backend {
        Backend::Mysql => (TEST_MYSQL_URL_VAR, DEFAULT_MYSQL_SERVER),
        _ => (TEST_DATABASE_URL_VAR, DEFAULT_POSTGRES_SERVER),
    };
    StoreUri::parse(&std::env::var(variable).unwrap_or_else(|_| default.to_owned()))
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Err(err) = self.remove() {
            eprintln!("could not drop test store {}: {err}", self.uri);
        }
    }
}

/// The template database for this snapshot, built once per server and reused by every process:
/// its name carries a hash of the snapshot, and an advisory lock keeps two processes from
/// building it at once.
fn template(server: &StoreUri) -> Result<String> {
    static TEMPLATE: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| build_template(server).map_err(|e| e.to_string()))
        .clone()
        .map_err(|reason| Error::Connect { uri: server.to_string(), reason })
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

fn build_template(server: &StoreUri) -> Result<String> {
    // A regenerated snapshot gets a template of its own.
    let mut hasher = std::hash::DefaultHasher::new();
    LATEST.snapshot(Backend::Postgresql).as_bytes().hash(&mut hasher);
    LATEST.revision.hash(&mut hasher);
    let key = (hasher.finish() >> 1) as i64;
    let name = format!("mlflow_janitor_template_{key:x}");
    let mut admin = server.establish()?;
    diesel::sql_query("SELECT pg_advisory_lock($1)").bind::<BigInt, _>(key).execute(&mut admin)?;
    let exists: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<Text, _>(&name)
            .get_result(&mut admin)?;
    let built = if exists.exists { Ok(()) } else { load_template(server, &mut admin, &name) };
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(key)
        .execute(&mut admin)?;
    built.map(|()| name)
}

/// Loads the snapshot into a scratch database, then renames it: a template either is whole or
/// does not exist.
fn load_template(server: &StoreUri, admin: &mut DbConnection, name: &str) -> Result<()> {
    let scratch = format!("{name}_building");
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")).execute(admin)?;
    diesel::sql_query(format!("CREATE DATABASE {scratch}")).execute(admin)?;
    crate::fresh_store::create_schema(
        &mut server.with_database(&scratch).establish()?,
        LATEST.mlflow,
    )?;
    // The loading session may linger a moment after its connection is dropped.
    for attempt in 0.. {
        match diesel::sql_query(format!("ALTER DATABASE {scratch} RENAME TO {name}")).execute(admin)
        {
            Ok(_) => return Ok(()),
            Err(_) if attempt < 50 => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}
