//! Storage: every call, its transcript, tone windows, findings, scores and failures.
//!
//! [`Store`] is the interface the rest of callqc uses (all SQL lives under `store/`): typed
//! calls only ([`Store::save_call`] takes a [`CallMeta`] and its [`CallRows`]); the sink that
//! turns a session's events into them is `pipeline::sinks::StoreSink`. It runs on
//! SQLite (a file: the embedded default, one machine) or PostgreSQL (`postgres://…`: one store
//! and work queue shared by many machines). The store's logic — what a transaction holds, how
//! verdicts carry over, how a score is recomputed — is written once; [`db`] is the seam where
//! the two databases differ (placeholders, a few expressions, value conversion).
//!
//! - [`db`]: the seam: [`db::Db`] runs the store's SQL on either database;
//! - [`schema`]: the versioned schemas and their migrations (SQLite's `PRAGMA user_version`,
//!   PostgreSQL's `callqc_schema` table);
//! - [`queue`]: PostgreSQL's work queue: calls enqueued once, claimed under a lease by any
//!   number of workers, completed in the transaction that stores the call (fenced on the lease);
//! - [`mod@write`]: one transaction per call, so a batch killed at any moment leaves whole calls only;
//! - [`read`]: what `rescore`, `show`, `eval` and `tone fit` read back;
//! - [`review`]: trainers' verdicts, appeals and their rulings, calibration rounds, the history;
//! - [`query`]: flagged calls under filters, per-rule precision, the report's figures;
//! - [`types`]: the closed sets the tables hold (status, review state, source, role).
//!
//! SQLite runs in WAL mode with a busy timeout (30 s; `CALLQC_DB_BUSY_TIMEOUT_MS`), so trainers
//! can read while a batch writes. `CALLQC_DB_MAX_PAGES` caps the file at that many 4 KiB pages
//! (a quota: writes past it fail with "database or disk is full", as on a full disk).

pub mod db;
pub mod live;
pub mod query;
pub mod queue;
pub mod read;
pub mod review;
pub mod schema;
pub mod types;
pub mod write;

pub use live::{AlertRecord, LiveCallRecord};
pub use query::{
    AlertDay, FindingFact, FlaggedCall, FlaggedOrder, FlaggedQuery, Period, RuleStats, ScoredCall,
};
pub use read::{RawText, StoredCall, StoredFinding, StoredScore, ToneFeatureRow};
pub use review::{CalibrationRecord, FindingOfCall, VerdictRecord};
pub use types::{
    AlertKind, AppealState, CallStatus, EndReason, IngestProtocol, Kind, ReviewState, Source,
    VerdictAction,
};
pub use write::{CallMeta, CallRows};

pub use db::DbError;
pub use queue::{Lease, QueueCounts};

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use db::{Conn, Db, PgConn};

/// Errors of the storage layer (each names the database).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{at}: {source}")]
    Db { at: String, source: DbError },
    #[error(
        "{at}: database schema version {found} is newer than this callqc understands ({known}); upgrade callqc"
    )]
    TooNew { at: String, found: i64, known: i64 },
    #[error("{at}: no call matches '{query}'")]
    NoSuchCall { at: String, query: String },
    #[error("{at}: no finding {id}")]
    NoSuchFinding { at: String, id: i64 },
    /// A verdict the review workflow does not allow (the finding is unchanged).
    #[error("finding {id}: {reason}")]
    Refused { id: i64, reason: String },
    /// The worker's lease on a queued call ended (it expired and another worker took the call):
    /// what this worker computed is not stored.
    #[error("{at}: lease lost on call {call_key}: another worker owns it now; nothing written")]
    LeaseLost { at: String, call_key: String },
    /// Something only the PostgreSQL store does (the work queue) asked of a SQLite file.
    #[error("{at}: {what} needs a PostgreSQL store (--db postgres://…)")]
    NeedsPostgres { at: String, what: &'static str },
}

impl From<DbError> for StoreError {
    /// A database error whose location [`Store`] fills in.
    fn from(source: DbError) -> StoreError {
        StoreError::Db {
            at: String::new(),
            source,
        }
    }
}

impl StoreError {
    /// Whether retrying (on a fresh connection) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Db { source, .. } if source.is_transient())
    }
}

/// What a run did, for its record.
#[derive(Debug, Clone, Default)]
pub struct RunTotals {
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
    pub audio_s: f64,
    pub wall_s: f64,
    /// JSON: seconds per stage.
    pub stages_json: String,
}

/// Every table's rows as text, per table in a canonical order ([`Store::dump`]).
pub type Dump = Vec<(String, Vec<String>)>;

