//! Storage: every call, its transcript, tone windows, findings, scores and failures.
//!
//! [`CallStore`] is the interface the rest of callqc uses (all SQL lives under `store/`); [`Store`]
//! is its SQLite implementation, the embedded default. A second backend implements the same
//! trait.
//!
//! - [`schema`]: the versioned schema and its migrations (`PRAGMA user_version`);
//! - [`mod@write`]: one transaction per call, so a batch killed at any moment leaves whole calls only;
//! - [`read`]: what `rescore`, `show`, `eval` and `tone fit` read back;
//! - [`review`]: trainers' verdicts, appeals and their rulings, calibration rounds, the history;
//! - [`query`]: flagged calls under filters, per-rule precision, the report's figures;
//! - [`sink`]: the [`CallSink`](crate::pipeline::events::CallSink) that turns a session's events
//!   into one stored call;
//! - [`types`]: the closed sets the tables hold (status, review state, source, role).
//!
//! The database runs in WAL mode with a busy timeout, so trainers can read while a batch writes.

pub mod live;
pub mod query;
pub mod read;
pub mod review;
pub mod schema;
pub mod sink;
pub mod types;
pub mod write;

pub use live::{AlertRecord, LiveCallRecord};
pub use query::{
    AlertDay, FindingFact, FlaggedCall, FlaggedOrder, FlaggedQuery, Period, RuleStats, ScoredCall,
};
pub use read::{RawText, StoredCall, StoredFinding, StoredScore, ToneFeatureRow};
pub use review::{CalibrationRecord, FindingOfCall, VerdictRecord};
pub use sink::StoreSink;
pub use types::{
    AlertKind, AppealState, CallStatus, EndReason, IngestProtocol, Kind, ReviewState, Source,
    VerdictAction,
};
pub use write::{CallMeta, CallRows};

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
    #[error("{path}: no finding {id}")]
    NoSuchFinding { path: PathBuf, id: i64 },
    /// A verdict the review workflow does not allow (the finding is unchanged).
    #[error("finding {id}: {reason}")]
    Refused { id: i64, reason: String },
}

