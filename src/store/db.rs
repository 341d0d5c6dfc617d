//! The seam between the store's logic and its two databases: SQLite (embedded, the default) and
//! PostgreSQL (shared by many machines). Every query of `store/` is written once, in the SQL the
//! two share, and runs through [`Db`]; what differs between them is in this file only:
//!
//! - placeholders: the store writes SQLite's `?N` / `?`, PostgreSQL gets `$N`;
//! - the few expressions that have no common spelling, rewritten by [`DIALECT`];
//! - values: both sides convert through [`Value`] (integer, real, text, null), so an enum or a
//!   bool is written one way for both;
//! - how a transaction is opened and how finding ids are allocated under concurrency.
//!
//! The schemas differ in types only (INTEGER → BIGINT, REAL → DOUBLE PRECISION): a query that
//! runs on one runs on the other with the same result, which `tests/conformance.rs` checks.

use std::collections::HashMap;

use postgres::types::{IsNull, Type, to_sql_checked};

/// A value crossing the seam, in either direction.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
    #[error("column {column}: {reason}")]
    Type { column: usize, reason: String },
    #[error("the query returned no row")]
    NoRow,
}

impl DbError {
    /// Whether retrying on a fresh connection may succeed (the server went away, or a
    /// concurrent transaction won a race), as opposed to an error in what was asked.
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Postgres(e) => {
                // The connection is gone, or could not be made (an I/O error underneath), or
                // the server answered with a class of error that a retry can clear. A type
                // mismatch or a syntax error is none of these: retrying would not help.
                e.is_closed()
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
                    || e.code().is_some_and(|c| {
                        let c = c.code();
                        // 40: serialization failure / deadlock; 57P: admin shutdown / crash
                        // shutdown / cannot connect now; 08: connection exceptions; 23505: a
                        // unique key taken by a concurrent insert.
                        c.starts_with("40")
                            || c.starts_with("57P")
                            || c.starts_with("08")
                            || c == "23505"
                    })
            }
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }
}

/// A Rust value the store writes.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

/// A Rust value the store reads.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Result<Self, String>;
}

/// The arguments of a statement: `args![a, b, c]`.
macro_rules! args {
    () => { &[] as &[&dyn $crate::store::db::ToValue] };
    ($($v:expr),+ $(,)?) => { &[$(&$v as &dyn $crate::store::db::ToValue),+] as &[&dyn $crate::store::db::ToValue] };
}
pub(crate) use args;

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(*self as i64)
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
impl ToValue for f32 {
    fn to_value(&self) -> Value {
        Value::Real(*self as f64)
    }
}
impl FromValue for f32 {
    fn from_value(v: &Value) -> Result<Self, String> {
        f64::from_value(v).map(|x| x as f32)
    }
}
macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(*self as i64)
            }
        }
        impl FromValue for $t {
            fn from_value(v: &Value) -> Result<Self, String> {
                match v {
                    Value::Int(i) => <$t>::try_from(*i).map_err(|_| format!("{i} out of range")),
                    other => Err(format!("expected an integer, found {other:?}")),
                }
            }
        }
    )*};
}
int_value!(i64, i32, u32, u64, usize);

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}
impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Real(x) => Ok(*x),
            Value::Int(i) => Ok(*i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}
impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i != 0),
            other => Err(format!("expected a 0/1 flag, found {other:?}")),
        }
    }
}

/// Closed sets stored as their text form (the `text_enum!` types, roles, rule kinds).
macro_rules! text_value {
    ($t:ty, $to:expr, $from:expr) => {
        impl $crate::store::db::ToValue for $t {
            fn to_value(&self) -> $crate::store::db::Value {
                #[allow(clippy::redundant_closure_call)]
                $crate::store::db::Value::Text(($to)(self).to_string())
            }
        }
        impl $crate::store::db::FromValue for $t {
            fn from_value(v: &$crate::store::db::Value) -> Result<Self, String> {
                match v {
                    #[allow(clippy::redundant_closure_call)]
                    $crate::store::db::Value::Text(s) => ($from)(s.as_str()),
                    other => Err(format!("expected text, found {other:?}")),
                }
            }
        }
    };
}
pub(crate) use text_value;

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(Vec<Value>);

