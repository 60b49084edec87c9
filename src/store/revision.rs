//! Which MLflow schema a store has: its alembic revision, the MLflow versions mlflow-janitor
//! knows, and the tables and columns that vary between them, read once before any work.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::error::{Error, Result};
use crate::store::catalog;
use crate::store::{Backend, DbConnection, StoreUri};

/// An MLflow schema: the alembic revision its `mlflow db upgrade` leaves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KnownSchema {
    pub mlflow: &'static str,
    pub revision: &'static str,
    snapshots: Snapshots,
}

/// A schema's DDL and the rows its `mlflow db upgrade` writes, per backend.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Snapshots {
    postgres: &'static str,
    mysql: &'static str,
    sqlite: &'static str,
}

/// `known_schemas!["1.30.1" "97727af70f4d", ...]`: the schemas, oldest first, each with the
/// snapshots schema/generate.sh made of it, embedded from `schema/<backend>/<version>_<revision>/`.
macro_rules! known_schemas {
    [$($mlflow:literal $revision:literal),+ $(,)?] => {
        &[$(KnownSchema {
            mlflow: $mlflow,
            revision: $revision,
            snapshots: Snapshots {
                postgres: include_str!(
                    concat!("../../schema/postgres/", $mlflow, "_", $revision, "/up.sql")
                ),
                mysql: include_str!(concat!("../../schema/mysql/", $mlflow, "_", $revision, "/up.sql")),
                sqlite: include_str!(
                    concat!("../../schema/sqlite/", $mlflow, "_", $revision, "/up.sql")
                ),
            },
        }),+]
    };
}

/// The schemas whose tables the delete plan knows, oldest first: each has a snapshot per
/// backend under schema/, made by that version's own MLflow (schema/generate.sh).
pub const KNOWN_SCHEMAS: &[KnownSchema] = known_schemas![
    "1.30.1" "97727af70f4d",
    "2.9.2" "acf3f17fdcc7",
    "2.16.2" "4465047574b1",
    "2.22.1" "0584bdc529eb",
    "3.0.1" "bda7b8c39065",
    "3.4.0" "71994744cf8e",
    "3.10.1" "1b5f0d9ad7c1",
    "3.17.2" "dc11669786a5",
    "3.18.0" "f4a9b2c7d1e6",
];

/// The newest schema: the one `init` creates and the mirror in `schema.rs` describes.
pub const LATEST: KnownSchema = KNOWN_SCHEMAS[KNOWN_SCHEMAS.len() - 1];

/// The MLflow version of the oldest schema `status` and `doctor` read: what they query of the
/// mirror (`schema.rs`) is the same from it on.
pub const OLDEST_INSPECTED: &str = "3.17.2";

impl KnownSchema {
    /// The known schema of an MLflow version.
    pub fn of_version(mlflow: &str) -> Option<KnownSchema> {
        KNOWN_SCHEMAS.iter().find(|known| known.mlflow == mlflow).copied()
    }

    /// The schema's DDL and the rows its `mlflow db upgrade` writes on `backend`: statements
    /// for one `batch_execute`.
    pub fn snapshot(&self, backend: Backend) -> &'static str {
        match backend {
            Backend::Postgresql => self.snapshots.postgres,
            Backend::Mysql => self.snapshots.mysql,
            Backend::Sqlite => self.snapshots.sqlite,
        }
    }

    /// The tables of the schema: those its snapshot for `backend` creates.
    pub fn tables(&self, backend: Backend) -> BTreeSet<&'static str> {
        self.snapshot(backend)
            .lines()
            .filter_map(|line| line.strip_prefix("CREATE TABLE "))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(|name| {
                // `public.runs`, `"runs"` or `` `runs` `` as each backend's dump writes it.
                let name = name.rsplit('.').next().unwrap_or(name);
                name.trim_matches(|c| c == '"' || c == '`')
            })
            .collect()
    }
}

/// The MLflow version reported for a revision mlflow-janitor does not know.
pub const UNKNOWN_VERSION: &str = "unknown";

/// Whether a store of an unknown revision may be worked on (when its foreign keys pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownRevision {
    Refuse,
    Allow,
}

