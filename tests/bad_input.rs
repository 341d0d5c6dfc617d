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