impl Row {
    /// Column `i` as a `T`.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, DbError> {
        let v = self.0.get(i).ok_or_else(|| DbError::Type {
            column: i,
            reason: format!("the row has {} columns", self.0.len()),
        })?;
        T::from_value(v).map_err(|reason| DbError::Type { column: i, reason })
    }
}

/// Rewrites of SQLite spellings the store uses to their PostgreSQL equivalents, applied after
/// the placeholders. Kept to expressions that have no common form.
const DIALECT: &[(&str, &str)] = &[
    (
        "strftime('%Y-%m-%dT%H:%M:%fZ','now')",
        r#"to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#,
    ),
    (
        "strftime('%Y-%m-%dT%H:%M:%SZ','now')",
        r#"to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"#,
    ),
    ("instr(", "strpos("),
];

/// The PostgreSQL text of a statement written for SQLite: `?N` → `$N`, each bare `?` → the
/// next number, outside quoted literals; then [`DIALECT`].
pub fn postgres_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut next = 1;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    out.push_str(&next.to_string());
                    next += 1;
                } else {
                    out.push_str(&digits);
                }
            }
            (None, c) => out.push(c),
        }
    }
    for (from, to) in DIALECT {
        out = out.replace(from, to);
    }
    out
}

/// An open connection to either database.
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgConn>),
}

/// A PostgreSQL connection with its prepared statements (keyed by the store's SQL).
pub(crate) struct PgConn {
    pub client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

impl PgConn {
    pub fn new(client: postgres::Client) -> PgConn {
        PgConn {
            client,
            statements: HashMap::new(),
        }
    }
}

/// Where statements run: a connection, or a transaction on one.
pub(crate) enum Db<'a, 'b> {
    Sqlite(&'a rusqlite::Connection),
    Postgres {
        tx: &'a mut postgres::Transaction<'b>,
        statements: &'a mut HashMap<String, postgres::Statement>,
    },
}

fn sqlite_params(params: &[&dyn ToValue]) -> Vec<rusqlite::types::Value> {
    params
        .iter()
        .map(|p| match p.to_value() {
            Value::Null => rusqlite::types::Value::Null,
            Value::Int(i) => rusqlite::types::Value::Integer(i),
            Value::Real(x) => rusqlite::types::Value::Real(x),
            Value::Text(s) => rusqlite::types::Value::Text(s),
        })
        .collect()
}

fn sqlite_row(r: &rusqlite::Row, n: usize) -> rusqlite::Result<Row> {
    use rusqlite::types::ValueRef;
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        values.push(match r.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Int(i),
            ValueRef::Real(x) => Value::Real(x),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Text(String::from_utf8_lossy(b).into_owned()),
        });
    }
    Ok(Row(values))
}

fn pg_values(params: &[&dyn ToValue]) -> Vec<Value> {
    params.iter().map(|p| p.to_value()).collect()
}

fn pg_refs(values: &[Value]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    values
        .iter()
        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

impl Db<'_, '_> {
    fn pg_statement(&mut self, sql: &str) -> Result<postgres::Statement, DbError> {
        let Db::Postgres { tx, statements } = self else {
            unreachable!("only called on PostgreSQL")
        };
        if let Some(s) = statements.get(sql) {
            return Ok(s.clone());
        }
        let s = tx.prepare(&postgres_sql(sql))?;
        statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    /// Run a statement; returns the rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<u64, DbError> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let n = stmt.execute(rusqlite::params_from_iter(sqlite_params(params)))?;
                Ok(n as u64)
            }
            Db::Postgres { .. } => {
                let stmt = self.pg_statement(sql)?;
                let values = pg_values(params);
                let refs = pg_refs(&values);
                let Db::Postgres { tx, .. } = self else {
                    unreachable!()
                };
                Ok(tx.execute(&stmt, &refs)?)
            }
        }
    }

    /// Every row of a query.
    pub fn query(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>, DbError> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let n = stmt.column_count();
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(sqlite_params(params)), |r| {
                        sqlite_row(r, n)
                    })?
                    .collect::<rusqlite::Result<Vec<Row>>>()?;
                Ok(rows)
            }
            Db::Postgres { .. } => {
                let stmt = self.pg_statement(sql)?;
                let values = pg_values(params);
                let refs = pg_refs(&values);
                let Db::Postgres { tx, .. } = self else {
                    unreachable!()
                };
                let rows = tx.query(&stmt, &refs)?;
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| r.try_get::<_, Value>(i).map_err(DbError::from))
                            .collect::<Result<Vec<Value>, DbError>>()
                            .map(Row)
                    })
                    .collect()
            }
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt(
        &mut self,
        sql: &str,
        params: &[&dyn ToValue],
    ) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of a query, which must exist.
    pub fn query_one(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Row, DbError> {
        self.query_opt(sql, params)?.ok_or(DbError::NoRow)
    }

    /// Column 0 of every row.
    pub fn column<T: FromValue>(
        &mut self,
        sql: &str,
        params: &[&dyn ToValue],
    ) -> Result<Vec<T>, DbError> {
        self.query(sql, params)?.iter().map(|r| r.get(0)).collect()
    }

    /// Serialise allocation of new finding ids (max + 1) among concurrent writers. SQLite has
    /// one writer at a time already; PostgreSQL takes a transaction-scoped advisory lock.
    pub fn lock_finding_ids(&mut self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(_) => Ok(()),
            Db::Postgres { .. } => {
                self.query("SELECT pg_advisory_xact_lock(4242001)", args![])?;
                Ok(())
            }
        }
    }
}

