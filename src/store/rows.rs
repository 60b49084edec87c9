//! Rows of any table as plain values: read by the columns a store has, written back by them.
//! The archive keeps a purge's rows this way and restores them. Each column's kind comes from
//! the schema mirror ([`crate::schema`]), so a row reads the same whatever backend held it; how
//! each backend hands its values over is decoded here, and only here.

use std::fmt;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, ValidGrouping,
};
use diesel::mysql::data_types::MysqlTime;
use diesel::mysql::{Mysql, MysqlType, MysqlValue};
use diesel::pg::data_types::PgDate;
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::row::{Field, Row};
use diesel::sql_types::{
    BigInt, Binary, Bool, Date, Double, Integer, Json, Nullable, Text, Untyped,
};
use diesel::sqlite::{Sqlite, SqliteType, SqliteValue};

use super::connection::MultiRawValue;
use super::{Backend, DbBackend, DbConnection};

/// What a column holds, as the schema mirror declares it: the same on every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Text,
    /// JSON, kept as the text the store holds.
    Json,
    /// A calendar date, as `YYYY-MM-DD`.
    Date,
    Integer,
    BigInt,
    Double,
    Bool,
    Bytes,
}

/// The [`Kind`] of a diesel SQL type of the schema mirror.
pub trait KindOf {
    const KIND: Kind;
    const NULLABLE: bool = false;
}

macro_rules! kind_of {
    ($($sql:ty => $kind:ident),+ $(,)?) => {
        $(impl KindOf for $sql {
            const KIND: Kind = Kind::$kind;
        })+
    };
}

kind_of!(
    Text => Text, Json => Json, Date => Date, Integer => Integer, BigInt => BigInt,
    Double => Double, Bool => Bool, Binary => Bytes,
);

impl<T: KindOf + diesel::sql_types::SqlType> KindOf for Nullable<T> {
    const KIND: Kind = T::KIND;
    const NULLABLE: bool = true;
}

/// A column of the schema mirror.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub kind: Kind,
    pub nullable: bool,
}

/// The columns of a table's `all_columns` tuple, in order.
pub trait Columns {
    fn defs() -> Vec<ColumnDef>;
}

macro_rules! columns_of_tuple {
    ($($column:ident),+) => {
        impl<$($column),+> Columns for ($($column,)+)
        where
            $($column: diesel::Column, <$column as Expression>::SqlType: KindOf,)+
        {
            fn defs() -> Vec<ColumnDef> {
                vec![$(ColumnDef {
                    name: $column::NAME.to_owned(),
                    kind: <<$column as Expression>::SqlType as KindOf>::KIND,
                    nullable: <<$column as Expression>::SqlType as KindOf>::NULLABLE,
                }),+]
            }
        }
    };
}

/// Implements [`Columns`] for every tuple length up to the longest the list names.
macro_rules! columns_of_tuples {
    ($head:ident) => {
        columns_of_tuple!($head);
    };
    ($head:ident, $($tail:ident),+) => {
        columns_of_tuple!($head, $($tail),+);
        columns_of_tuples!($($tail),+);
    };
}

columns_of_tuples!(
    C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17, C18, C19, C20, C21,
    C22, C23, C24
);

/// The columns of a table of the schema mirror.
pub fn columns_of<T: diesel::Table>() -> Vec<ColumnDef>
where
    T::AllColumns: Columns,
{
    T::AllColumns::defs()
}

/// One value of a row. Integers of any width are `Int`; text, JSON and dates are `Text`.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Int(i64),
    Double(f64),
    Text(String),
    Bool(bool),
    Bytes(Vec<u8>),
}

/// Exact equality: doubles by their bits, so NaN equals NaN and -0.0 is not 0.0.
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Double(a), Value::Double(b)) => a.to_bits() == b.to_bits(),
            (Value::Text(a), Value::Text(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(n) => n.fmt(f),
            Value::Double(x) => x.fmt(f),
            Value::Text(s) => s.fmt(f),
            Value::Bool(b) => b.fmt(f),
            Value::Bytes(b) => write!(f, "{} bytes", b.len()),
        }
    }
}

