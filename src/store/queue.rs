//! The work queue shared by many machines (PostgreSQL only): `jobs` has one row per call key.
//!
//! - **enqueue** registers calls; the same call twice is one job (a finished job is queued again
//!   only when asked, or when its audio changed);
//! - **claim** takes the oldest job that is queued or whose lease expired, under
//!   `FOR UPDATE SKIP LOCKED` (claimers never wait on each other), and gives it a fresh lease:
//!   a token from a sequence, the worker's name and a deadline on the *database's* clock (no
//!   clock of a worker machine matters);
//! - **heartbeat** pushes the deadline on while the worker analyses; it succeeds only while
//!   the token is still the job's;
//! - **completion** happens inside the transaction that stores the call ([`complete`], called
//!   by `Store::save_call` when the store is fenced): it updates the job only where the token
//!   still matches, and otherwise aborts the whole transaction — a worker that was paused past
//!   its lease and whose call another worker took writes nothing;
//! - a failed attempt ([`fail_attempt`]) puts the job back, until `max_attempts`, after which the
//!   call is recorded as failed with every attempt's reason in `job_errors`.

use serde::Serialize;

use super::db::{Db, DbError, Row, args};
use super::{Backend, Store, StoreError};

/// A worker's claim on one job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lease {
    pub job_id: i64,
    pub token: i64,
    pub call_key: String,
    pub path: String,
    /// JSON of the call's particulars (agent, call id, channel map, source, date).
    pub job: String,
    pub batch_id: i64,
    /// This is the job's attempt number `attempt` (1 = first).
    pub attempt: i64,
    pub max_attempts: i64,
    pub worker: String,
}

/// One call to enqueue.
#[derive(Debug, Clone)]
pub struct QueuedCall {
    pub call_key: String,
    pub path: String,
    pub audio_hash: Option<String>,
    pub job: String,
    /// Queue it again even if its job is done or failed (`--force`, or not done under the
    /// current models and rubric).
    pub again: bool,
}

/// What an enqueue did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Enqueued {
    pub batch_id: i64,
    pub added: usize,
    pub requeued: usize,
    /// Already queued, running or finished: left as they are.
    pub unchanged: usize,
}

/// The queue's state across all workers, for `callqc progress`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueCounts {
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
    /// Leases past their deadline (a worker died or hangs; the job will be taken again).
    pub expired: i64,
    pub done_last_10_min: i64,
    pub done_last_hour: i64,
    pub audio_h_done: f64,
    /// Mean seconds a worker spent per call, and of those in claim + heartbeats + completion.
    pub mean_analysis_s: Option<f64>,
    pub mean_queue_s: Option<f64>,
    /// Workers seen in the last minute.
    pub workers_active: i64,
    /// Calls per hour over the last 10 minutes (all workers).
    pub calls_per_hour: f64,
    /// Hours to finish the queued and running calls at that rate.
    pub eta_h: Option<f64>,
    /// Failed jobs: (call key, last error).
    pub failures: Vec<(String, String)>,
}

fn lease_lost(lease: &Lease) -> StoreError {
    StoreError::LeaseLost {
        at: String::new(),
        call_key: lease.call_key.clone(),
    }
}

/// Completes `lease`'s job inside the transaction that stores its call; the transaction
/// aborts (nothing is written) if the lease is no longer the job's.
pub(crate) fn complete(db: &mut Db, lease: &Lease, audio_s: f64) -> Result<(), StoreError> {
    let n = db.execute(
        "UPDATE jobs SET state = 'done', finished_at = now(), lease_until = NULL, audio_s = ?3,
            last_error = NULL
         WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
        args![lease.job_id, lease.token, audio_s],
    )?;
    if n == 0 {
        return Err(lease_lost(lease));
    }
    db.execute(
        "UPDATE workers SET calls_done = calls_done + 1, seen_at = now() WHERE name = ?1",
        args![lease.worker],
    )?;
    Ok(())
}

/// Logs a failed attempt of `lease`'s job (fenced like [`complete`]). Returns true when that
/// was the last attempt (the job is now failed and the call is to be recorded as failed),
/// false when the job went back to the queue.
pub(crate) fn fail_attempt(db: &mut Db, lease: &Lease, error: &str) -> Result<bool, StoreError> {
    let last = lease.attempt >= lease.max_attempts;
    let n = db.execute(
        "UPDATE jobs SET state = CASE WHEN ?3 = 1 THEN 'failed' ELSE 'queued' END,
            finished_at = CASE WHEN ?3 = 1 THEN now() ELSE NULL END,
            lease_token = NULL, lease_until = NULL, last_error = ?4
         WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
        args![lease.job_id, lease.token, last, error],
    )?;
    if n == 0 {
        return Err(lease_lost(lease));
    }
    db.execute(
        "INSERT INTO job_errors (job_id, attempt, worker, error) VALUES (?1, ?2, ?3, ?4)",
        args![lease.job_id, lease.attempt, lease.worker, error],
    )?;
    Ok(last)
}

