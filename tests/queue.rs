//! Many machines, one PostgreSQL store: every call stored exactly once, whatever happens to the
//! workers and the database. Real worker processes of the real binary, real whisper, a real
//! PostgreSQL cluster (common/pg.rs) that is restarted mid-run.

mod common;
#[path = "common/pg.rs"]
mod pg;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callqc::store::Store;

fn spawn_worker(url: &str, name: &str, out: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_callqc"))
        .args([
            "--threads",
            "1",
            "worker",
            "--db",
            url,
            "--workers",
            "1",
            "--name",
            name,
            "--lease",
            "3",
            "--poll",
            "0.2",
            "--exit-when-done",
        ])
        .current_dir(common::root())
        .env_remove("CALLQC_MODELS")
        .env("RUST_LOG", "warn")
        .stdout(std::fs::File::create(out.join(format!("{name}.out"))).unwrap())
        .stderr(std::fs::File::create(out.join(format!("{name}.err"))).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .expect("start a worker")
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: a plain kill(2) on our own child.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({}, {sig})", child.id());
}

/// Rows of a query on the queue, as text (retried while the database restarts).
fn query(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = postgres::Client::connect(url, postgres::NoTls).and_then(|mut c| {
            c.simple_query(sql).map(|msgs| {
                msgs.into_iter()
                    .filter_map(|m| match m {
                        postgres::SimpleQueryMessage::Row(r) => {
                            Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                        }
                        _ => None,
                    })
                    .collect()
            })
        });
        match rows {
            Ok(r) => return r,
            Err(e) if Instant::now() < deadline => {
                eprintln!("query retry: {e}");
                std::thread::sleep(Duration::from_millis(300));
            }
            Err(e) => panic!("{sql}: {e}"),
        }
    }
}

