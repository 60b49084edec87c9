//! The store layer: MLflow's backend store URI as a value (`uri`), connections and the pool
//! (`connection`), what a writer's session does (`session`), what the store holds ([`catalog`],
//! [`revision`]) and the disk it takes ([`space`]). Backend differences live here, never in the
//! delete plan.

pub mod catalog;
mod connection;
pub mod revision;
pub mod rows;
mod session;
pub mod space;
mod uri;

pub use connection::{Backend, DbBackend, DbConnection, DbPool, StoreConnector};
pub use session::{
    check_writable, delete_joined, delete_through_indexes, limit_session, lock_store,
    read_only_session, remote_address, write_transaction, StoreLock,
};
pub use uri::{redact, StoreUri, DEFAULT_CONNECT_TIMEOUT, DEFAULT_URI};