impl Value {
    /// The value as a column of `kind` holds it, whatever form the backend gave it in (SQLite
    /// and MySQL keep booleans as integers and JSON as text; SQLite may keep text as a blob).
    pub fn into_kind(self, kind: Kind) -> Result<Value, String> {
        Ok(match (kind, self) {
            (_, Value::Null) => Value::Null,
            (Kind::Text | Kind::Json | Kind::Date, Value::Text(s)) => Value::Text(s),
            (Kind::Text | Kind::Json | Kind::Date, Value::Bytes(b)) => {
                Value::Text(String::from_utf8(b).map_err(|_| "text that is not UTF-8")?)
            }
            // SQLite keeps a number written to a column of text or JSON as a number.
            (Kind::Text | Kind::Json, Value::Int(n)) => Value::Text(n.to_string()),
            (Kind::Text | Kind::Json, Value::Double(x)) => Value::Text(x.to_string()),
            (Kind::Integer | Kind::BigInt, Value::Int(n)) => Value::Int(n),
            (Kind::Integer | Kind::BigInt, Value::Bool(b)) => Value::Int(i64::from(b)),
            (Kind::Double, Value::Double(x)) => Value::Double(x),
            (Kind::Double, Value::Int(n)) => Value::Double(n as f64),
            (Kind::Bool, Value::Bool(b)) => Value::Bool(b),
            (Kind::Bool, Value::Int(n)) => Value::Bool(n != 0),
            (Kind::Bytes, Value::Bytes(b)) => Value::Bytes(b),
            (Kind::Bytes, Value::Text(s)) => Value::Bytes(s.into_bytes()),
            (kind, value) => return Err(format!("{value:?} in a column of kind {kind:?}")),
        })
    }
}

/// A row as the store gave it, decoded by each value's type on the wire.
pub struct RawRow(Vec<Value>);

impl FromSqlRow<Untyped, DbBackend> for RawRow {
    fn build_from_row<'a>(row: &impl Row<'a, DbBackend>) -> deserialize::Result<Self> {
        let mut values = Vec::with_capacity(row.field_count());
        for index in 0..row.field_count() {
            let field = row.get(index).ok_or("a field of the row is missing")?;
            values.push(match field.value() {
                None => Value::Null,
                Some(MultiRawValue::Postgresql(value)) => from_postgresql(value)?,
                Some(MultiRawValue::Mysql(value)) => from_mysql(value)?,
                Some(MultiRawValue::Sqlite(value)) => from_sqlite(value)?,
            });
        }
        Ok(RawRow(values))
    }
}

fn from_postgresql(value: PgValue<'_>) -> deserialize::Result<Value> {
    // The type OIDs of pg_type.h.
    Ok(match value.get_oid().get() {
        16 => Value::Bool(<bool as FromSql<Bool, Pg>>::from_sql(value)?),
        17 => Value::Bytes(value.as_bytes().to_vec()),
        20 => Value::Int(<i64 as FromSql<BigInt, Pg>>::from_sql(value)?),
        21 => {
            Value::Int(<i16 as FromSql<diesel::sql_types::SmallInt, Pg>>::from_sql(value)?.into())
        }
        23 => Value::Int(<i32 as FromSql<Integer, Pg>>::from_sql(value)?.into()),
        700 => {
            Value::Double(<f32 as FromSql<diesel::sql_types::Float, Pg>>::from_sql(value)?.into())
        }
        701 => Value::Double(<f64 as FromSql<Double, Pg>>::from_sql(value)?),
        1082 => {
            let PgDate(days) = <PgDate as FromSql<Date, Pg>>::from_sql(value)?;
            // Days since 2000-01-01, which is day 10,957 of the Unix epoch.
            Value::Text(civil_date(i64::from(days) + 10_957))
        }
        // text, varchar, bpchar, name and json travel as their text.
        25 | 1043 | 1042 | 19 | 114 => {
            Value::Text(std::str::from_utf8(value.as_bytes())?.to_owned())
        }
        // jsonb: a version byte, then the text.
        3802 => Value::Text(std::str::from_utf8(&value.as_bytes()[1..])?.to_owned()),
        oid => {
            return Err(
                format!("a column of PostgreSQL type OID {oid}, which MLflow does not use").into()
            )
        }
    })
}

