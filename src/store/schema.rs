//! The schema, as an ordered list of migrations. `PRAGMA user_version` records how many have
//! run; opening a database applies the missing ones in one transaction each. Never edit a
//! migration that has shipped: add a new one.

use super::{Store, StoreError};

/// Migration i brings the schema from version i to i + 1.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE runs (
        id            INTEGER PRIMARY KEY,
        command       TEXT NOT NULL,
        started_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        finished_at   TEXT,
        models        TEXT NOT NULL,       -- JSON: whisper / vad / tone model files and hashes
        rubric_name   TEXT,
        rubric_version TEXT,
        rubric_hash   TEXT,
        settings      TEXT NOT NULL,       -- JSON: threads, workers, decoding options
        calls_done    INTEGER NOT NULL DEFAULT 0,
        calls_skipped INTEGER NOT NULL DEFAULT 0,
        calls_failed  INTEGER NOT NULL DEFAULT 0,
        audio_s       REAL NOT NULL DEFAULT 0,
        wall_s        REAL NOT NULL DEFAULT 0,
        stage_s       TEXT                 -- JSON: seconds per stage
    );
    CREATE TABLE calls (
        id            INTEGER PRIMARY KEY,
        call_key      TEXT NOT NULL UNIQUE, -- the manifest's call id, else the audio hash
        path          TEXT NOT NULL,
        audio_hash    TEXT NOT NULL,        -- sha256 of the file's bytes
        agent_id      TEXT,
        channel_map   TEXT,
        status        TEXT NOT NULL CHECK (status IN ('done', 'failed')),
        error         TEXT,
        duration_s    REAL,
        sample_rate   INTEGER,
        channels      INTEGER,
        encoding      TEXT,
        models_key    TEXT,                 -- hash of the models + ASR settings that made it
        run_id        INTEGER REFERENCES runs(id),
        tone_baseline TEXT,                 -- JSON (tone::Baseline): the agent's voice in this call
        processed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    );
    CREATE INDEX calls_agent ON calls(agent_id);
    CREATE INDEX calls_hash ON calls(audio_hash);
    CREATE TABLE segments (
        call_id       INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        idx           INTEGER NOT NULL,
        role          TEXT NOT NULL,
        start_s       REAL NOT NULL,
        end_s         REAL NOT NULL,
        text          TEXT NOT NULL,
        confidence    REAL NOT NULL,
        avg_logprob   REAL NOT NULL,
        no_speech_prob REAL NOT NULL,
        PRIMARY KEY (call_id, idx)
    );
    CREATE TABLE speech_regions (
        call_id       INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        role          TEXT NOT NULL,
        start_s       REAL NOT NULL,
        end_s         REAL NOT NULL
    );
    CREATE INDEX speech_regions_call ON speech_regions(call_id);
    CREATE TABLE tone_windows (
        call_id       INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        role          TEXT NOT NULL,
        start_s       REAL NOT NULL,
        end_s         REAL NOT NULL,
        p_calm        REAL NOT NULL,
        p_tense       REAL NOT NULL,
        p_agitated    REAL NOT NULL,
        features      TEXT                  -- JSON array (model input), for `tone fit`
    );
    CREATE INDEX tone_windows_call ON tone_windows(call_id);
    CREATE TABLE scores (
        call_id       INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        rubric        TEXT NOT NULL,
        rubric_version TEXT NOT NULL,
        rubric_hash   TEXT NOT NULL,
        total         REAL NOT NULL,
        deductions    REAL NOT NULL,
        vetoed        INTEGER NOT NULL,
        scored_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        PRIMARY KEY (call_id, rubric)
    );
    CREATE TABLE findings (
        id            INTEGER PRIMARY KEY,
        call_id       INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        rubric        TEXT NOT NULL,
        rubric_version TEXT NOT NULL,
        item_id       TEXT NOT NULL,
        kind          TEXT NOT NULL,        -- the rule kind that produced it
        description   TEXT NOT NULL,
        dimension     TEXT NOT NULL,
        points        REAL NOT NULL,
        veto          INTEGER NOT NULL,
        role          TEXT,
        start_s       REAL NOT NULL,
        end_s         REAL NOT NULL,
        evidence      TEXT NOT NULL,
        review        TEXT NOT NULL DEFAULT 'open' CHECK (review IN ('open', 'confirmed', 'dismissed')),
        reviewer      TEXT,
        review_note   TEXT,
        reviewed_at   TEXT
    );
    CREATE INDEX findings_call ON findings(call_id);
    CREATE INDEX findings_item ON findings(item_id);
    "#,
    // 2: failures are a log beside the calls (a failed re-read of an analysed call must not
    //    replace its analysis and reviews); where a call came from; the tone model's threshold
    //    the call was judged with (so `show` summarises tone as the analysis did).
    r#"
    CREATE TABLE failures (
        id            INTEGER PRIMARY KEY,
        call_key      TEXT NOT NULL,
        path          TEXT NOT NULL,
        error         TEXT NOT NULL,
        run_id        INTEGER REFERENCES runs(id),
        failed_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    );
    CREATE INDEX failures_key ON failures(call_key);
    INSERT INTO failures (call_key, path, error, run_id)
        SELECT call_key, path, coalesce(error, ''), run_id FROM calls WHERE status = 'failed';
    ALTER TABLE calls ADD COLUMN source TEXT NOT NULL DEFAULT 'batch' CHECK (source IN ('batch', 'live'));
    ALTER TABLE calls ADD COLUMN tone_threshold REAL;
    "#,
    // 3: live calls. `live_calls` is how a call streamed by a PBX went (its analysis is an
    //    ordinary `calls` row made from the recording written at its end, source 'live');
    //    `alerts` is every warning pushed while it ran: to whom, when, with its latency.
    r#"
    CREATE TABLE live_calls (
        id            INTEGER PRIMARY KEY,
        call_key      TEXT NOT NULL UNIQUE,
        agent_id      TEXT,
        protocol      TEXT NOT NULL CHECK (protocol IN ('websocket', 'audiosocket')),
        peer          TEXT NOT NULL,        -- the PBX's address
        started_ms    INTEGER NOT NULL,     -- Unix ms
        ended_ms      INTEGER NOT NULL,
        end_reason    TEXT NOT NULL CHECK (end_reason IN ('hangup', 'vanished', 'error', 'shutdown')),
        complete      INTEGER NOT NULL,     -- 0: the stream did not end normally (what arrived is kept)
        error         TEXT,
        recording     TEXT NOT NULL,        -- the WAV written at the end
        sample_rate   INTEGER NOT NULL,
        encoding      TEXT NOT NULL,
        samples_received TEXT NOT NULL,     -- JSON array, per channel
        samples_stored   TEXT NOT NULL,     -- JSON array, per channel (equal unless a write failed)
        shed_utterances  INTEGER NOT NULL,  -- utterances not decoded live under overload
        alerts        INTEGER NOT NULL
    );
    CREATE INDEX live_calls_agent ON live_calls(agent_id);
    CREATE TABLE alerts (
        id            INTEGER PRIMARY KEY,
        call_key      TEXT NOT NULL,
        agent_id      TEXT,
        kind          TEXT NOT NULL CHECK (kind IN ('tone', 'forbidden', 'silence')),
        item_id       TEXT NOT NULL,
        message       TEXT NOT NULL,        -- what the pop-up said
        evidence      TEXT NOT NULL,
        evidence_start_s REAL NOT NULL,     -- audio time in the call
        evidence_end_s   REAL NOT NULL,
        frame_ms      INTEGER NOT NULL,     -- Unix ms: when the frame with the evidence's end arrived
        sent_ms       INTEGER NOT NULL,     -- Unix ms: when it was pushed
        latency_ms    INTEGER NOT NULL,     -- sent - frame
        agent_pages   INTEGER NOT NULL,     -- desktop pages of the agent it was pushed to
        supervisor_pages INTEGER NOT NULL,
        pbx_links     INTEGER NOT NULL      -- ingest connections of the call it was echoed to
    );
    CREATE INDEX alerts_call ON alerts(call_key);
    CREATE INDEX alerts_agent ON alerts(agent_id);
    "#,
    // 4: trainers' work. A finding keeps its id across re-analysis and rescoring while the same
    //    item fires over the same span (its verdicts go with it); `verdicts` is the history of
    //    every verdict, appeal and ruling (who, when, what, why), never rewritten; a finding also
    //    records its item's uncapped points and cap, so a call's score can be recomputed from its
    //    findings when one is dismissed, and `scores` keeps the machine's score beside the
    //    reviewed one. `calibrations` lists calls two or more reviewers judge independently
    //    (their verdicts are in `verdicts` with the calibration's id and change no finding).
    //    `calls.started_at` is when the call took place (sidecar, live start, else the file's
    //    modification time), what date filters and reports go by.
    r#"
    ALTER TABLE findings ADD COLUMN appeal TEXT NOT NULL DEFAULT 'none'
        CHECK (appeal IN ('none', 'pending', 'upheld', 'rejected'));
    ALTER TABLE findings ADD COLUMN item_points REAL;
    ALTER TABLE findings ADD COLUMN item_max_count INTEGER;
    UPDATE findings SET item_points = points;
    ALTER TABLE scores ADD COLUMN machine_total REAL;
    ALTER TABLE scores ADD COLUMN machine_deductions REAL;
    ALTER TABLE scores ADD COLUMN machine_vetoed INTEGER;
    UPDATE scores SET machine_total = total, machine_deductions = deductions, machine_vetoed = vetoed;
    ALTER TABLE calls ADD COLUMN started_at TEXT;
    UPDATE calls SET started_at = processed_at;
    CREATE INDEX calls_started ON calls(started_at);
    CREATE TABLE verdicts (
        id            INTEGER PRIMARY KEY,
        finding_id    INTEGER NOT NULL,     -- findings.id (no foreign key: history outlives a finding)
        call_key      TEXT NOT NULL,
        rubric        TEXT NOT NULL,
        item_id       TEXT NOT NULL,
        action        TEXT NOT NULL CHECK (action IN ('confirm', 'dismiss', 'note', 'appeal', 'uphold', 'reject')),
        by_name       TEXT NOT NULL,
        note          TEXT,
        calibration_id INTEGER REFERENCES calibrations(id),
        at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    );
    CREATE INDEX verdicts_finding ON verdicts(finding_id);
    CREATE INDEX verdicts_item ON verdicts(item_id);
    CREATE TABLE calibrations (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL,
        requested_by  TEXT NOT NULL,
        reviewers     TEXT NOT NULL,        -- JSON array of names
        created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    );
    CREATE TABLE calibration_calls (
        calibration_id INTEGER NOT NULL REFERENCES calibrations(id) ON DELETE CASCADE,
        call_key      TEXT NOT NULL,
        PRIMARY KEY (calibration_id, call_key)
    );
    "#,
    // 5: observations — findings within the rules that trainers should still see (an announced
    //    hold of normal length, a pause below the dead-air limit): 0 points, never in the score.
    r#"
    ALTER TABLE findings ADD COLUMN observation INTEGER NOT NULL DEFAULT 0;
    "#,
    // 6: what the recogniser wrote, beside a segment whose text the rubric's lexicon corrected
    //    (NULL: not corrected).
    r#"
    ALTER TABLE segments ADD COLUMN raw_text TEXT;
    "#,
];

/// The schema version this build writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Apply every migration the database has not seen yet.
pub fn migrate(store: &mut Store) -> Result<(), StoreError> {
    let found: i64 = store
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| store.err(e))?;
    if found > current_version() {
        return Err(StoreError::TooNew {
            path: store.path.clone(),
            found,
            known: current_version(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let path = store.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = store.conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}
