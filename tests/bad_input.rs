//! Bad input never panics: each bad file gives one line naming it and a non-zero exit, and the
//! other files of the same run are still processed.

mod common;

use common::*;

#[test]
fn corrupt_empty_and_non_audio_files_fail_cleanly() {
    require_models();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.wav");
    std::fs::write(&text, "这不是音频文件，只是一段文字。\n".repeat(50)).unwrap();
    // A real sample with its header mangled and its data cut.
    let good = std::fs::read(sample("call01.wav")).unwrap();
    let mut corrupt = good[..200].to_vec();
    corrupt[20..36].copy_from_slice(&[0xff; 16]);
    let corrupt_path = dir.path().join("corrupt.wav");
    std::fs::write(&corrupt_path, corrupt).unwrap();

    for bad in [&empty, &text, &corrupt_path] {
        let out = callqc(&["transcribe", bad.to_str().unwrap()]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{}: should fail", bad.display());
        assert!(!err.contains("panicked"), "{err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line expected, got: {err}");
        assert!(
            lines[0].contains(bad.to_str().unwrap()),
            "must name the file: {err}"
        );
    }

    // A bad file among good ones: the good one is still transcribed, the exit status says failure.
    let out = callqc(&[
        "transcribe",
        "--json",
        text.to_str().unwrap(),
        sample("call01.wav").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains("\"error\""));
    assert!(lines[1].contains("\"segments\""));
}

#[test]
fn wrong_flags_and_missing_models_are_clear_errors() {
    let out = callqc(&["transcribe", "--beam", "many", "x.wav"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--beam"));
    let out = callqc(&["transcribe", "--model", "/nonexistent/ggml-x.bin", "x.wav"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("/nonexistent/ggml-x.bin") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn a_fifo_or_a_directory_named_wav_is_refused_by_name_and_never_waited_on() {
    require_models();
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    std::fs::create_dir(&calls).unwrap();
    std::fs::copy(sample("call01.wav"), calls.join("call01.wav")).unwrap();
    let fifo = calls.join("pipe.wav");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let folder = dir.path().join("folder.wav");
    std::fs::create_dir(&folder).unwrap();

    // transcribe: one line each, naming the file and what it is.
    for (bad, kind) in [(&fifo, "FIFO"), (&folder, "directory")] {
        let out = callqc(&["transcribe", bad.to_str().unwrap()]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains(bad.to_str().unwrap()), "{err}");
        assert!(err.contains(kind), "{err}");
    }
    // batch over the folder holding the FIFO: the FIFO is recorded as failed, the good call
    // stored, and nothing blocks on the FIFO (a writer never comes).
    let db = dir.path().join("q.db");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callqc"))
        .args([
            "batch",
            calls.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ])
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("batch is stuck on the FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("1 analysed"), "{text}");
    assert!(text.contains("pipe.wav") && text.contains("FIFO"), "{text}");
}
