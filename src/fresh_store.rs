//! Fresh stores for test suites: `init` makes a new store of the latest MLflow schema from the
//! snapshot embedded in the binary (no Python), `reset` empties an existing one. Either way the
//! result is what MLflow has after `mlflow db upgrade` and its client's first connection: the
//! schema, `alembic_version`, the `default` workspace and experiment 0 `Default`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};

use crate::error::{Error, Result};
use crate::schema::{experiments, workspaces};
use crate::store::catalog;
use crate::store::revision::{KnownSchema, StoreSchema, UnknownRevision, LATEST};
use crate::store::{write_transaction, Backend, DbConnection, StoreUri};

const DEFAULT_WORKSPACE: &str = "default";
const DEFAULT_WORKSPACE_DESCRIPTION: &str = "Default workspace for legacy resources";
const DEFAULT_EXPERIMENT: &str = "Default";

/// Creates the schema of an MLflow version, with the rows its `mlflow db upgrade` writes, on
/// an empty database, from the embedded snapshot. One transaction where the backend has
/// transactional DDL (not MySQL).
pub fn create_schema(conn: &mut DbConnection, mlflow_version: &str) -> Result<()> {
    let known = KnownSchema::of_version(mlflow_version).ok_or_else(|| {
        Error::Snapshot(format!("no embedded snapshot of MLflow {mlflow_version}"))
    })?;
    let snapshot = known.snapshot(conn.backend());
    conn.transaction(|conn| {
        conn.batch_execute(snapshot).map_err(|e| Error::Snapshot(e.to_string()))?;
        if conn.backend() == Backend::Postgresql {
            // The dump empties search_path for its own statements; give the session its own.
            conn.batch_execute("RESET search_path")?;
        }
        Ok(())
    })
}

/// What `init` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitReport {
    pub database_created: bool,
    pub mlflow_version: &'static str,
    pub duration_ms: u64,
}

