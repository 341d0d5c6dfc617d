//! The schemas, as ordered lists of migrations: SQLite's (`PRAGMA user_version` records how
//! many have run) and PostgreSQL's (the `callqc_schema` table does). Opening a store applies the
//! missing ones in one transaction each. Never edit a migration that has shipped: add a new one.
//! The two schemas hold the same tables and columns (PostgreSQL's types are BIGINT and DOUBLE
//! PRECISION where SQLite's are INTEGER and REAL); PostgreSQL's also holds the work queue.

use super::db::{Conn, Db, DbError, postgres_sql};
use super::{Store, StoreError};

/// SQLite: migration i brings the schema from version i to i + 1.
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
    // 7: how a mono recording's two voices were told apart, or why they were not (JSON:
    //    pipeline::events::RoleSeparation); NULL for stereo calls.
    r#"
    ALTER TABLE calls ADD COLUMN speakers TEXT;
    "#,
];

/// PostgreSQL: migration i brings the schema from version i to i + 1. Version 1 is SQLite's
/// version 6 (written in SQLite's spelling of "now", which [`postgres_sql`] rewrites) plus the
/// work queue. `speech_regions` and `tone_windows` get a `rowid` column: the order rows were
/// written in, which SQLite keeps implicitly.
const PG_MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE runs (
        id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        command       TEXT NOT NULL,
        started_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        finished_at   TEXT,
        models        TEXT NOT NULL,
        rubric_name   TEXT,
        rubric_version TEXT,
        rubric_hash   TEXT,
        settings      TEXT NOT NULL,
        calls_done    BIGINT NOT NULL DEFAULT 0,
        calls_skipped BIGINT NOT NULL DEFAULT 0,
        calls_failed  BIGINT NOT NULL DEFAULT 0,
        audio_s       DOUBLE PRECISION NOT NULL DEFAULT 0,
        wall_s        DOUBLE PRECISION NOT NULL DEFAULT 0,
        stage_s       TEXT
    );
    CREATE TABLE calls (
        id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        call_key      TEXT NOT NULL UNIQUE,
        path          TEXT NOT NULL,
        audio_hash    TEXT NOT NULL,
        agent_id      TEXT,
        channel_map   TEXT,
        status        TEXT NOT NULL CHECK (status IN ('done', 'failed')),
        error         TEXT,
        duration_s    DOUBLE PRECISION,
        sample_rate   BIGINT,
        channels      BIGINT,
        encoding      TEXT,
        models_key    TEXT,
        run_id        BIGINT REFERENCES runs(id),
        tone_baseline TEXT,
        processed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        source        TEXT NOT NULL DEFAULT 'batch' CHECK (source IN ('batch', 'live')),
        tone_threshold DOUBLE PRECISION,
        started_at    TEXT
    );
    CREATE INDEX calls_agent ON calls(agent_id);
    CREATE INDEX calls_hash ON calls(audio_hash);
    CREATE INDEX calls_started ON calls(started_at);
    CREATE TABLE segments (
        call_id       BIGINT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        idx           BIGINT NOT NULL,
        role          TEXT NOT NULL,
        start_s       DOUBLE PRECISION NOT NULL,
        end_s         DOUBLE PRECISION NOT NULL,
        text          TEXT NOT NULL,
        confidence    DOUBLE PRECISION NOT NULL,
        avg_logprob   DOUBLE PRECISION NOT NULL,
        no_speech_prob DOUBLE PRECISION NOT NULL,
        raw_text      TEXT,
        PRIMARY KEY (call_id, idx)
    );
    CREATE TABLE speech_regions (
        rowid         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        call_id       BIGINT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        role          TEXT NOT NULL,
        start_s       DOUBLE PRECISION NOT NULL,
        end_s         DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX speech_regions_call ON speech_regions(call_id);
    CREATE TABLE tone_windows (
        rowid         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        call_id       BIGINT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        role          TEXT NOT NULL,
        start_s       DOUBLE PRECISION NOT NULL,
        end_s         DOUBLE PRECISION NOT NULL,
        p_calm        DOUBLE PRECISION NOT NULL,
        p_tense       DOUBLE PRECISION NOT NULL,
        p_agitated    DOUBLE PRECISION NOT NULL,
        features      TEXT
    );
    CREATE INDEX tone_windows_call ON tone_windows(call_id);
    CREATE TABLE scores (
        call_id       BIGINT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        rubric        TEXT NOT NULL,
        rubric_version TEXT NOT NULL,
        rubric_hash   TEXT NOT NULL,
        total         DOUBLE PRECISION NOT NULL,
        deductions    DOUBLE PRECISION NOT NULL,
        vetoed        BIGINT NOT NULL,
        scored_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        machine_total DOUBLE PRECISION,
        machine_deductions DOUBLE PRECISION,
        machine_vetoed BIGINT,
        PRIMARY KEY (call_id, rubric)
    );
    CREATE TABLE findings (
        id            BIGINT PRIMARY KEY,
        call_id       BIGINT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        rubric        TEXT NOT NULL,
        rubric_version TEXT NOT NULL,
        item_id       TEXT NOT NULL,
        kind          TEXT NOT NULL,
        description   TEXT NOT NULL,
        dimension     TEXT NOT NULL,
        points        DOUBLE PRECISION NOT NULL,
        veto          BIGINT NOT NULL,
        role          TEXT,
        start_s       DOUBLE PRECISION NOT NULL,
        end_s         DOUBLE PRECISION NOT NULL,
        evidence      TEXT NOT NULL,
        review        TEXT NOT NULL DEFAULT 'open' CHECK (review IN ('open', 'confirmed', 'dismissed')),
        reviewer      TEXT,
        review_note   TEXT,
        reviewed_at   TEXT,
        appeal        TEXT NOT NULL DEFAULT 'none'
            CHECK (appeal IN ('none', 'pending', 'upheld', 'rejected')),
        item_points   DOUBLE PRECISION,
        item_max_count BIGINT,
        observation   BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX findings_call ON findings(call_id);
    CREATE INDEX findings_item ON findings(item_id);
    CREATE TABLE failures (
        id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        call_key      TEXT NOT NULL,
        path          TEXT NOT NULL,
        error         TEXT NOT NULL,
        run_id        BIGINT REFERENCES runs(id),
        failed_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    );
    CREATE INDEX failures_key ON failures(call_key);
    CREATE TABLE live_calls (
        id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        call_key      TEXT NOT NULL UNIQUE,
        agent_id      TEXT,
        protocol      TEXT NOT NULL CHECK (protocol IN ('websocket', 'audiosocket')),
        peer          TEXT NOT NULL,
        started_ms    BIGINT NOT NULL,
        ended_ms      BIGINT NOT NULL,
        end_reason    TEXT NOT NULL CHECK (end_reason IN ('hangup', 'vanished', 'error', 'shutdown')),
        complete      BIGINT NOT NULL,
        error         TEXT,
        recording     TEXT NOT NULL,
        sample_rate   BIGINT NOT NULL,
        encoding      TEXT NOT NULL,
        samples_received TEXT NOT NULL,
        samples_stored   TEXT NOT NULL,
        shed_utterances  BIGINT NOT NULL,
        alerts        BIGINT NOT NULL
    );
    CREATE INDEX live_calls_agent ON live_calls(agent_id);
    CREATE TABLE alerts (
        id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        call_key      TEXT NOT NULL,
        agent_id      TEXT,
        kind          TEXT NOT NULL CHECK (kind IN ('tone', 'forbidden', 'silence')),
        item_id       TEXT NOT NULL,
        message       TEXT NOT NULL,
        evidence      TEXT NOT NULL,
        evidence_start_s DOUBLE PRECISION NOT NULL,
        evidence_end_s   DOUBLE PRECISION NOT NULL,
        frame_ms      BIGINT NOT NULL,
        sent_ms       BIGINT NOT NULL,
        latency_ms    BIGINT NOT NULL,
        agent_pages   BIGINT NOT NULL,
        supervisor_pages BIGINT NOT NULL,
        pbx_links     BIGINT NOT NULL
    );
    CREATE INDEX alerts_call ON alerts(call_key);
    CREATE INDEX alerts_agent ON alerts(agent_id);
    CREATE TABLE calibrations (
        id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name          TEXT NOT NULL,
        requested_by  TEXT NOT NULL,
        reviewers     TEXT NOT NULL,
        created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    );
    CREATE TABLE calibration_calls (
        calibration_id BIGINT NOT NULL REFERENCES calibrations(id) ON DELETE CASCADE,
        call_key      TEXT NOT NULL,
        PRIMARY KEY (calibration_id, call_key)
    );
    CREATE TABLE verdicts (
        id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        finding_id    BIGINT NOT NULL,
        call_key      TEXT NOT NULL,
        rubric        TEXT NOT NULL,
        item_id       TEXT NOT NULL,
        action        TEXT NOT NULL CHECK (action IN ('confirm', 'dismiss', 'note', 'appeal', 'uphold', 'reject')),
        by_name       TEXT NOT NULL,
        note          TEXT,
        calibration_id BIGINT REFERENCES calibrations(id),
        at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    );
    CREATE INDEX verdicts_finding ON verdicts(finding_id);
    CREATE INDEX verdicts_item ON verdicts(item_id);

    -- The work queue. One row per call key (enqueueing the same call twice is one job); a job
    -- is claimed under a lease (worker, token, until), renewed by heartbeats, and completed in
    -- the transaction that stores the call, on the condition that the token is still its own.
    CREATE TABLE batches (
        id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        enqueued_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
        calls         BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE jobs (
        id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        call_key      TEXT NOT NULL UNIQUE,
        batch_id      BIGINT NOT NULL REFERENCES batches(id),
        path          TEXT NOT NULL,
        audio_hash    TEXT,
        job           TEXT NOT NULL,        -- JSON: agent, call id, channel map, source, date
        state         TEXT NOT NULL DEFAULT 'queued'
            CHECK (state IN ('queued', 'running', 'done', 'failed')),
        attempts      BIGINT NOT NULL DEFAULT 0,
        lease_token   BIGINT,
        worker        TEXT,
        lease_until   TIMESTAMPTZ,
        enqueued_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
        claimed_at    TIMESTAMPTZ,
        finished_at   TIMESTAMPTZ,
        audio_s       DOUBLE PRECISION,
        analysis_s    DOUBLE PRECISION,     -- the worker's time on the call
        queue_s       DOUBLE PRECISION,     -- of which claim + heartbeats + completion
        last_error    TEXT
    );
    CREATE INDEX jobs_ready ON jobs(state, id);
    CREATE SEQUENCE lease_tokens;
    CREATE TABLE job_errors (
        job_id        BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        attempt       BIGINT NOT NULL,
        worker        TEXT,
        error         TEXT NOT NULL,
        at            TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE workers (
        name          TEXT PRIMARY KEY,
        started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
        seen_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
        calls_done    BIGINT NOT NULL DEFAULT 0
    );
"#,
    // 2: as SQLite's 7 — how a mono recording's voices were told apart.
    r#"
    ALTER TABLE calls ADD COLUMN speakers TEXT;
"#,
];

/// The schema version this build writes on SQLite.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Apply every migration the database has not seen yet.
pub fn migrate(store: &mut Store) -> Result<(), StoreError> {
    let at = store.location();
    let mut conn = store.conn()?;
    let known = match &*conn {
        Conn::Sqlite(_) => current_version(),
        Conn::Postgres(_) => PG_MIGRATIONS.len() as i64,
    };
    let result = match &mut *conn {
        Conn::Sqlite(c) => migrate_sqlite(c),
        Conn::Postgres(pg) => migrate_postgres(&mut pg.client),
    };
    match result {
        Ok(found) if found > known => Err(StoreError::TooNew { at, found, known }),
        Ok(_) => Ok(()),
        Err(source) => Err(StoreError::Db { at, source }),
    }
}

/// Returns the version found before migrating.
fn migrate_sqlite(conn: &mut rusqlite::Connection) -> Result<i64, DbError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(found)
}

/// Workers starting together migrate one at a time (a transaction-scoped advisory lock);
/// returns the version found before migrating.
fn migrate_postgres(client: &mut postgres::Client) -> Result<i64, DbError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock(4242000)", &[])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS callqc_schema (version BIGINT NOT NULL)")?;
    let found: i64 = match tx.query_opt("SELECT version FROM callqc_schema", &[])? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO callqc_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    for sql in PG_MIGRATIONS.iter().skip(found.max(0) as usize) {
        tx.batch_execute(&postgres_sql(sql))?;
    }
    if (found as usize) < PG_MIGRATIONS.len() {
        tx.execute(
            "UPDATE callqc_schema SET version = $1",
            &[&(PG_MIGRATIONS.len() as i64)],
        )?;
    }
    tx.commit()?;
    Ok(found)
}

