//! What a session of mlflow-janitor's writers does beyond queries: its write transactions, the
//! bounds on its statements, the checks that it may write and where it went, and the
//! store-wide lock.

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::connection::one_line;
use super::{Backend, DbConnection, StoreUri};
use crate::error::{Error, Result};

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

/// Makes the session read-only, for a dry run: on PostgreSQL and MySQL each later statement runs
/// in a read-only transaction of its own (the session's default), which refuses any write and
/// takes no row lock; SQLite's `query_only` refuses writes, and its statements, each a read
/// transaction of its own, never take the write lock, so the tracking server's next write waits
/// at most for one statement. Works where the session cannot write: a standby, a read-only user.
pub fn read_only_session(conn: &mut DbConnection) -> Result<()> {
    let statement = match conn.backend() {
        Backend::Postgresql => "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
        Backend::Mysql => "SET SESSION TRANSACTION READ ONLY",
        Backend::Sqlite => "PRAGMA query_only = ON",
    };
    conn.batch_execute(statement)?;
    Ok(())
}

/// Makes this session's deletes take their rows through an index wherever their filter has one,
/// whatever the statistics say (MySQL's safe updates; PostgreSQL and SQLite lock no rows they
/// do not delete). Scanning a whole table instead, a delete waits for the rows a client logging
/// to a live run has not yet committed, and may hold rows that client then waits for: a
/// deadlock InnoDB ends by rolling the client back. A delete no index serves fails instead, as
/// does every multi-table delete: run those through [`delete_joined`].
pub fn delete_through_indexes(conn: &mut DbConnection) -> Result<()> {
    if conn.backend() == Backend::Mysql {
        conn.batch_execute("SET SESSION sql_safe_updates = 1")?;
    }
    Ok(())
}