/// Makes a new store at `uri`: creates the database (or SQLite file) if missing, refuses one
/// that already has tables, then loads the latest schema and experiment 0 `Default`, whose
/// artifact location is `<default_artifact_root>/0` as MLflow sets it.
pub fn init(uri: &StoreUri, default_artifact_root: &str) -> Result<InitReport> {
    let started = Instant::now();
    let database_created = uri.create_database_if_missing()?;
    let mut conn = uri.establish()?;
    let tables = catalog::tables(&mut conn)?.len();
    if tables > 0 {
        return Err(Error::NotEmpty { uri: uri.to_string(), tables: tables as i64 });
    }
    create_schema(&mut conn, LATEST.mlflow)?;
    let schema = StoreSchema::read(&mut conn, uri, UnknownRevision::Refuse)?;
    insert_default_experiment(
        &mut conn,
        &schema,
        &default_experiment_location(default_artifact_root),
    )?;
    Ok(InitReport {
        database_created,
        mlflow_version: LATEST.mlflow,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// What `reset` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResetReport {
    pub duration_ms: u64,
}

#[derive(QueryableByName)]
struct ArtifactLocation {
    #[diesel(sql_type = Nullable<Text>)]
    artifact_location: Option<String>,
}

/// Empties MLflow's tables (those of the store's revision, as its snapshot creates them) but
/// `alembic_version`, keeps the `default` workspace, restarts their id sequences (the next
/// experiment gets id 1) and restores experiment 0 `Default` with its artifact location. Other
/// tables in the same database keep their rows. The caller reads the schema first, which checks
/// that this is an MLflow store of a known revision. One transaction: all or nothing (on MySQL
/// the id counters restart after it commits, since DDL cannot be rolled back there).
pub fn reset(conn: &mut DbConnection, schema: &StoreSchema) -> Result<ResetReport> {
    let started = Instant::now();
    let known = schema.known().ok_or_else(|| {
        Error::Snapshot(format!(
            "none of schema revision `{}`: reset empties only the tables of a revision it knows",
            schema.revision
        ))
    })?;
    let emptied: Vec<&str> = known
        .tables(conn.backend())
        .into_iter()
        .filter(|table| !KEPT_TABLES.contains(table))
        .collect();
    write_transaction(conn, |conn| {
        // Experiment 0 comes back where MLflow's client first put it.
        let default_location =
            diesel::sql_query("SELECT artifact_location FROM experiments WHERE experiment_id = 0")
                .get_result::<ArtifactLocation>(conn)
                .optional()?
                .and_then(|row| row.artifact_location);
        empty_tables(conn, &emptied)?;
        if schema.has_table("workspaces") {
            diesel::delete(workspaces::table.filter(workspaces::name.ne(DEFAULT_WORKSPACE)))
                .execute(conn)?;
            let default_workspaces: i64 = workspaces::table.count().get_result(conn)?;
            if default_workspaces == 0 {
                diesel::insert_into(workspaces::table)
                    .values((
                        workspaces::name.eq(DEFAULT_WORKSPACE),
                        workspaces::description.eq(DEFAULT_WORKSPACE_DESCRIPTION),
                    ))
                    .execute(conn)?;
            }
        }
        let location = default_location
            .unwrap_or_else(|| default_experiment_location(&default_artifact_root()));
        insert_default_experiment(conn, schema, &location)
    })?;
    if conn.backend() == Backend::Mysql {
        restart_mysql_counters(conn, &emptied)?;
    }
    Ok(ResetReport { duration_ms: started.elapsed().as_millis() as u64 })
}

/// MLflow's tables a reset keeps: the schema's revision, and the workspaces (all but `default`
/// go).
const KEPT_TABLES: &[&str] = &["alembic_version", "workspaces"];

/// Deletes every row of `tables`; on PostgreSQL also restarts their sequences (MySQL's counters
/// restart after the transaction, SQLite takes the highest id left plus one).
fn empty_tables(conn: &mut DbConnection, tables: &[&str]) -> Result<()> {
    let (quote, mut sql, after) = match conn.backend() {
        Backend::Postgresql => return Ok(conn.batch_execute(&empty_tables_postgres(tables))?),
        // Every row goes, so no foreign key among them can end up broken: check none on the way.
        Backend::Mysql => {
            ('`', "SET FOREIGN_KEY_CHECKS = 0;".to_owned(), "SET FOREIGN_KEY_CHECKS = 1;")
        }
        // Checked at commit, when no row is left to break one.
        Backend::Sqlite => ('"', "PRAGMA defer_foreign_keys = ON;".to_owned(), ""),
    };
    for table in tables {
        let quoted = table.replace(quote, &format!("{quote}{quote}"));
        sql += &format!("DELETE FROM {quote}{quoted}{quote};");
    }
    sql += after;
    conn.batch_execute(&sql)?;
    Ok(())
}

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Restarts the AUTO_INCREMENT counters of MySQL's `tables` (at the highest id left plus one).
fn restart_mysql_counters(conn: &mut DbConnection, tables: &[&str]) -> Result<()> {
    let counted: Vec<TableName> = diesel::sql_query(
        "SELECT table_name AS name FROM information_schema.columns \
         WHERE table_schema = DATABASE() AND extra LIKE '%auto_increment%'",
    )
    .load(conn)?;
    for table in counted.iter().filter(|t| tables.contains(&t.name.as_str())) {
        let quoted = table.name.replace('`', "``");
        conn.batch_execute(&format!("ALTER TABLE `{quoted}` AUTO_INCREMENT = 1"))?;
    }
    Ok(())
}

/// PostgreSQL: deletes every row of `tables`, children before parents, in one round trip, and
/// restarts the sequences they own. A table's place is the longest chain of tables referencing
/// it: those with none go first. Test stores are small and mostly empty, so a DELETE beats
/// TRUNCATE, which makes new files for every table and index.
fn empty_tables_postgres(tables: &[&str]) -> String {
    let names: Vec<String> =
        tables.iter().map(|t| format!("'{}'", t.replace('\'', "''"))).collect();
    format!(
        "
-- A test store's reset need not wait for its WAL to reach the disk: a crash right after can
-- lose the reset, never corrupt the store. It saves the commit's fsync, a third of the time.
SET LOCAL synchronous_commit = off;
DO $$
DECLARE
    emptied oid[] := ARRAY(
        SELECT oid FROM pg_class
        WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p')
          AND relname IN ({names})
    );
    t regclass;
    replica boolean := true;
BEGIN
    -- Every row goes, so no foreign key among these tables can end up broken: where the role
    -- may (a superuser, as on most local test servers), skip the per-row foreign-key triggers,
    -- whose plans a new session would first have to prepare. Otherwise the children-first
    -- order keeps them happy.
    BEGIN
        SET LOCAL session_replication_role = replica;
    EXCEPTION WHEN insufficient_privilege THEN
        replica := false;
    END;
    FOR t IN
        WITH RECURSIVE fk AS (
            SELECT conrelid AS child, confrelid AS parent FROM pg_constraint
            WHERE contype = 'f' AND conrelid = ANY(emptied) AND confrelid = ANY(emptied)
              AND conrelid <> confrelid
        ), chain (tbl, depth) AS (
            SELECT unnest(emptied), 0
            UNION ALL
            SELECT fk.parent, chain.depth + 1 FROM chain JOIN fk ON fk.child = chain.tbl
        )
        SELECT tbl::regclass FROM chain GROUP BY tbl ORDER BY max(depth), tbl
    LOOP
        -- A table without pages holds no rows: skip it (most of a test store's tables).
        IF pg_relation_size(t) > 0 THEN
            EXECUTE format('DELETE FROM %s', t);
        END IF;
    END LOOP;
    IF replica THEN
        SET LOCAL session_replication_role = origin;
    END IF;
    -- The sequences of their serial and identity columns.
    PERFORM setval(d.objid, 1, false) FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i') AND s.relkind = 'S' AND d.refobjid = ANY(emptied);
END $$",
        names = names.join(", ")
    )
}

/// The artifact root of MLflow's client when no server gives one: `<cwd>/mlruns`.
pub fn default_artifact_root() -> String {
    std::env::current_dir().unwrap_or_default().join("mlruns").display().to_string()
}

fn default_experiment_location(artifact_root: &str) -> String {
    format!("{}/0", artifact_root.trim_end_matches('/'))
}

/// Experiment 0 as MLflow's client creates it on a store without one.
fn insert_default_experiment(
    conn: &mut DbConnection,
    schema: &StoreSchema,
    artifact_location: &str,
) -> Result<()> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    if conn.backend() == Backend::Mysql {
        // As MLflow does: else MySQL takes the 0 for "the next id".
        conn.batch_execute(
            "SET @@SESSION.sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')",
        )?;
    }
    let experiment = (
        experiments::experiment_id.eq(0),
        experiments::name.eq(DEFAULT_EXPERIMENT),
        experiments::artifact_location.eq(artifact_location),
        experiments::lifecycle_stage.eq("active"),
        experiments::creation_time.eq(now),
        experiments::last_update_time.eq(now),
    );
    if schema.workspaces {
        diesel::insert_into(experiments::table)
            .values((experiment, experiments::workspace.eq(DEFAULT_WORKSPACE)))
            .execute(conn)?;
    } else {
        diesel::insert_into(experiments::table).values(experiment).execute(conn)?;
    }
    Ok(())
}