/// What [`Store::dump`] compares: per table, the columns that carry the analysis and the
/// trainers' work, in a canonical order. Left out: surrogate ids and row numbers (each database
/// numbers its own rows), timestamps (`processed_at`, `scored_at`, `reviewed_at`, `at`), run
/// ids, and `findings.id` — kept stable within one store, but two stores number findings in
/// the order calls happened to finish.
const DUMP: &[(&str, &str)] = &[
    (
        "calls",
        "SELECT call_key, path, audio_hash, agent_id, channel_map, status, error, duration_s,
            sample_rate, channels, encoding, models_key, tone_baseline, source, tone_threshold,
            started_at FROM calls ORDER BY call_key",
    ),
    (
        "segments",
        "SELECT c.call_key, s.idx, s.role, s.start_s, s.end_s, s.text, s.confidence,
            s.avg_logprob, s.no_speech_prob, s.raw_text
         FROM segments s JOIN calls c ON c.id = s.call_id ORDER BY c.call_key, s.idx",
    ),
    (
        "speech_regions",
        "SELECT c.call_key, r.role, r.start_s, r.end_s FROM speech_regions r
         JOIN calls c ON c.id = r.call_id ORDER BY c.call_key, r.role, r.start_s, r.end_s",
    ),
    (
        "tone_windows",
        "SELECT c.call_key, w.role, w.start_s, w.end_s, w.p_calm, w.p_tense, w.p_agitated,
            w.features FROM tone_windows w JOIN calls c ON c.id = w.call_id
         ORDER BY c.call_key, w.role, w.start_s, w.end_s",
    ),
    (
        "scores",
        "SELECT c.call_key, s.rubric, s.rubric_version, s.rubric_hash, s.total, s.deductions,
            s.vetoed, s.machine_total, s.machine_deductions, s.machine_vetoed
         FROM scores s JOIN calls c ON c.id = s.call_id ORDER BY c.call_key, s.rubric",
    ),
    (
        "findings",
        "SELECT c.call_key, f.rubric, f.rubric_version, f.item_id, f.kind, f.description,
            f.dimension, f.points, f.veto, f.role, f.start_s, f.end_s, f.evidence, f.review,
            f.reviewer, f.review_note, f.appeal, f.item_points, f.item_max_count, f.observation
         FROM findings f JOIN calls c ON c.id = f.call_id
         ORDER BY c.call_key, f.rubric, f.start_s, f.item_id, f.end_s",
    ),
    (
        "failures",
        "SELECT call_key, path, error FROM failures ORDER BY call_key, error, path",
    ),
    (
        "live_calls",
        "SELECT call_key, agent_id, protocol, peer, started_ms, ended_ms, end_reason, complete,
            error, recording, sample_rate, encoding, samples_received, samples_stored,
            shed_utterances, alerts FROM live_calls ORDER BY call_key",
    ),
    (
        "alerts",
        "SELECT call_key, agent_id, kind, item_id, message, evidence, evidence_start_s,
            evidence_end_s, frame_ms, sent_ms, latency_ms, agent_pages, supervisor_pages,
            pbx_links FROM alerts ORDER BY call_key, sent_ms, item_id",
    ),
    (
        "verdicts",
        "SELECT call_key, rubric, item_id, action, by_name, note FROM verdicts
         ORDER BY call_key, rubric, item_id, id",
    ),
    (
        "calibrations",
        "SELECT k.name, k.requested_by, k.reviewers, c.call_key FROM calibrations k
         LEFT JOIN calibration_calls c ON c.calibration_id = k.id ORDER BY k.name, c.call_key",
    ),
];

pub(crate) fn dump(db: &mut Db) -> Result<super::Dump, DbError> {
    let mut out = Vec::new();
    for (table, sql) in DUMP {
        let rows = db
            .query(sql, super::db::args![])?
            .into_iter()
            .map(|r| format!("{r:?}"))
            .collect();
        out.push((table.to_string(), rows));
    }
    Ok(out)
}