/// What callqc needs from a store, whatever the backend.
pub trait CallStore {
    /// Where the store is (a file path, or a connection string without its password).
    fn location(&self) -> String;
    /// Has this call already been analysed from the same audio, models and rubric?
    fn is_done(
        &self,
        call_key: &str,
        audio_hash: &str,
        models_key: &str,
        rubric_hash: &str,
    ) -> Result<bool, StoreError>;
    /// Store a fully analysed call in one transaction (replacing an earlier analysis of the same
    /// key, carrying trainers' verdicts over); returns its id.
    fn save_call(&mut self, meta: &CallMeta, rows: &CallRows) -> Result<i64, StoreError>;
    /// Record that a call could not be analysed. An analysed call with the same key keeps its
    /// analysis and reviews: the failure is logged beside it.
    fn save_failure(&mut self, meta: &CallMeta, error: &str) -> Result<(), StoreError>;
    /// Replace one rubric's findings and score of a stored call (rescore), keeping reviews.
    fn replace_scoring(
        &mut self,
        call_id: i64,
        findings: &[crate::rubric::Finding],
        score: &crate::rubric::Score,
        rubric_hash: &str,
    ) -> Result<(), StoreError>;
    /// The per-call voice baselines of an agent's analysed calls, oldest first, with call keys.
    fn agent_history(
        &self,
        agent_id: &str,
    ) -> Result<Vec<(String, crate::tone::Baseline)>, StoreError>;
    /// Ids of all analysed calls, in id order.
    fn done_call_ids(&self) -> Result<Vec<i64>, StoreError>;
    /// A call by id, call key, audio hash prefix, or path (or its file name, `.wav` optional).
    fn find_call(&self, query: &str) -> Result<i64, StoreError>;
    /// The analysed call of this audio made with these models and scored with this rubric.
    fn find_analysis(
        &self,
        audio_hash: &str,
        models_key: &str,
        rubric_hash: &str,
    ) -> Result<Option<i64>, StoreError>;
    fn load_call(&self, id: i64) -> Result<StoredCall, StoreError>;
    /// Findings of a call (of one rubric, or all), in time order.
    fn findings(
        &self,
        call_id: i64,
        rubric: Option<&str>,
    ) -> Result<Vec<StoredFinding>, StoreError>;
    fn scores(&self, call_id: i64) -> Result<Vec<StoredScore>, StoreError>;
    /// Reviewed (confirmed or dismissed) findings of one rule kind, over all calls.
    fn reviewed_findings(&self, kind: Kind) -> Result<Vec<StoredFinding>, StoreError>;
    /// Agent tone windows with their model input, over all analysed calls.
    fn agent_tone_features(&self) -> Result<Vec<ToneFeatureRow>, StoreError>;
    /// Failed attempts logged for a call key, newest first: (error, when).
    fn failures(&self, call_key: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Start a run record; returns its id.
    fn begin_run(
        &mut self,
        command: &str,
        models_json: &str,
        rubric: Option<(&str, &str, &str)>,
        settings_json: &str,
    ) -> Result<i64, StoreError>;
    /// Close a run record with its totals.
    fn finish_run(&mut self, run_id: i64, totals: &RunTotals) -> Result<(), StoreError>;
    /// Record how a streamed call went (its analysis is stored by `save_call`).
    fn save_live_call(&mut self, record: &LiveCallRecord) -> Result<(), StoreError>;
    /// Record a warning pushed while a call ran.
    fn save_alert(&mut self, alert: &AlertRecord) -> Result<(), StoreError>;
    /// The live record of a call, if it was streamed.
    fn live_call(&self, call_key: &str) -> Result<Option<LiveCallRecord>, StoreError>;
    /// The warnings pushed during a call, in the order they were sent.
    fn alerts(&self, call_key: &str) -> Result<Vec<AlertRecord>, StoreError>;

    // Trainers' work (see `review.rs` and `query.rs`).
    fn finding(&self, id: i64) -> Result<FindingOfCall, StoreError>;
    fn review_finding(
        &mut self,
        id: i64,
        action: VerdictAction,
        by: &str,
        note: Option<&str>,
    ) -> Result<FindingOfCall, StoreError>;
    fn appeal_finding(
        &mut self,
        id: i64,
        agent: &str,
        reason: &str,
    ) -> Result<FindingOfCall, StoreError>;
    fn rule_on_appeal(
        &mut self,
        id: i64,
        uphold: bool,
        by: &str,
        note: Option<&str>,
    ) -> Result<FindingOfCall, StoreError>;
    fn verdict_history(&self, finding_id: i64) -> Result<Vec<VerdictRecord>, StoreError>;
    fn create_calibration(
        &mut self,
        name: &str,
        requested_by: &str,
        reviewers: &[String],
        call_keys: &[String],
    ) -> Result<i64, StoreError>;
    fn calibration_verdict(
        &mut self,
        calibration_id: i64,
        finding_id: i64,
        confirm: bool,
        by: &str,
        note: Option<&str>,
    ) -> Result<(), StoreError>;
    fn calibration(&self, id: i64) -> Result<CalibrationRecord, StoreError>;
    fn flagged(&self, query: &FlaggedQuery) -> Result<Vec<FlaggedCall>, StoreError>;
    fn rule_stats(&self, period: &Period) -> Result<Vec<RuleStats>, StoreError>;
    fn scored_calls(&self, period: &Period) -> Result<Vec<ScoredCall>, StoreError>;
    fn finding_facts(&self, period: &Period) -> Result<Vec<FindingFact>, StoreError>;
    fn alert_days(&self, period: &Period) -> Result<Vec<AlertDay>, StoreError>;
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

/// The SQLite store implements the interface with its own methods (`read.rs`, `write.rs`).
impl CallStore for Store {
    fn location(&self) -> String {
        self.path.display().to_string()
    }
    fn is_done(
        &self,
        key: &str,
        hash: &str,
        models: &str,
        rubric: &str,
    ) -> Result<bool, StoreError> {
        Store::is_done(self, key, hash, models, rubric)
    }
    fn save_call(&mut self, meta: &CallMeta, rows: &CallRows) -> Result<i64, StoreError> {
        Store::save_call(self, meta, rows)
    }
    fn save_failure(&mut self, meta: &CallMeta, error: &str) -> Result<(), StoreError> {
        Store::save_failure(self, meta, error)
    }
    fn replace_scoring(
        &mut self,
        call_id: i64,
        findings: &[crate::rubric::Finding],
        score: &crate::rubric::Score,
        rubric_hash: &str,
    ) -> Result<(), StoreError> {
        Store::replace_scoring(self, call_id, findings, score, rubric_hash)
    }
    fn agent_history(
        &self,
        agent: &str,
    ) -> Result<Vec<(String, crate::tone::Baseline)>, StoreError> {
        Store::agent_history(self, agent)
    }
    fn done_call_ids(&self) -> Result<Vec<i64>, StoreError> {
        Store::done_call_ids(self)
    }
    fn find_call(&self, query: &str) -> Result<i64, StoreError> {
        Store::find_call(self, query)
    }
    fn find_analysis(
        &self,
        hash: &str,
        models: &str,
        rubric: &str,
    ) -> Result<Option<i64>, StoreError> {
        Store::find_analysis(self, hash, models, rubric)
    }
    fn load_call(&self, id: i64) -> Result<StoredCall, StoreError> {
        Store::load_call(self, id)
    }
    fn findings(&self, id: i64, rubric: Option<&str>) -> Result<Vec<StoredFinding>, StoreError> {
        Store::findings(self, id, rubric)
    }
    fn scores(&self, id: i64) -> Result<Vec<StoredScore>, StoreError> {
        Store::scores(self, id)
    }
    fn reviewed_findings(&self, kind: Kind) -> Result<Vec<StoredFinding>, StoreError> {
        Store::reviewed_findings(self, kind)
    }
    fn agent_tone_features(&self) -> Result<Vec<ToneFeatureRow>, StoreError> {
        Store::agent_tone_features(self)
    }
    fn failures(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        Store::failures(self, key)
    }
    fn begin_run(
        &mut self,
        command: &str,
        models_json: &str,
        rubric: Option<(&str, &str, &str)>,
        settings_json: &str,
    ) -> Result<i64, StoreError> {
        Store::begin_run(self, command, models_json, rubric, settings_json)
    }
    fn finish_run(&mut self, run_id: i64, totals: &RunTotals) -> Result<(), StoreError> {
        Store::finish_run(self, run_id, totals)
    }
    fn save_live_call(&mut self, record: &LiveCallRecord) -> Result<(), StoreError> {
        Store::save_live_call(self, record)
    }
    fn save_alert(&mut self, alert: &AlertRecord) -> Result<(), StoreError> {
        Store::save_alert(self, alert)
    }
    fn live_call(&self, call_key: &str) -> Result<Option<LiveCallRecord>, StoreError> {
        Store::live_call(self, call_key)
    }
    fn alerts(&self, call_key: &str) -> Result<Vec<AlertRecord>, StoreError> {
        Store::alerts(self, call_key)
    }
    fn finding(&self, id: i64) -> Result<FindingOfCall, StoreError> {
        Store::finding(self, id)
    }
    fn review_finding(
        &mut self,
        id: i64,
        action: VerdictAction,
        by: &str,
        note: Option<&str>,
    ) -> Result<FindingOfCall, StoreError> {
        Store::review_finding(self, id, action, by, note)
    }
    fn appeal_finding(
        &mut self,
        id: i64,
        agent: &str,
        reason: &str,
    ) -> Result<FindingOfCall, StoreError> {
        Store::appeal_finding(self, id, agent, reason)
    }
    fn rule_on_appeal(
        &mut self,
        id: i64,
        uphold: bool,
        by: &str,
        note: Option<&str>,
    ) -> Result<FindingOfCall, StoreError> {
        Store::rule_on_appeal(self, id, uphold, by, note)
    }
    fn verdict_history(&self, finding_id: i64) -> Result<Vec<VerdictRecord>, StoreError> {
        Store::verdict_history(self, finding_id)
    }
    fn create_calibration(
        &mut self,
        name: &str,
        requested_by: &str,
        reviewers: &[String],
        call_keys: &[String],
    ) -> Result<i64, StoreError> {
        Store::create_calibration(self, name, requested_by, reviewers, call_keys)
    }
    fn calibration_verdict(
        &mut self,
        calibration_id: i64,
        finding_id: i64,
        confirm: bool,
        by: &str,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        Store::calibration_verdict(self, calibration_id, finding_id, confirm, by, note)
    }
    fn calibration(&self, id: i64) -> Result<CalibrationRecord, StoreError> {
        Store::calibration(self, id)
    }
    fn flagged(&self, query: &FlaggedQuery) -> Result<Vec<FlaggedCall>, StoreError> {
        Store::flagged(self, query)
    }
    fn rule_stats(&self, period: &Period) -> Result<Vec<RuleStats>, StoreError> {
        Store::rule_stats(self, period)
    }
    fn scored_calls(&self, period: &Period) -> Result<Vec<ScoredCall>, StoreError> {
        Store::scored_calls(self, period)
    }
    fn finding_facts(&self, period: &Period) -> Result<Vec<FindingFact>, StoreError> {
        Store::finding_facts(self, period)
    }
    fn alert_days(&self, period: &Period) -> Result<Vec<AlertDay>, StoreError> {
        Store::alert_days(self, period)
    }
}