fn lease_of(r: &Row, worker: &str, max_attempts: i64) -> Result<Lease, DbError> {
    Ok(Lease {
        job_id: r.get(0)?,
        call_key: r.get(1)?,
        token: r.get(2)?,
        attempt: r.get(3)?,
        job: r.get(4)?,
        path: r.get(5)?,
        batch_id: r.get(6)?,
        max_attempts,
        worker: worker.to_string(),
    })
}

impl Store {
    fn needs_postgres(&self, what: &'static str) -> Result<(), StoreError> {
        match self.backend() {
            Backend::Postgres => Ok(()),
            Backend::Sqlite => Err(StoreError::NeedsPostgres {
                at: self.location(),
                what,
            }),
        }
    }

    /// Register calls as one batch (see the module doc for what "once" means).
    pub fn enqueue(&mut self, calls: &[QueuedCall]) -> Result<Enqueued, StoreError> {
        self.needs_postgres("enqueue")?;
        self.transaction(|db| {
            let batch_id: i64 = db
                .query_one(
                    "INSERT INTO batches (calls) VALUES (?1) RETURNING id",
                    args![calls.len()],
                )?
                .get(0)?;
            let mut out = Enqueued {
                batch_id,
                ..Enqueued::default()
            };
            for c in calls {
                // RETURNING gives a row for an insert (xmax = 0) or an update, none when the
                // existing job is left alone.
                let row = db.query_opt(
                    "INSERT INTO jobs (call_key, batch_id, path, audio_hash, job)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (call_key) DO UPDATE SET batch_id = excluded.batch_id,
                        path = excluded.path, audio_hash = excluded.audio_hash, job = excluded.job,
                        state = 'queued', attempts = 0, lease_token = NULL, worker = NULL,
                        lease_until = NULL, finished_at = NULL, last_error = NULL,
                        enqueued_at = now()
                     WHERE jobs.state IN ('done', 'failed')
                        AND (?6 = 1 OR jobs.audio_hash IS DISTINCT FROM excluded.audio_hash)
                     RETURNING (xmax = 0)",
                    args![c.call_key, batch_id, c.path, c.audio_hash, c.job, c.again],
                )?;
                match row.map(|r| r.get::<bool>(0)).transpose()? {
                    Some(true) => out.added += 1,
                    Some(false) => out.requeued += 1,
                    None => out.unchanged += 1,
                }
            }
            Ok(out)
        })
    }

    /// Announce a worker (for `progress`).
    pub fn register_worker(&self, name: &str) -> Result<(), StoreError> {
        self.needs_postgres("worker")?;
        self.with(|db| {
            db.execute(
                "INSERT INTO workers (name) VALUES (?1)
                 ON CONFLICT (name) DO UPDATE SET seen_at = now()",
                args![name],
            )?;
            Ok(())
        })
    }

    /// Claim the next job for `worker` under a lease of `lease_s` seconds; None when nothing
    /// is left to claim. A job taken over from an expired lease has that logged as a failed
    /// attempt; a job whose attempts are spent is marked failed instead of claimed.
    pub fn claim(
        &self,
        worker: &str,
        lease_s: f64,
        max_attempts: i64,
    ) -> Result<Option<Lease>, StoreError> {
        self.needs_postgres("claim")?;
        loop {
            let claimed = self.transaction(|db| {
                let Some(r) = db.query_opt(
                    "WITH next AS (
                        SELECT id, state AS old_state, worker AS old_worker FROM jobs
                        WHERE state = 'queued' OR (state = 'running' AND lease_until < now())
                        ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                     UPDATE jobs j SET state = 'running', attempts = j.attempts + 1,
                        lease_token = nextval('lease_tokens'), worker = ?1,
                        lease_until = now() + make_interval(secs => ?2), claimed_at = now()
                     FROM next WHERE j.id = next.id
                     RETURNING j.id, j.call_key, j.lease_token, j.attempts, j.job, j.path,
                        j.batch_id, next.old_state, next.old_worker",
                    args![worker, lease_s],
                )?
                else {
                    return Ok(None);
                };
                let lease = lease_of(&r, worker, max_attempts)?;
                let old_state: String = r.get(7)?;
                if old_state == "running" {
                    let old_worker: Option<String> = r.get(8)?;
                    db.execute(
                        "INSERT INTO job_errors (job_id, attempt, worker, error)
                         VALUES (?1, ?2, ?3, ?4)",
                        args![
                            lease.job_id,
                            lease.attempt - 1,
                            old_worker,
                            "the lease expired (the worker stopped or lost the database)"
                        ],
                    )?;
                }
                if lease.attempt > max_attempts {
                    db.execute(
                        "UPDATE jobs SET state = 'failed', finished_at = now(),
                            lease_token = NULL, lease_until = NULL,
                            last_error = 'attempts exhausted: ' || (attempts - 1) || ' leases expired or failed'
                         WHERE id = ?1",
                        args![lease.job_id],
                    )?;
                    return Ok(Some(None));
                }
                Ok(Some(Some(lease)))
            })?;
            match claimed {
                None => return Ok(None),
                Some(None) => continue,
                Some(Some(lease)) => return Ok(Some(lease)),
            }
        }
    }

