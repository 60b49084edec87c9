//! What the store's catalog says: which tables and columns exist and which foreign keys tie
//! them, read from each backend's own catalog.

use diesel::prelude::*;
use std::collections::BTreeSet;

use diesel::sql_types::Text;

use crate::error::Result;
use crate::store::{Backend, DbConnection};

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
    /// From PostgreSQL's one-letter code or the SQL words MySQL and SQLite report.
    fn parse(rule: &str) -> Self {
        match rule.to_ascii_uppercase().as_str() {
            "R" | "RESTRICT" => OnDelete::Restrict,
            "C" | "CASCADE" => OnDelete::Cascade,
            "N" | "SET NULL" => OnDelete::SetNull,
            "D" | "SET DEFAULT" => OnDelete::SetDefault,
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
struct CatalogForeignKey {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    child: String,
    #[diesel(sql_type = Text)]
    parent: String,
    #[diesel(sql_type = Text)]
    on_delete: String,
}

/// Every foreign key among the tables of the store's schema, ordered by table and name.
pub fn foreign_keys(conn: &mut DbConnection) -> Result<Vec<ForeignKey>> {
    let query = match conn.backend() {
        Backend::Postgresql => {
            "SELECT c.conname::text AS name, child.relname::text AS child, \
                    parent.relname::text AS parent, c.confdeltype::text AS on_delete \
             FROM pg_constraint c \
             JOIN pg_class child ON child.oid = c.conrelid \
             JOIN pg_class parent ON parent.oid = c.confrelid \
             WHERE c.contype = 'f' AND child.relnamespace = current_schema()::regnamespace"
        }
        Backend::Mysql => {
            "SELECT constraint_name AS name, table_name AS child, \
                    referenced_table_name AS parent, delete_rule AS on_delete \
             FROM information_schema.referential_constraints \
             WHERE constraint_schema = DATABASE()"
        }
        // SQLite keeps no constraint names: a key is named by its table and columns.
        Backend::Sqlite => {
            "SELECT m.name || '(' || group_concat(k.\"from\", ', ') || ')' AS name, \
                    m.name AS child, k.\"table\" AS parent, k.on_delete AS on_delete \
             FROM sqlite_master m, pragma_foreign_key_list(m.name) k \
             WHERE m.type = 'table' GROUP BY m.name, k.id"
        }
    };
    let mut keys: Vec<ForeignKey> = diesel::sql_query(query)
        .load::<CatalogForeignKey>(conn)?
        .into_iter()
        .map(|fk| ForeignKey {
            on_delete: OnDelete::parse(&fk.on_delete),
            name: fk.name,
            table: fk.child,
            parent: fk.parent,
        })
        .collect();
    keys.sort_by(|a, b| (&a.table, &a.name).cmp(&(&b.table, &b.name)));
    Ok(keys)
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The tables of the store's schema (the search path's first schema, the connection's
/// database, the SQLite file's main schema).
pub fn tables(conn: &mut DbConnection) -> Result<BTreeSet<String>> {
    let query = match conn.backend() {
        Backend::Postgresql => {
            "SELECT relname::text AS name FROM pg_class \
             WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p')"
        }
        Backend::Mysql => {
            "SELECT table_name AS name FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        }
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
    };
    Ok(diesel::sql_query(query).load::<Name>(conn)?.into_iter().map(|t| t.name).collect())
}

/// The columns of a table, in their order; none for a missing table.
pub fn columns(conn: &mut DbConnection, table: &str) -> Result<Vec<String>> {
    column_names(conn, table, "", "")
}

/// The columns of a table that hold what was written to them: all but those the database
/// computes (PostgreSQL's and MySQL's generated columns; SQLite's table_info lists none).
pub fn stored_columns(conn: &mut DbConnection, table: &str) -> Result<Vec<String>> {
    column_names(
        conn,
        table,
        "AND is_generated = 'NEVER'",
        "AND extra NOT IN ('VIRTUAL GENERATED', 'STORED GENERATED')",
    )
}

/// The columns of `table` that information_schema's condition (PostgreSQL's, MySQL's) keeps,
/// in their order.
fn column_names(
    conn: &mut DbConnection,
    table: &str,
    postgresql: &str,
    mysql: &str,
) -> Result<Vec<String>> {
    let query = match conn.backend() {
        Backend::Postgresql => format!(
            "SELECT column_name::text AS name FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 {postgresql} \
             ORDER BY ordinal_position"
        ),
        Backend::Mysql => format!(
            "SELECT column_name AS name FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = ? {mysql} \
             ORDER BY ordinal_position"
        ),
        Backend::Sqlite => "SELECT name FROM pragma_table_info(?) ORDER BY cid".to_owned(),
    };
    let rows = diesel::sql_query(query).bind::<Text, _>(table).load::<Name>(conn)?;
    Ok(rows.into_iter().map(|c| c.name).collect())
}

/// The columns of a table that an insert must give a value: NOT NULL, without a default, not
/// filled by the database.
pub fn required_columns(conn: &mut DbConnection, table: &str) -> Result<Vec<String>> {
    let query = match conn.backend() {
        Backend::Postgresql => {
            "SELECT column_name::text AS name FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 AND is_nullable = 'NO' \
               AND column_default IS NULL AND is_identity = 'NO'"
        }
        Backend::Mysql => {
            "SELECT column_name AS name FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = ? AND is_nullable = 'NO' \
               AND column_default IS NULL AND extra NOT LIKE '%auto_increment%'"
        }
        Backend::Sqlite => {
            "SELECT name FROM pragma_table_info(?) \
             WHERE \"notnull\" = 1 AND dflt_value IS NULL AND pk = 0"
        }
    };
    let rows = diesel::sql_query(query).bind::<Text, _>(table).load::<Name>(conn)?;
    Ok(rows.into_iter().map(|c| c.name).collect())
}

#[derive(QueryableByName)]
struct IndexColumns {
    #[diesel(sql_type = Text)]
    table_name: String,
    /// Comma-separated, in key order.
    #[diesel(sql_type = Text)]
    columns: String,
}

/// Every index (primary keys included) as its table and its columns in key order.
pub fn index_columns(conn: &mut DbConnection) -> Result<Vec<(String, Vec<String>)>> {
    let query = match conn.backend() {
        Backend::Postgresql => {
            "SELECT t.relname::text AS table_name, \
                    string_agg(a.attname::text, ',' ORDER BY k.n) AS columns \
             FROM pg_index i \
             JOIN pg_class t ON t.oid = i.indrelid \
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
             WHERE t.relnamespace = current_schema()::regnamespace \
             GROUP BY t.relname, i.indexrelid"
        }
        Backend::Mysql => {
            "SELECT table_name AS table_name, \
                    GROUP_CONCAT(column_name ORDER BY seq_in_index) AS columns \
             FROM information_schema.statistics WHERE table_schema = DATABASE() \
             GROUP BY table_name, index_name"
        }
        Backend::Sqlite => {
            "SELECT m.name AS table_name, group_concat(c.name, ',' ORDER BY c.seqno) AS columns \
             FROM sqlite_master m, pragma_index_list(m.name) i, pragma_index_info(i.name) c \
             WHERE m.type = 'table' GROUP BY m.name, i.name"
        }
    };
    let rows: Vec<IndexColumns> = diesel::sql_query(query).load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.table_name, r.columns.split(',').map(str::to_owned).collect()))
        .collect())
}