fn from_mysql(value: MysqlValue<'_>) -> deserialize::Result<Value> {
    Ok(match value.value_type() {
        MysqlType::Tiny
        | MysqlType::UnsignedTiny
        | MysqlType::Short
        | MysqlType::UnsignedShort
        | MysqlType::Long
        | MysqlType::UnsignedLong
        | MysqlType::LongLong
        | MysqlType::UnsignedLongLong => {
            Value::Int(<i64 as FromSql<BigInt, Mysql>>::from_sql(value)?)
        }
        MysqlType::Float | MysqlType::Double => {
            Value::Double(<f64 as FromSql<Double, Mysql>>::from_sql(value)?)
        }
        MysqlType::Date => {
            let date = <MysqlTime as FromSql<Date, Mysql>>::from_sql(value)?;
            Value::Text(format!("{:04}-{:02}-{:02}", date.year, date.month, date.day))
        }
        MysqlType::Blob => Value::Bytes(value.as_bytes().to_vec()),
        MysqlType::String | MysqlType::Numeric | MysqlType::Enum | MysqlType::Set => {
            Value::Text(std::str::from_utf8(value.as_bytes())?.to_owned())
        }
        other => {
            return Err(
                format!("a column of MySQL type {other:?}, which MLflow does not use").into()
            )
        }
    })
}

fn from_sqlite(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Value> {
    Ok(match value.value_type() {
        None => Value::Null,
        Some(SqliteType::Text) => Value::Text(value.read_text().to_owned()),
        Some(SqliteType::Binary) => Value::Bytes(value.read_blob().to_vec()),
        Some(SqliteType::Double | SqliteType::Float) => Value::Double(value.read_double()),
        Some(_) => Value::Int(<i64 as FromSql<BigInt, Sqlite>>::from_sql(value)?),
    })
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (the proleptic Gregorian calendar).
fn civil_date(days: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The columns of a table that a store has, as the schema mirror declares them: what a select
/// reads and an insert writes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableColumns {
    pub table: String,
    pub columns: Vec<ColumnDef>,
}

impl TableColumns {
    /// Decodes a row read by [`TableColumns`] as a select clause, in place.
    fn decode(&self, RawRow(mut values): RawRow) -> Result<Vec<Value>, String> {
        for (value, column) in values.iter_mut().zip(&self.columns) {
            *value = std::mem::replace(value, Value::Null)
                .into_kind(column.kind)
                .map_err(|why| format!("{}.{}: {why}", self.table, column.name))?;
        }
        Ok(values)
    }

    pub fn position(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == column)
    }
}

impl Expression for TableColumns {
    type SqlType = Untyped;
}

impl<QS> AppearsOnTable<QS> for TableColumns {}
impl<QS> SelectableExpression<QS> for TableColumns {}

impl ValidGrouping<()> for TableColumns {
    type IsAggregate = is_aggregate::Never;
}

impl QueryId for TableColumns {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<DbBackend> for TableColumns {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DbBackend>) -> QueryResult<()> {
        for (index, column) in self.columns.iter().enumerate() {
            if index > 0 {
                out.push_sql(", ");
            }
            out.push_identifier(&self.table)?;
            out.push_sql(".");
            out.push_identifier(&column.name)?;
        }
        Ok(())
    }
}

/// Rows a delete handed to the archive, and rows it deleted: a caller wants them equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archived {
    pub rows: u64,
    pub deleted: u64,
}

