//! Which MLflow schema a store has: its alembic revision, the MLflow versions mlflow-janitor
//! knows, and the tables and columns that vary between them, read once before any work.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::error::{Error, Result};
use crate::introspect;
use crate::store::{DbConnection, StoreUri};

/// An MLflow schema: the alembic revision its `mlflow db upgrade` leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownSchema {
    pub mlflow: &'static str,
    pub revision: &'static str,
}

/// The schemas whose tables the delete plan knows, oldest first: each has a snapshot per
/// backend under schema/, made by that version's own MLflow (schema/generate.sh).
pub const KNOWN_SCHEMAS: &[KnownSchema] = &[
    KnownSchema { mlflow: "1.30.1", revision: "97727af70f4d" },
    KnownSchema { mlflow: "2.9.2", revision: "acf3f17fdcc7" },
    KnownSchema { mlflow: "2.16.2", revision: "4465047574b1" },
    KnownSchema { mlflow: "2.22.1", revision: "0584bdc529eb" },
    KnownSchema { mlflow: "3.0.1", revision: "bda7b8c39065" },
    KnownSchema { mlflow: "3.4.0", revision: "71994744cf8e" },
    KnownSchema { mlflow: "3.10.1", revision: "1b5f0d9ad7c1" },
    OLDEST_INSPECTED,
    LATEST,
];

/// The newest schema: the one `init` creates and the mirror in `schema.rs` describes.
pub const LATEST: KnownSchema = KnownSchema { mlflow: "3.18.0", revision: "f4a9b2c7d1e6" };

/// The oldest schema `status` and `doctor` read: what they query of the mirror (`schema.rs`)
/// is the same from MLflow 3.17.2 on.
pub const OLDEST_INSPECTED: KnownSchema =
    KnownSchema { mlflow: "3.17.2", revision: "dc11669786a5" };

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
        let tables = introspect::tables(conn)?;
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
        let runs_deleted_time =
            introspect::columns(conn, "runs")?.iter().any(|c| c == "deleted_time");
        let workspaces = introspect::columns(conn, "experiments")?.iter().any(|c| c == "workspace");
        let model_version_storage_location =
            introspect::columns(conn, "model_versions")?.iter().any(|c| c == "storage_location");
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
        let position = |revision: &str| KNOWN_SCHEMAS.iter().position(|k| k.revision == revision);
        let oldest = position(OLDEST_INSPECTED.revision).expect("OLDEST_INSPECTED is known");
        match position(&self.revision) {
            Some(at) if at < oldest => Err(Error::SchemaTooOld {
                command,
                uri: uri.to_string(),
                found: self.mlflow_version,
                oldest: OLDEST_INSPECTED.mlflow,
            }),
            _ => Ok(()),
        }
    }

    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains(table)
    }

    /// True when every one of `tables` exists.
    pub fn has_tables(&self, tables: &[&str]) -> bool {
        tables.iter().all(|table| self.has_table(table))
    }
}