impl Conn {
    /// Run `f` in one transaction: committed if it returns Ok, rolled back otherwise.
    pub fn transaction<T, E: From<DbError>>(
        &mut self,
        f: impl FnOnce(&mut Db) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Conn::Sqlite(c) => {
                let tx = c.transaction().map_err(DbError::from)?;
                let out = f(&mut Db::Sqlite(&tx))?;
                tx.commit().map_err(DbError::from)?;
                Ok(out)
            }
            Conn::Postgres(pg) => {
                let mut tx = pg.client.transaction().map_err(DbError::from)?;
                let out = f(&mut Db::Postgres {
                    tx: &mut tx,
                    statements: &mut pg.statements,
                })?;
                tx.commit().map_err(DbError::from)?;
                Ok(out)
            }
        }
    }

    /// Run `f` outside an explicit transaction (SQLite) or in a short one (PostgreSQL, whose
    /// statements run in a transaction anyway).
    pub fn run<T, E: From<DbError>>(
        &mut self,
        f: impl FnOnce(&mut Db) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Conn::Sqlite(c) => f(&mut Db::Sqlite(c)),
            Conn::Postgres(_) => self.transaction(f),
        }
    }

    /// A statement cache is tied to the connection that prepared it: drop it with the connection.
    pub fn forget_statements(&mut self) {
        if let Conn::Postgres(pg) = self {
            pg.statements.clear();
        }
    }
}

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Real(x), &Type::FLOAT8) => x.to_sql(ty, out),
            (Value::Real(x), &Type::FLOAT4) => (*x as f32).to_sql(ty, out),
            (Value::Text(s), _) if <&str as postgres::types::ToSql>::accepts(ty) => {
                s.as_str().to_sql(ty, out)
            }
            (v, ty) => Err(format!("cannot send {v:?} as PostgreSQL {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> postgres::types::FromSql<'a> for Value {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Value, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::FromSql;
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)? as i64),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)? as i64),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)? as i64),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)? as f64),
            Type::VOID => Value::Null,
            _ if <&str as FromSql>::accepts(ty) => Value::Text(<&str>::from_sql(ty, raw)?.into()),
            _ => return Err(format!("unexpected PostgreSQL type {ty} in a result").into()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Value, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_dialect_become_postgres() {
        assert_eq!(
            postgres_sql("SELECT a FROM t WHERE x = ?2 AND y = ?1 AND z LIKE '%?%'"),
            "SELECT a FROM t WHERE x = $2 AND y = $1 AND z LIKE '%?%'"
        );
        assert_eq!(postgres_sql("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert!(postgres_sql("SET at = strftime('%Y-%m-%dT%H:%M:%fZ','now')").contains("to_char("));
        assert_eq!(postgres_sql("instr(t, ?) > 0"), "strpos(t, $1) > 0");
    }

    #[test]
    fn values_convert_both_ways() {
        assert_eq!(bool::from_value(&true.to_value()), Ok(true));
        assert!(u32::from_value(&Value::Int(-1)).is_err());
        assert_eq!(f64::from_value(&Value::Int(3)), Ok(3.0));
        assert_eq!(Option::<String>::from_value(&Value::Null), Ok(None));
        assert!(String::from_value(&Value::Int(1)).is_err());
    }
}