/// Runs `delete` and hands each row it deletes, as `columns`, to `sink`: on PostgreSQL and
/// SQLite from the delete itself (`RETURNING`); on MySQL, which has no `RETURNING`, from
/// `select` (the same filter, `columns` as its select clause) run `FOR UPDATE` first, so that
/// the delete then finds the rows read, values included, and no other.
pub fn delete_archived<S, D, E>(
    select: S,
    delete: D,
    conn: &mut DbConnection,
    columns: &TableColumns,
    sink: &mut dyn FnMut(Vec<Value>) -> Result<(), E>,
) -> Result<Archived, E>
where
    S: Query<SqlType = Untyped> + QueryFragment<DbBackend>,
    D: QueryFragment<DbBackend>,
    E: From<diesel::result::Error>,
{
    if conn.backend() == Backend::Mysql {
        let rows = stream(ForUpdate(select), conn, columns, sink)?;
        let deleted = Statement(delete).execute(conn)? as u64;
        return Ok(Archived { rows, deleted });
    }
    let rows = stream(Returning { delete, columns }, conn, columns, sink)?;
    Ok(Archived { rows, deleted: rows })
}

/// Hands each row of `query` to `sink` as it comes, decoded as `columns`; returns how many.
fn stream<Q, E>(
    query: Q,
    conn: &mut DbConnection,
    columns: &TableColumns,
    sink: &mut dyn FnMut(Vec<Value>) -> Result<(), E>,
) -> Result<u64, E>
where
    Q: Query<SqlType = Untyped> + QueryFragment<DbBackend>,
    E: From<diesel::result::Error>,
{
    let mut rows = 0;
    let query = Statement(query);
    for row in query.load_iter::<RawRow, diesel::connection::DefaultLoadingMode>(conn)? {
        let values = columns
            .decode(row?)
            .map_err(|why| diesel::result::Error::DeserializationError(why.into()))?;
        sink(values)?;
        rows += 1;
    }
    Ok(rows)
}

/// A statement of this module's, run as it is written: its text varies with the columns, so
/// it stays out of the prepared-statement cache.
struct Statement<Q>(Q);

impl<Q> QueryId for Statement<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Statement<Q> {
    type SqlType = Q::SqlType;
}

impl<Q> RunQueryDsl<DbConnection> for Statement<Q> {}

impl<Q: QueryFragment<DbBackend>> QueryFragment<DbBackend> for Statement<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DbBackend>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        self.0.walk_ast(out)
    }
}

/// `DELETE FROM table WHERE filter`, for a filter that reads other tables through subqueries.
/// MariaDB (before 11.1) plans a single-table delete's `IN (subquery)` as the subquery
/// run for every row of the table, locking every row it reads: its multi-table form, `DELETE
/// table FROM table WHERE filter`, is planned as a join, through the indexes, and locks little
/// more than what it deletes. Run it past safe updates: [`crate::store::delete_joined`].
pub struct DeleteJoined<F> {
    pub table: &'static str,
    pub filter: F,
    pub backend: Backend,
}

impl<F> QueryId for DeleteJoined<F> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<F> RunQueryDsl<DbConnection> for DeleteJoined<F> {}

impl<F: QueryFragment<DbBackend>> QueryFragment<DbBackend> for DeleteJoined<F> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DbBackend>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("DELETE ");
        if self.backend == Backend::Mysql {
            out.push_identifier(self.table)?;
            out.push_sql(" ");
        }
        out.push_sql("FROM ");
        out.push_identifier(self.table)?;
        out.push_sql(" WHERE ");
        self.filter.walk_ast(out.reborrow())
    }
}

/// `query FOR UPDATE`.
struct ForUpdate<Q>(Q);

impl<Q: Query> Query for ForUpdate<Q> {
    type SqlType = Q::SqlType;
}

impl<Q: QueryFragment<DbBackend>> QueryFragment<DbBackend> for ForUpdate<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DbBackend>) -> QueryResult<()> {
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(" FOR UPDATE");
        Ok(())
    }
}

