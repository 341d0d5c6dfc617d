//! Faults in the store, each with the expected clear message and nothing lost: a full disk
//! mid-batch, a read-only database, a database locked by another process past the busy
//! timeout, a corrupted database file, the models directory vanishing mid-batch. Never a
//! panic, never half a call, and the calls already stored stay intact.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use callqc::store::Store;
use common::*;

fn sha(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

fn calls_dir(dir: &Path, names: &[&str]) -> std::path::PathBuf {
    let calls = dir.join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    for n in names {
        for ext in ["wav", "json"] {
            std::fs::copy(
                sample(&format!("{n}.{ext}")),
                calls.join(format!("{n}.{ext}")),
            )
            .unwrap();
        }
    }
    calls
}

fn batch(calls: &Path, db: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callqc"));
    c.args(["--threads", "2", "batch"])
        .arg(calls)
        .arg("--db")
        .arg(db)
        .current_dir(root())
        .env_remove("CALLQC_MODELS");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn no_panic(o: &Output) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(o.status.code(), Some(101), "a panic's exit code: {err}");
}

/// Every stored call whole: a score for each done call, its segments there.
fn assert_whole(db: &Path) -> usize {
    let store = Store::open(db).unwrap();
    let ids = store.done_call_ids().unwrap();
    for id in &ids {
        assert_eq!(
            store.scores(*id).unwrap().len(),
            1,
            "call {id} has no score"
        );
        assert!(!store.load_call(*id).unwrap().segments.is_empty());
    }
    let c = rusqlite::Connection::open(db).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    ids.len()
}

#[test]
fn a_full_disk_mid_batch_stops_it_with_the_reason_and_keeps_every_stored_call_whole() {
    require_models();
    let dir = tempfile::tempdir().unwrap();
    let calls = calls_dir(dir.path(), &["call01", "call02", "call03", "call04"]);
    let db = dir.path().join("q.db");
    // A quota of two pages more than the empty schema takes: about one call fits, not four.
    drop(Store::open(&db).unwrap());
    let schema_pages: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    let quota = (schema_pages + 2).to_string();
    let out = batch(&calls, &db, &[("CALLQC_DB_MAX_PAGES", &quota)]);
    no_panic(&out);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("q.db"), "{err}");
    assert!(err.contains("full"), "{err}");
    let stored = assert_whole(&db);
    assert!(stored < 4, "the quota should have stopped the batch");
    // With room again, a rerun finishes the rest and redoes nothing.
    let out = batch(&calls, &db, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(assert_whole(&db), 4);
}

#[test]
fn a_corrupted_database_is_refused_by_name_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let calls = calls_dir(dir.path(), &["call01"]);
    let db = dir.path().join("broken.db");
    let mut junk = b"SQLite format 3\0".to_vec();
    junk.extend((0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8));
    std::fs::write(&db, &junk).unwrap();
    let before = sha(&db);
    let out = batch(&calls, &db, &[]);
    no_panic(&out);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("broken.db"), "{err}");
    assert!(
        err.contains("malformed") || err.contains("not a database"),
        "{err}"
    );
    assert_eq!(sha(&db), before, "callqc wrote into a corrupted database");
    let show = callqc(&["show", "call01", "--db", db.to_str().unwrap()]);
    no_panic(&show);
    assert!(!show.status.success());
    assert!(stderr(&show).contains("broken.db"));
}

#[test]
fn a_database_locked_past_the_busy_timeout_is_a_clear_error_and_the_store_is_intact() {
    require_models();
    let dir = tempfile::tempdir().unwrap();
    let calls = calls_dir(dir.path(), &["call01"]);
    let db = dir.path().join("locked.db");
    let out = batch(&calls, &db, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = assert_whole(&db);
    // Another process (here: another connection) holds the write lock.
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let review = Command::new(env!("CARGO_BIN_EXE_callqc"))
        .args(["rescore", "--db"])
        .arg(&db)
        .current_dir(root())
        .env("CALLQC_DB_BUSY_TIMEOUT_MS", "300")
        .output()
        .unwrap();
    no_panic(&review);
    assert!(!review.status.success());
    let err = stderr(&review);
    assert!(err.contains("locked.db"), "{err}");
    assert!(err.contains("locked"), "{err}");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(assert_whole(&db), before);
}

#[test]
fn a_read_only_database_is_a_clear_error_and_keeps_its_calls() {
    require_models();
    let dir = tempfile::tempdir().unwrap();
    let calls = calls_dir(dir.path(), &["call01", "call02"]);
    let db = dir.path().join("ro.db");
    let first = calls_dir(&dir.path().join("first"), &["call01"]);
    let out = batch(&first, &db, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Checkpoint the WAL so the file alone holds the calls, then make it read-only. As root
    // file modes do not bind, so the batch runs as `nobody` there.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let before = sha(&db);
    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    use std::os::unix::fs::PermissionsExt;
    perms.set_mode(0o444);
    std::fs::set_permissions(&db, perms).unwrap();
    let root_user = unsafe { libc::geteuid() } == 0;
    let mut c = if root_user {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", env!("CARGO_BIN_EXE_callqc")]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_callqc"))
    };
    // nobody must be able to read the models, the calls and the directory.
    for p in [dir.path(), calls.as_path()] {
        let mut perms = std::fs::metadata(p).unwrap().permissions();
        perms.set_mode(0o755);
        std::fs::set_permissions(p, perms).unwrap();
    }
    let out = c
        .args(["--threads", "2", "batch"])
        .arg(&calls)
        .arg("--db")
        .arg(&db)
        .arg("--models")
        .arg(root().join("models"))
        .arg("--rubric")
        .arg(root().join("rubrics/12345.toml"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    no_panic(&out);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("ro.db"), "{err}");
    assert!(
        err.contains("readonly") || err.contains("read-only") || err.contains("unable to open"),
        "{err}"
    );
    assert_eq!(sha(&db), before);
    assert_eq!(assert_whole(&db), 1);
}

#[test]
fn the_models_directory_vanishing_mid_batch_does_not_stop_it() {
    require_models();
    let dir = tempfile::tempdir().unwrap();
    let calls = calls_dir(dir.path(), &["call01", "call02", "call03", "call04"]);
    let db = dir.path().join("m.db");
    // A copy of the models (hard links: instant) that is renamed away while the batch runs:
    // the workers loaded their models once before the first call.
    let models = dir.path().join("models");
    let ok = Command::new("cp")
        .arg("-al")
        .arg(root().join("models"))
        .arg(&models)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let child = Command::new(env!("CARGO_BIN_EXE_callqc"))
        .args(["--threads", "2", "--models"])
        .arg(&models)
        .arg("batch")
        .arg(&calls)
        .arg("--db")
        .arg(&db)
        .arg("--json")
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first stored call, then take the models away.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let done = rusqlite::Connection::open(&db)
            .and_then(|c| c.query_row("SELECT count(*) FROM calls", [], |r| r.get::<_, i64>(0)))
            .unwrap_or(0);
        if done >= 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no call stored");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::rename(&models, dir.path().join("models-gone")).unwrap();
    let out = child.wait_with_output().unwrap();
    no_panic(&out);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(assert_whole(&db), 4);
}