/// Which database a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An open callqc store.
pub struct Store {
    conn: Mutex<Conn>,
    /// The file path, or the connection string without its password (for messages).
    location: String,
    /// PostgreSQL: the connection string, to reconnect after the server restarts.
    url: Option<String>,
    /// Set by a queue worker: every call written is fenced on this lease.
    fence: Option<Lease>,
}

/// Whether `--db` names a PostgreSQL server rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// A connection string with its password replaced, for messages and logs.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

impl Store {
    /// Open (creating and migrating if needed) the store `--db` names: a SQLite file, or a
    /// PostgreSQL server given as `postgres://…`.
    pub fn open(db: &Path) -> Result<Store, StoreError> {
        let text = db.to_string_lossy();
        if is_postgres_url(&text) {
            return Store::open_postgres(&text);
        }
        let at = db.display().to_string();
        let err = |e: rusqlite::Error| StoreError::Db {
            at: at.clone(),
            source: e.into(),
        };
        let conn = rusqlite::Connection::open(db).map_err(err)?;
        conn.busy_timeout(sqlite_busy_timeout()).map_err(err)?;
        if let Some(pages) = env_number("CALLQC_DB_MAX_PAGES") {
            conn.pragma_update(None, "max_page_count", pages as i64)
                .map_err(err)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        let mut store = Store {
            conn: Mutex::new(Conn::Sqlite(conn)),
            location: at,
            url: None,
            fence: None,
        };
        schema::migrate(&mut store)?;
        Ok(store)
    }

    fn open_postgres(url: &str) -> Result<Store, StoreError> {
        let at = redacted_url(url);
        let client = postgres_client(url).map_err(|source| StoreError::Db {
            at: at.clone(),
            source,
        })?;
        let mut store = Store {
            conn: Mutex::new(Conn::Postgres(Box::new(PgConn::new(client)))),
            location: at,
            url: Some(url.to_string()),
            fence: None,
        };
        schema::migrate(&mut store)?;
        Ok(store)
    }

    /// Where the store is (a file path, or the connection string without its password).
    pub fn location(&self) -> String {
        self.location.clone()
    }

    pub fn backend(&self) -> Backend {
        if self.url.is_some() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// Fence every call this store writes on `lease` (a queue worker's claim), or stop.
    pub fn set_fence(&mut self, lease: Option<Lease>) {
        self.fence = lease;
    }

    pub(crate) fn fence(&self) -> Option<&Lease> {
        self.fence.as_ref()
    }

    fn locate(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Db { at, source } if at.is_empty() => StoreError::Db {
                at: self.location.clone(),
                source,
            },
            StoreError::LeaseLost { at, call_key } if at.is_empty() => StoreError::LeaseLost {
                at: self.location.clone(),
                call_key,
            },
            other => other,
        }
    }

    /// The connection, reconnected first if the PostgreSQL server closed it (a restart).
    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Conn>, StoreError> {
        let mut conn = match self.conn.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let (Conn::Postgres(pg), Some(url)) = (&mut *conn, &self.url)
            && pg.client.is_closed()
        {
            let client = postgres_client(url).map_err(|source| StoreError::Db {
                at: self.location.clone(),
                source,
            })?;
            **pg = PgConn::new(client);
        }
        Ok(conn)
    }

    /// Run `f` on the database (reads, single statements).
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        let out = conn.run(f);
        if out.is_err() {
            conn.forget_statements();
        }
        out.map_err(|e| self.locate(e))
    }

    /// Run `f` in one transaction: all of it is stored, or none.
    pub(crate) fn transaction<T>(
        &self,
        f: impl FnOnce(&mut Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        let out = conn.transaction(f);
        if out.is_err() {
            conn.forget_statements();
        }
        out.map_err(|e| self.locate(e))
    }

    /// Every row of every table, in a canonical order and without what differs between two
    /// stores holding the same analysis (surrogate ids, timestamps, run ids): two stores are
    /// equal row for row when their dumps are. Used by the conformance and exactly-once tests.
    pub fn dump(&self) -> Result<Dump, StoreError> {
        self.with(|db| Ok(schema::dump(db)?))
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// How long a SQLite writer waits for another process's write lock before it gives up with
/// "database is locked": 30 s, or `CALLQC_DB_BUSY_TIMEOUT_MS`.
fn sqlite_busy_timeout() -> Duration {
    Duration::from_millis(env_number("CALLQC_DB_BUSY_TIMEOUT_MS").unwrap_or(30_000))
}

/// A PostgreSQL client: TLS is for a proxy in front (see the README); statements that run for
/// more than `statement_timeout` are cancelled by the server (set it in the connection string's
/// `options`, see docs/deployment.md).
fn postgres_client(url: &str) -> Result<postgres::Client, DbError> {
    let mut config: postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("callqc");
    }
    Ok(config.connect(postgres::NoTls)?)
}
