//! Disposable MLflow stores for test suites: each [`TestStore`] is a uniquely named database with
//! the latest MLflow schema, copied from a template database that is built once from the
//! committed snapshot, and dropped when the store goes out of scope (a panicking test included).
//!
//! The server is the one `MLFLOW_JANITOR_TEST_DATABASE_URL` names (any database on it), by
//! default `postgresql://postgres@127.0.0.1:5432/postgres`.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use crate::error::{Error, Result};
use crate::store::{DbConnection, DbPool, StoreUri, LATEST};

pub const TEST_DATABASE_URL_VAR: &str = "MLFLOW_JANITOR_TEST_DATABASE_URL";
const DEFAULT_SERVER: &str = "postgresql://postgres@127.0.0.1:5432/postgres";

/// A database with the MLflow schema that exists as long as this value.
pub struct TestStore {
    uri: StoreUri,
    server: StoreUri,
}

impl TestStore {
    /// Creates an empty MLflow store of the latest schema (no experiment yet).
    pub fn new() -> Result<TestStore> {
        let server = StoreUri::parse(
            &std::env::var(TEST_DATABASE_URL_VAR).unwrap_or_else(|_| DEFAULT_SERVER.to_owned()),
        )?;
        let template = template(&server)?;
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "mlflow_janitor_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos()
        );
        let mut admin = server.establish()?;
        diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .execute(&mut admin)?;
        Ok(TestStore { uri: server.with_database(&name), server })
    }

    pub fn uri(&self) -> &StoreUri {
        &self.uri
    }

    pub fn connect(&self) -> Result<DbConnection> {
        self.uri.establish()
    }

    /// A pool of connections to the store, as the janitor's commands use.
    pub fn pool(&self) -> Result<DbPool> {
        self.uri.connect(4)
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let dropped = self.server.establish().and_then(|mut admin| {
            diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.uri.database()
            ))
            .execute(&mut admin)
            .map_err(Error::from)
        });
        if let Err(err) = dropped {
            eprintln!("could not drop test database {}: {err}", self.uri.database());
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
    include_bytes!("../schema/postgres/3.17.2_dc11669786a5/up.sql").hash(&mut hasher);
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
    crate::fresh_store::create_latest_schema(&mut server.with_database(&scratch).establish()?)?;
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
