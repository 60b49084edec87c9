//! mlflow-janitor: purges what MLflow only soft-deletes from its SQL backend store.
//!
//! The library owns the domain: the schema mirror ([`schema`]), the delete plan ([`plan`]), its
//! check against the store's foreign keys ([`coverage`]), what to purge ([`scope`]) and the
//! purge itself, its safety sequence included ([`purge`]). Below them, two layers: the store
//! ([`store`]: URI, connections, sessions, catalog) and the artifacts ([`artifacts`]: locations,
//! cloud settings, storage, the sweep). The binary is a thin command-line layer over it.

pub mod artifacts;
pub mod coverage;
pub mod doctor;
pub mod error;
pub mod fresh_store;
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
/// it), it can be written, and every table that references what the plan deletes is in the plan
/// or cleared by the database. Returns what the store's schema holds.
pub fn preflight(
    conn: &mut DbConnection,
    uri: &StoreUri,
    unknown: UnknownRevision,
) -> Result<StoreSchema> {
    let schema = StoreSchema::read(conn, uri, unknown)?;
    store::check_writable(conn, uri)?;
    coverage::check_store(&catalog::foreign_keys(conn)?)?;
    Ok(schema)
}