/// What a store's schema holds.
#[derive(Debug, Clone)]
pub struct StoreSchema {
    /// The MLflow version of the revision, or [`UNKNOWN_VERSION`].
    pub mlflow_version: &'static str,
    pub revision: String,
    tables: BTreeSet<String>,
    /// `runs.deleted_time`: every known schema has it; a store older than all of them (allowed
    /// as unknown) may not, and then no deleted run has a date.
    pub runs_deleted_time: bool,
    /// `experiments.workspace` (MLflow 3.10 on): names are unique per workspace.
    pub workspaces: bool,
    /// `model_versions.storage_location` (MLflow 2.x and later).
    pub model_version_storage_location: bool,
}

#[derive(QueryableByName)]
struct Revision {
    #[diesel(sql_type = Text)]
    version_num: String,
}

impl StoreSchema {
    /// Reads the store's revision and tables; a revision the delete plan does not know is an
    /// error unless `unknown` allows it.
    pub fn read(
        conn: &mut DbConnection,
        uri: &StoreUri,
        unknown: UnknownRevision,
    ) -> Result<StoreSchema> {
        let tables = catalog::tables(conn)?;
        if !tables.contains("alembic_version") {
            return Err(Error::NotMlflow { uri: uri.to_string() });
        }
        let revision: Revision = diesel::sql_query("SELECT version_num FROM alembic_version")
            .get_result(conn)
            .map_err(|e| match e {
                diesel::result::Error::NotFound => Error::NotMlflow { uri: uri.to_string() },
                e => e.into(),
            })?;
        let known = KNOWN_SCHEMAS.iter().find(|known| known.revision == revision.version_num);
        let mlflow_version = match (known, unknown) {
            (Some(known), _) => known.mlflow,
            (None, UnknownRevision::Allow) => {
                tracing::warn!(
                    "schema revision `{}` is not one mlflow-janitor knows (a newer MLflow?): \
                     reading the store as MLflow {}'s",
                    revision.version_num,
                    LATEST.mlflow
                );
                UNKNOWN_VERSION
            }
            (None, UnknownRevision::Refuse) => {
                return Err(Error::UnknownSchema {
                    uri: uri.to_string(),
                    revision: revision.version_num,
                    known: KNOWN_SCHEMAS
                        .iter()
                        .map(|known| format!("{} (MLflow {})", known.revision, known.mlflow))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        };
        let runs_deleted_time = catalog::columns(conn, "runs")?.iter().any(|c| c == "deleted_time");
        let workspaces = catalog::columns(conn, "experiments")?.iter().any(|c| c == "workspace");
        let model_version_storage_location =
            catalog::columns(conn, "model_versions")?.iter().any(|c| c == "storage_location");
        Ok(StoreSchema {
            mlflow_version,
            revision: revision.version_num,
            tables,
            runs_deleted_time,
            workspaces,
            model_version_storage_location,
        })
    }

    /// Refuses a store of a schema older than [`OLDEST_INSPECTED`] for `command`, which reads
    /// only those. A store of an unknown revision (read only when allowed, with a warning) is
    /// taken for a newer MLflow's.
    pub fn require_inspectable(&self, command: &'static str, uri: &StoreUri) -> Result<()> {
        let oldest = KNOWN_SCHEMAS.iter().position(|k| k.mlflow == OLDEST_INSPECTED);
        let oldest = oldest.expect("OLDEST_INSPECTED is known");
        match KNOWN_SCHEMAS.iter().position(|k| k.revision == self.revision) {
            Some(at) if at < oldest => Err(Error::SchemaTooOld {
                command,
                uri: uri.to_string(),
                found: self.mlflow_version,
                oldest: OLDEST_INSPECTED,
            }),
            _ => Ok(()),
        }
    }

    /// The known schema of the store's revision; none for a revision mlflow-janitor does not
    /// know (read with [`UnknownRevision::Allow`]).
    pub fn known(&self) -> Option<KnownSchema> {
        KNOWN_SCHEMAS.iter().find(|known| known.revision == self.revision).copied()
    }

    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains(table)
    }

    /// True when every one of `tables` exists.
    pub fn has_tables(&self, tables: &[&str]) -> bool {
        tables.iter().all(|table| self.has_table(table))
    }
}