/// Runs `delete`, a [`DeleteJoined`](super::rows::DeleteJoined), with [`delete_through_indexes`]
/// lifted for it alone: MySQL's safe updates refuse every multi-table delete, whatever its plan.
pub fn delete_joined<T>(
    conn: &mut DbConnection,
    delete: impl FnOnce(&mut DbConnection) -> Result<T>,
) -> Result<T> {
    if conn.backend() != Backend::Mysql {
        return delete(conn);
    }
    conn.batch_execute("SET SESSION sql_safe_updates = 0")?;
    let deleted = delete(conn);
    delete_through_indexes(conn)?;
    deleted
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

/// Refuses a store whose sessions cannot delete from `tables`, before any work, rather than
/// failing at the first batch: a read-only server or session, a read-only file, or a user that
/// may read but not delete.
pub fn check_writable(conn: &mut DbConnection, uri: &StoreUri, tables: &[&str]) -> Result<()> {
    let read_only = |why: String| Err(Error::ReadOnly { uri: uri.to_string(), why });
    if let DbConnection::Postgresql(pg) = conn {
        let row: Setting =
            diesel::sql_query("SELECT current_setting('transaction_read_only') AS value")
                .get_result(pg)?;
        if row.value == "on" {
            return read_only("default_transaction_read_only, or a standby server".into());
        }
    }
    // No setting tells the rest on every version (read_only, super_read_only,
    // transaction_read_only, a read-only file or folder, privileges): try writes that change
    // nothing, all in one round trip (the server names the table it refused). SQLite has no
    // privileges: one write to the file tells.
    let probe = conn.transaction(|conn| {
        if let DbConnection::Sqlite(_) = conn {
            conn.batch_execute("UPDATE alembic_version SET version_num = version_num")?;
        } else {
            let deletes: String =
                tables.iter().map(|table| format!("DELETE FROM {table} WHERE 1 = 0;")).collect();
            conn.batch_execute(&deletes)?;
        }
        Err::<(), _>(diesel::result::Error::RollbackTransaction)
    });
    match probe {
        Ok(()) | Err(diesel::result::Error::RollbackTransaction) => Ok(()),
        Err(e) => read_only(one_line(&e.to_string())),
    }
}

#[derive(QueryableByName)]
struct MaybeSetting {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    value: Option<String>,
}

/// Where the server this connection reached sees it come from, when that is not this machine:
/// `None` for a SQLite file, a Unix socket or loopback. Asked of the server, because the URI's
/// host does not say where a connection goes: libpq also takes `hostaddr=`, `PGHOST` and
/// `PGHOSTADDR`, MySQL's client `MYSQL_HOST`.
pub fn remote_address(conn: &mut DbConnection) -> Result<Option<String>> {
    let address = match conn {
        // The server's own address on this connection; none over a Unix socket.
        DbConnection::Postgresql(pg) => {
            diesel::sql_query("SELECT host(inet_server_addr()) AS value")
                .get_result::<MaybeSetting>(pg)?
                .value
        }
        // The client's address as the server sees it (`localhost` over a socket): a session
        // that comes from loopback reached a server on this machine.
        DbConnection::Mysql(mysql) => {
            let host = diesel::sql_query(
                "SELECT host AS value FROM information_schema.processlist \
                 WHERE id = CONNECTION_ID()",
            )
            .get_result::<MaybeSetting>(mysql)?
            .value
            .unwrap_or_default();
            // `127.0.0.1:50312`, `::1:50312`, `localhost`, `localhost:50312`.
            let address = match host.rsplit_once(':') {
                Some((address, port)) if port.parse::<u16>().is_ok() => address.to_owned(),
                _ => host,
            };
            Some(address).filter(|a| !a.is_empty() && a != "localhost")
        }
        DbConnection::Sqlite(_) => None,
    };
    let loopback = |address: &str| {
        let address = address.trim_start_matches('[').trim_end_matches(']');
        address.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
    };
    Ok(address.filter(|address| !loopback(address)))
}

/// Any number: the same for every writer of every store, so that two of one store collide.
const STORE_LOCK_KEY: i64 = 0x6d6c_666c_6f77_6a01;

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

/// The store-wide lock of mlflow-janitor's writers (purge, reset, doctor --fix): held until
/// dropped (with its connection, on a server).
#[must_use = "the lock is released when dropped"]
pub struct StoreLock {
    /// SQLite's: the database file, locked.
    _file: Option<std::fs::File>,
}

/// Takes the store-wide lock, or fails at once if another writer holds it: a PostgreSQL
/// advisory lock or a MySQL named lock, both held by this session until its connection closes;
/// for SQLite an exclusive `flock` on the database file, which SQLite's own (POSIX) locks
/// ignore, so taking it never waits on the tracking server. Take it before anything that may
/// wait on the database's own locks.
pub fn lock_store(conn: &mut DbConnection, uri: &StoreUri) -> Result<StoreLock> {
    let busy = || Error::AlreadyRunning { uri: uri.to_string() };
    let locked = match conn {
        DbConnection::Postgresql(pg) => {
            diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
                .bind::<diesel::sql_types::BigInt, _>(STORE_LOCK_KEY)
                .get_result::<Locked>(pg)?
                .locked
        }
        DbConnection::Mysql(mysql) => {
            // Named locks are server-wide: the name carries the database (at most 64 chars).
            let name: String = format!("mlflow-janitor purge {}", uri.database());
            let name: String = name.chars().take(64).collect();
            diesel::sql_query("SELECT COALESCE(GET_LOCK(?, 0), 0) = 1 AS locked")
                .bind::<Text, _>(name)
                .get_result::<Locked>(mysql)?
                .locked
        }
        DbConnection::Sqlite(_) => {
            let unusable =
                |e: std::io::Error| Error::Connect { uri: uri.to_string(), reason: e.to_string() };
            let path = uri.sqlite_file().expect("a SQLite store is a file");
            let file = std::fs::File::open(path).map_err(unusable)?;
            return match file.try_lock() {
                Ok(()) => Ok(StoreLock { _file: Some(file) }),
                Err(std::fs::TryLockError::WouldBlock) => Err(busy()),
                Err(std::fs::TryLockError::Error(e)) => Err(unusable(e)),
            };
        }
    };
    if locked {
        Ok(StoreLock { _file: None })
    } else {
        Err(busy())
    }
}

/// Bounds every statement of this session: how long it may wait for a lock held by the
/// tracking server, and how long it may run. Zero is the server's setting, so a later call
/// puts back what an earlier one changed. SQLite has no statement timeout, and without a lock
/// timeout its connection keeps its own busy timeout.
pub fn limit_session(
    conn: &mut DbConnection,
    lock_timeout: Duration,
    statement_timeout: Duration,
) -> Result<()> {
    let settings = match conn.backend() {
        Backend::Postgresql => {
            let set = |name: &str, limit: Duration| match limit.as_millis() {
                0 => format!("RESET {name};"),
                ms => format!("SET {name} = '{ms}ms';"),
            };
            set("lock_timeout", lock_timeout) + &set("statement_timeout", statement_timeout)
        }
        Backend::Mysql => {
            // Whole seconds, at least one: row locks, and the table's metadata lock that
            // `OPTIMIZE TABLE` (`purge --reclaim full`) waits for.
            let seconds = if lock_timeout.is_zero() {
                "DEFAULT".to_owned()
            } else {
                lock_timeout.as_secs_f64().ceil().max(1.0).to_string()
            };
            format!(
                "SET SESSION innodb_lock_wait_timeout = {seconds}; \
                 SET SESSION lock_wait_timeout = {seconds};"
            ) + &mysql_statement_timeout(conn, statement_timeout)?
        }
        Backend::Sqlite if lock_timeout.is_zero() => return Ok(()),
        Backend::Sqlite => format!("PRAGMA busy_timeout = {};", lock_timeout.as_millis()),
    };
    conn.batch_execute(&settings)?;
    Ok(())
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

/// Whether the MySQL server is MariaDB, whose settings differ in places.
pub(super) fn is_mariadb(conn: &mut DbConnection) -> Result<bool> {
    let server: Version = diesel::sql_query("SELECT VERSION() AS version").get_result(conn)?;
    Ok(server.version.contains("MariaDB"))
}

/// MariaDB bounds every statement (`max_statement_time`, seconds); MySQL only reads
/// (`max_execution_time`, milliseconds). Zero: the server's setting.
fn mysql_statement_timeout(conn: &mut DbConnection, limit: Duration) -> Result<String> {
    Ok(match (is_mariadb(conn)?, limit.is_zero()) {
        (true, true) => "SET SESSION max_statement_time = DEFAULT;".to_owned(),
        (true, false) => format!("SET SESSION max_statement_time = {};", limit.as_secs_f64()),
        (false, true) => "SET SESSION max_execution_time = DEFAULT;".to_owned(),
        (false, false) => format!("SET SESSION max_execution_time = {};", limit.as_millis()),
    })
}
