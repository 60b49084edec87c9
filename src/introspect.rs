//! What the store's catalog says: which tables exist and which foreign keys tie them.

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use crate::error::Result;
use crate::store::DbConnection;

/// What the database does to a referencing row when the referenced row is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum OnDelete {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl OnDelete {
    fn from_pg(code: &str) -> Self {
        match code {
            "r" => OnDelete::Restrict,
            "c" => OnDelete::Cascade,
            "n" => OnDelete::SetNull,
            "d" => OnDelete::SetDefault,
            _ => OnDelete::NoAction,
        }
    }

    /// True when the database itself keeps the referencing row consistent on delete.
    pub fn handled_by_database(self) -> bool {
        !matches!(self, OnDelete::NoAction | OnDelete::Restrict)
    }

    pub fn as_sql(self) -> &'static str {
        match self {
            OnDelete::NoAction => "NO ACTION",
            OnDelete::Restrict => "RESTRICT",
            OnDelete::Cascade => "CASCADE",
            OnDelete::SetNull => "SET NULL",
            OnDelete::SetDefault => "SET DEFAULT",
        }
    }
}

/// One foreign key: `table` references `parent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub name: String,
    pub table: String,
    pub parent: String,
    pub on_delete: OnDelete,
}

#[derive(QueryableByName)]
struct PgForeignKey {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Text)]
    parent: String,
    #[diesel(sql_type = Text)]
    on_delete: String,
}

/// Every foreign key among the tables of the store's schema.
pub fn foreign_keys(conn: &mut DbConnection) -> Result<Vec<ForeignKey>> {
    let rows: Vec<PgForeignKey> = diesel::sql_query(
        "SELECT c.conname::text AS name, child.relname::text AS table, \
                parent.relname::text AS parent, c.confdeltype::text AS on_delete \
         FROM pg_constraint c \
         JOIN pg_class child ON child.oid = c.conrelid \
         JOIN pg_class parent ON parent.oid = c.confrelid \
         WHERE c.contype = 'f' AND child.relnamespace = current_schema()::regnamespace \
         ORDER BY 2, 1",
    )
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|fk| ForeignKey {
            on_delete: OnDelete::from_pg(&fk.on_delete),
            name: fk.name,
            table: fk.table,
            parent: fk.parent,
        })
        .collect())
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

pub fn table_exists(conn: &mut DbConnection, table: &str) -> Result<bool> {
    // to_regclass looks in the search path, as the purge's queries will; the catalog views of
    // information_schema cost milliseconds more.
    let row: Exists = diesel::sql_query("SELECT to_regclass($1) IS NOT NULL AS exists")
        .bind::<Text, _>(table)
        .get_result(conn)?;
    Ok(row.exists)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// How many tables the store's schema holds.
pub fn table_count(conn: &mut DbConnection) -> Result<i64> {
    let row: Count = diesel::sql_query(
        "SELECT count(*) AS count FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .get_result(conn)?;
    Ok(row.count)
}