/// `delete RETURNING` the columns, by their names alone (as SQLite takes them).
struct Returning<'a, D> {
    delete: D,
    columns: &'a TableColumns,
}

impl<D> Query for Returning<'_, D> {
    type SqlType = Untyped;
}

impl<D: QueryFragment<DbBackend>> QueryFragment<DbBackend> for Returning<'_, D> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DbBackend>) -> QueryResult<()> {
        self.delete.walk_ast(out.reborrow())?;
        out.push_sql(" RETURNING ");
        for (index, column) in self.columns.columns.iter().enumerate() {
            if index > 0 {
                out.push_sql(", ");
            }
            out.push_identifier(&column.name)?;
        }
        Ok(())
    }
}

/// Binds per statement: within every backend's limit (SQLite's is the lowest, 32,766).
const MAX_BINDS: usize = 20_000;

/// Inserts `rows` (values in the order of `columns`) into `columns.table`, in as few statements
/// as the backends' bind limits allow; returns the rows inserted.
pub fn insert_rows(
    conn: &mut DbConnection,
    columns: &TableColumns,
    rows: &[Vec<Value>],
) -> QueryResult<usize> {
    let backend = conn.backend();
    let per_statement = (MAX_BINDS / columns.columns.len().max(1)).max(1);
    let mut inserted = 0;
    for chunk in rows.chunks(per_statement) {
        inserted += InsertRows { columns, rows: chunk, backend }.execute(conn)?;
    }
    Ok(inserted)
}

struct InsertRows<'a> {
    columns: &'a TableColumns,
    rows: &'a [Vec<Value>],
    backend: Backend,
}

impl QueryId for InsertRows<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl RunQueryDsl<DbConnection> for InsertRows<'_> {}

impl QueryFragment<DbBackend> for InsertRows<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DbBackend>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("INSERT INTO ");
        out.push_identifier(&self.columns.table)?;
        out.push_sql(" (");
        for (index, column) in self.columns.columns.iter().enumerate() {
            if index > 0 {
                out.push_sql(", ");
            }
            out.push_identifier(&column.name)?;
        }
        out.push_sql(") VALUES ");
        for (row_index, row) in self.rows.iter().enumerate() {
            out.push_sql(if row_index == 0 { "(" } else { ", (" });
            for (index, (value, column)) in row.iter().zip(&self.columns.columns).enumerate() {
                if index > 0 {
                    out.push_sql(", ");
                }
                push_value(&mut out, value, column.kind, self.backend)?;
            }
            out.push_sql(")");
        }
        Ok(())
    }
}

/// Binds one value as its column's kind takes it. PostgreSQL takes JSON and dates only from
/// their own types: the text is cast there.
fn push_value<'b>(
    out: &mut AstPass<'_, 'b, DbBackend>,
    value: &'b Value,
    kind: Kind,
    backend: Backend,
) -> QueryResult<()> {
    let cast = match (backend, kind) {
        (Backend::Postgresql, Kind::Json) => Some(" AS json)"),
        (Backend::Postgresql, Kind::Date) => Some(" AS date)"),
        _ => None,
    };
    if cast.is_some() && *value != Value::Null {
        out.push_sql("CAST(");
    }
    match value {
        Value::Null => out.push_sql("NULL"),
        Value::Int(n) => out.push_bind_param::<BigInt, i64>(n)?,
        Value::Double(x) => out.push_bind_param::<Double, f64>(x)?,
        Value::Text(s) => out.push_bind_param::<Text, String>(s)?,
        Value::Bool(b) => out.push_bind_param::<Bool, bool>(b)?,
        Value::Bytes(b) => out.push_bind_param::<Binary, Vec<u8>>(b)?,
    }
    if let (Some(cast), false) = (cast, *value == Value::Null) {
        out.push_sql(cast);
    }
    Ok(())
}