    /// Push `lease`'s deadline `lease_s` seconds on; false if the lease is no longer the job's.
    pub fn heartbeat(&self, lease: &Lease, lease_s: f64) -> Result<bool, StoreError> {
        self.with(|db| {
            let n = db.execute(
                "UPDATE jobs SET lease_until = now() + make_interval(secs => ?3)
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
                args![lease.job_id, lease.token, lease_s],
            )?;
            db.execute(
                "UPDATE workers SET seen_at = now() WHERE name = ?1",
                args![lease.worker],
            )?;
            Ok(n == 1)
        })
    }

    /// Complete `lease`'s job without analysis: its call is already stored from the same audio,
    /// models and rubric (a call enqueued again). Fenced like a stored call.
    pub fn complete_unchanged(&self, lease: &Lease) -> Result<(), StoreError> {
        self.transaction(|db| complete(db, lease, 0.0))
    }

    /// Record how long the worker spent on a completed job, and how much of it in the queue.
    pub fn record_job_time(
        &self,
        lease: &Lease,
        analysis_s: f64,
        queue_s: f64,
    ) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "UPDATE jobs SET analysis_s = ?3, queue_s = ?4 WHERE id = ?1 AND lease_token = ?2",
                args![lease.job_id, lease.token, analysis_s, queue_s],
            )?;
            Ok(())
        })
    }

    /// Give a claimed job back untouched (a worker asked to stop before it began): it does not
    /// count as an attempt.
    pub fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_token = NULL,
                    lease_until = NULL, worker = NULL
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
                args![lease.job_id, lease.token],
            )?;
            Ok(())
        })
    }

    /// The keys of the calls of a batch (a worker's voice history leaves them out, as a batch
    /// on one machine does).
    pub fn batch_keys(&self, batch_id: i64) -> Result<Vec<String>, StoreError> {
        self.with(|db| {
            Ok(db.column(
                "SELECT call_key FROM jobs WHERE batch_id = ?1",
                args![batch_id],
            )?)
        })
    }

    /// How many jobs of these batches (of all, when none is named) are queued or running.
    pub fn batches_pending(&self, batch_ids: &[i64]) -> Result<i64, StoreError> {
        let ids: Vec<String> = batch_ids.iter().map(|i| i.to_string()).collect();
        self.with(|db| {
            Ok(db
                .query_one(
                    "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')
                        AND (?1 = '' OR batch_id::text = ANY (string_to_array(?1, ',')))",
                    args![ids.join(",")],
                )?
                .get(0)?)
        })
    }

    /// Counts, throughput and ETA across every worker.
    pub fn progress(&self) -> Result<QueueCounts, StoreError> {
        self.needs_postgres("progress")?;
        self.with(|db| {
            let r = db.query_one(
                "SELECT
                    count(*) FILTER (WHERE state = 'queued'),
                    count(*) FILTER (WHERE state = 'running'),
                    count(*) FILTER (WHERE state = 'done'),
                    count(*) FILTER (WHERE state = 'failed'),
                    count(*) FILTER (WHERE state = 'running' AND lease_until < now()),
                    count(*) FILTER (WHERE state = 'done' AND finished_at > now() - interval '10 minutes'),
                    count(*) FILTER (WHERE state = 'done' AND finished_at > now() - interval '1 hour'),
                    coalesce(sum(audio_s) FILTER (WHERE state = 'done'), 0.0) / 3600.0,
                    avg(analysis_s), avg(queue_s),
                    (SELECT count(*) FROM workers WHERE seen_at > now() - interval '1 minute')
                 FROM jobs",
                args![],
            )?;
            let mut q = QueueCounts {
                queued: r.get(0)?,
                running: r.get(1)?,
                done: r.get(2)?,
                failed: r.get(3)?,
                expired: r.get(4)?,
                done_last_10_min: r.get(5)?,
                done_last_hour: r.get(6)?,
                audio_h_done: r.get(7)?,
                mean_analysis_s: r.get(8)?,
                mean_queue_s: r.get(9)?,
                workers_active: r.get(10)?,
                ..QueueCounts::default()
            };
            q.calls_per_hour = q.done_last_10_min as f64 * 6.0;
            let left = (q.queued + q.running) as f64;
            q.eta_h = (q.calls_per_hour > 0.0).then(|| left / q.calls_per_hour);
            q.failures = db
                .query(
                    "SELECT call_key, coalesce(last_error, '') FROM jobs WHERE state = 'failed'
                     ORDER BY id",
                    args![],
                )?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get(1)?)))
                .collect::<Result<_, DbError>>()?;
            Ok(q)
        })
    }
}