/// Wait until `sql` returns a row; its first column.
fn wait_for(url: &str, sql: &str, what: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(row) = query(url, sql).into_iter().next() {
            return row[0].clone().unwrap_or_default();
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_exit(child: &mut Child, name: &str, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("worker {name} did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn three_workers_a_kill_a_pause_and_a_database_restart_store_every_call_exactly_once() {
    common::require_models();
    let cluster = pg::PgCluster::start();
    let url = cluster.database("once");
    let work = tempfile::tempdir().unwrap();
    let samples = common::root().join("samples");
    let samples = samples.to_str().unwrap();

    // The reference: an ordinary SQLite batch of the same calls, one whisper thread per call as
    // the workers below.
    let reference = work.path().join("reference.db");
    let out = common::callqc(&[
        "--threads",
        "2",
        "batch",
        samples,
        "--workers",
        "2",
        "--db",
        reference.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));

    // Enqueueing is idempotent: the same files twice are one job each.
    for expected in [
        "8 new, 0 queued again, 0 already",
        "0 new, 0 queued again, 8 already",
    ] {
        let out = common::callqc(&["enqueue", samples, "--db", &url]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        assert!(
            common::stdout(&out).contains(expected),
            "{}",
            common::stdout(&out)
        );
    }

    let mut w1 = spawn_worker(&url, "w1", work.path());
    let mut w2 = spawn_worker(&url, "w2", work.path());
    let mut w3 = spawn_worker(&url, "w3", work.path());

    // w1 dies while it holds a lease.
    let killed_job = wait_for(
        &url,
        "SELECT id FROM jobs WHERE worker = 'w1' AND state = 'running'",
        "w1 to claim a call",
        Duration::from_secs(120),
    );
    signal(&w1, libc::SIGKILL);
    let _ = w1.wait();

    // w2 is paused while it holds a lease, past the lease, until another worker has its call.
    let paused_job = wait_for(
        &url,
        "SELECT id FROM jobs WHERE worker = 'w2' AND state = 'running'",
        "w2 to claim a call",
        Duration::from_secs(120),
    );
    signal(&w2, libc::SIGSTOP);

    // The database goes down and comes back while w3 works.
    std::thread::sleep(Duration::from_millis(1500));
    cluster.restart_immediately();

    wait_for(
        &url,
        &format!(
            "SELECT state FROM jobs WHERE id = {paused_job} AND (state = 'done' OR worker <> 'w2')"
        ),
        "w2's call to be taken over",
        Duration::from_secs(300),
    );
    signal(&w2, libc::SIGCONT);

    let s3 = wait_exit(&mut w3, "w3", Duration::from_secs(900));
    let s2 = wait_exit(&mut w2, "w2", Duration::from_secs(900));
    let read = |name: &str| std::fs::read_to_string(work.path().join(name)).unwrap_or_default();
    assert!(s3.success(), "w3: {}\n{}", read("w3.out"), read("w3.err"));
    assert!(s2.success(), "w2: {}\n{}", read("w2.out"), read("w2.err"));
    // The restart was met (a heartbeat or a statement failed, and was retried).
    let w3_log = read("w3.err");
    assert!(
        w3_log.contains("heartbeat failed") || w3_log.contains("retrying"),
        "w3 did not notice the restart: {w3_log}"
    );

    // Every job done, every call once.
    let states = query(&url, "SELECT state, count(*) FROM jobs GROUP BY state");
    assert_eq!(
        states,
        vec![vec![Some("done".to_string()), Some("8".to_string())]],
        "w2: {}\nw3: {}",
        read("w2.err"),
        read("w3.err")
    );
    let calls = query(&url, "SELECT count(*), count(DISTINCT call_key) FROM calls");
    assert_eq!(calls[0], vec![Some("8".into()), Some("8".into())]);
    // The killed worker's and the paused worker's leases expired and were logged as failed
    // attempts; the paused worker's late result was dropped, not written.
    let expired: Vec<String> = query(
        &url,
        "SELECT job_id::text FROM job_errors WHERE error LIKE 'the lease expired%' ORDER BY 1",
    )
    .into_iter()
    .filter_map(|r| r[0].clone())
    .collect();
    assert!(expired.contains(&killed_job), "{expired:?}");
    assert!(expired.contains(&paused_job), "{expired:?}");
    assert!(
        read("w2.out").contains("1 lost to an expired lease"),
        "w2 should have dropped its stale call: {}\n{}",
        read("w2.out"),
        read("w2.err")
    );

    // Row for row what the SQLite batch stored.
    let pg = Store::open(Path::new(&url)).unwrap().dump().unwrap();
    let sqlite = Store::open(&reference).unwrap().dump().unwrap();
    for ((table, rows), (_, reference_rows)) in pg.iter().zip(&sqlite) {
        assert_eq!(rows.len(), reference_rows.len(), "table {table}: row count");
        for (a, b) in rows.iter().zip(reference_rows) {
            assert_eq!(a, b, "table {table}");
        }
    }
    assert!(
        pg.iter()
            .any(|(t, rows)| t == "segments" && rows.len() > 50)
    );

    // Trainers' and QCs' commands read the shared store as they read a SQLite one.
    let reference = reference.to_str().unwrap();
    let json_of = |args: &[&str]| -> serde_json::Value {
        let out = common::callqc(args);
        assert!(out.status.success(), "{args:?}: {}", common::stderr(&out));
        without_ids(serde_json::from_str(&common::stdout(&out)).unwrap())
    };
    for db in [url.as_str(), reference] {
        let out = common::callqc(&["show", "call05", "--db", db]);
        assert!(
            out.status.success(),
            "show on {db}: {}",
            common::stderr(&out)
        );
    }
    assert_eq!(
        json_of(&["flagged", "--db", &url, "--json"]),
        json_of(&["flagged", "--db", reference, "--json"])
    );
    let report = |db: &str| {
        let page = work.path().join("report.html");
        json_of(&[
            "report",
            "--db",
            db,
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
            "--out",
            page.to_str().unwrap(),
            "--json",
        ])
    };
    assert_eq!(report(&url), report(reference));

    // progress reads the same queue.
    let out = common::callqc(&["progress", "--db", &url, "--json"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let p: serde_json::Value = serde_json::from_str(&common::stdout(&out)).unwrap();
    assert_eq!(p["done"], 8);
    assert_eq!(p["queued"], 0);
}

/// Row ids differ between two stores of the same calls (each numbers rows in its own order).
fn without_ids(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| k != "id" && k != "call_id")
                .map(|(k, v)| (k, without_ids(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_ids).collect()),
        v => v,
    }
}

#[test]
fn queue_commands_on_a_sqlite_file_say_they_need_postgres() {
    let out = common::callqc(&["progress", "--db", "callqc.db"]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("needs a PostgreSQL store"),
        "{}",
        common::stderr(&out)
    );
}