/// The rows of `columns.table` whose `key` columns hold one of `keys` (each in `key`'s order).
pub fn rows_by_key(
    conn: &mut DbConnection,
    columns: &TableColumns,
    key: &[usize],
    keys: &[Vec<Value>],
) -> QueryResult<Vec<Vec<Value>>> {
    // SQLite parses an OR chain as deep as it is long, and allows 1,000 levels.
    let per_statement = (MAX_BINDS / key.len().max(1)).clamp(1, 500);
    let mut rows = Vec::new();
    for chunk in keys.chunks(per_statement) {
        let query = SelectByKey { columns, key, keys: chunk };
        let raw: Vec<RawRow> = query.load(conn)?;
        for row in raw {
            rows.push(
                columns
                    .decode(row)
                    .map_err(|why| diesel::result::Error::DeserializationError(why.into()))?,
            );
        }
    }
    Ok(rows)
}

struct SelectByKey<'a> {
    columns: &'a TableColumns,
    key: &'a [usize],
    keys: &'a [Vec<Value>],
}

impl QueryId for SelectByKey<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for SelectByKey<'_> {
    type SqlType = Untyped;
}

impl RunQueryDsl<DbConnection> for SelectByKey<'_> {}

impl QueryFragment<DbBackend> for SelectByKey<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DbBackend>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("SELECT ");
        self.columns.walk_ast(out.reborrow())?;
        out.push_sql(" FROM ");
        out.push_identifier(&self.columns.table)?;
        out.push_sql(" WHERE 1 = 0");
        for values in self.keys {
            out.push_sql(" OR (");
            for (index, (&column, value)) in self.key.iter().zip(values).enumerate() {
                if index > 0 {
                    out.push_sql(" AND ");
                }
                out.push_identifier(&self.columns.columns[column].name)?;
                match value {
                    Value::Null => out.push_sql(" IS NULL"),
                    Value::Int(n) => {
                        out.push_sql(" = ");
                        out.push_bind_param::<BigInt, i64>(n)?;
                    }
                    Value::Text(s) => {
                        out.push_sql(" = ");
                        out.push_bind_param::<Text, String>(s)?;
                    }
                    other => {
                        return Err(diesel::result::Error::QueryBuilderError(
                            format!("a key of {other:?}").into(),
                        ))
                    }
                }
            }
            out.push_sql(")");
        }
        Ok(())
    }
}

/// Moves PostgreSQL's id sequences of `tables` past their largest id, so that the next row
/// MLflow creates does not take a restored id. MySQL and SQLite move theirs on insert.
pub fn advance_sequences(conn: &mut DbConnection, tables: &[&str]) -> QueryResult<()> {
    if conn.backend() != Backend::Postgresql {
        return Ok(());
    }
    #[derive(QueryableByName)]
    struct Sequence {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
        #[diesel(sql_type = Text)]
        sequence: String,
    }
    let sequences: Vec<Sequence> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, \
           pg_get_serial_sequence(quote_ident(table_name), column_name)::text AS sequence \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() \
           AND pg_get_serial_sequence(quote_ident(table_name), column_name) IS NOT NULL",
    )
    .load(conn)?;
    for Sequence { table_name, column_name, sequence } in sequences {
        if !tables.contains(&table_name.as_str()) {
            continue;
        }
        // Never backwards: ids the sequence gave out since stay given.
        diesel::sql_query(format!(
            "SELECT setval($1, GREATEST((SELECT last_value FROM {sequence}), \
               (SELECT COALESCE(MAX({column}), 1) FROM {table})))",
            column = quote(&column_name),
            table = quote(&table_name),
        ))
        .bind::<Text, _>(&sequence)
        .execute(conn)?;
    }
    Ok(())
}

/// A PostgreSQL identifier, quoted.
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(10_957), "2000-01-01");
        assert_eq!(civil_date(19_782), "2024-02-29");
        assert_eq!(civil_date(-1), "1969-12-31");
    }
}
