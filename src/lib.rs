//! mlflow-janitor: purges what MLflow only soft-deletes from its SQL backend store.
//!
//! The library owns the domain: the schema mirror ([`schema`]) and what its rows mean
//! ([`mlflow`]: each kind's typed id, MLflow's deletion marks), what to purge ([`scope`]), the
//! delete plan ([`plan`]), its check against the store's foreign keys ([`coverage`]) and the
//! purge itself, its safety sequence and its read-only dry run included ([`purge`]), and the
//! archive a purge may write and the restore that reads it back ([`archive`]). Below them, two
//! layers: the store ([`store`]: URI, connections, sessions, catalog, rows as values) and the
//! artifacts ([`artifacts`]: locations, cloud settings, storage, the sweep). The binary is a
//! thin command-line layer over it.

pub mod archive;
pub mod artifacts;
pub mod coverage;
pub mod doctor;
pub mod error;
pub mod fresh_store;
pub mod mlflow;
pub mod plan;
pub mod purge;
#[rustfmt::skip]
pub mod schema;
pub mod scope;
pub mod status;
pub mod store;
#[cfg(feature = "test-store")]
pub mod test_store;

pub use error::{Error, Result};
use store::catalog;
pub use store::revision::{StoreSchema, UnknownRevision};
pub use store::{Backend, DbConnection, StoreUri};

/// Checks that a store can be purged safely: its schema revision is known (or `unknown` allows
/// it), every table of the plan can be deleted from (when the purge `writes`: not a dry run),
/// and every table that references what the plan deletes is in the plan or cleared by the
/// database. Returns what the store's schema holds.
pub fn preflight(
    conn: &mut DbConnection,
    uri: &StoreUri,
    unknown: UnknownRevision,
    writes: bool,
) -> Result<StoreSchema> {
    let schema = StoreSchema::read(conn, uri, unknown)?;
    if writes {
        store::check_writable(conn, uri, &plan::tables_in(&schema))?;
    }
    coverage::check_store(&catalog::foreign_keys(conn)?)?;
    Ok(schema)
}
