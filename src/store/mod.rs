//! SQLite storage: one file holds every call, its transcript, tone windows, findings and scores.
//!
//! - [`schema`]: the versioned schema and its migrations (`PRAGMA user_version`);
//! - [`mod@write`]: one transaction per call, so a batch killed at any moment leaves whole calls only;
//! - [`read`]: what `rescore`, `show`, `eval` and the trainers' views read back.
//!
//! The database runs in WAL mode with a busy timeout, so trainers can read while a batch writes.

pub mod read;
pub mod schema;
pub mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// Errors of the storage layer (every one names the database file).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "{path}: database schema version {found} is newer than this callqc understands ({known}); upgrade callqc"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{path}: no call matches '{query}'")]
    NoSuchCall { path: PathBuf, query: String },
}

/// An open callqc database.
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
}

impl Store {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        schema::migrate(&mut store)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}
