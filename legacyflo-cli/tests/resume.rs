//! Killed with SIGKILL mid-run, the same command resumes and the archive holds every
//! message exactly once.
// Test helpers outside #[test] functions fail by panicking too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use legacyflo_corpus::{CorpusSpec, bench_corpus, write_mbox_tree};

/// Copies of each generated message (with a distinct header line), so that a corpus of
/// many small messages is cheap to make in a debug build.
const COPIES: usize = 10;

/// Writes `n` small messages (at most 8 KiB each) as an mbox tree; returns their hashes.
/// `n / COPIES` messages come from the benchmark generator; each is stored `COPIES` times
/// with an `X-Legacyflo-Copy` header in front, so every message's bytes are distinct.
fn make_corpus(dir: &Path, n: usize, seed: u64) -> HashMap<String, usize> {
    let spec = CorpusSpec {
        seed,
        messages: n,
        folders: 8,
        ..CorpusSpec::default()
    };
    let base: Vec<_> = bench_corpus(&spec)
        .filter(|m| m.raw.len() <= 8 * 1024)
        .take(n / COPIES)
        .collect();
    assert_eq!(
        base.len() * COPIES,
        n,
        "the generator gave too few small messages"
    );
    let mut msgs = Vec::with_capacity(n);
    for copy in 0..COPIES {
        for m in &base {
            let mut m = m.clone();
            let mut raw = format!("X-Legacyflo-Copy: {copy}\r\n").into_bytes();
            raw.extend_from_slice(&m.raw);
            m.raw = raw;
            msgs.push(m);
        }
    }
    let hashes = multiset(msgs.iter().map(|m| sha256(&m.raw)));
    assert_eq!(hashes.len(), n, "messages are not distinct");
    write_mbox_tree(dir, msgs).expect("write corpus");
    hashes
}

/// Messages the checkpoint in `state_dir` says are durable (0 when there is none yet).
fn committed(state_dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(state_dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|v| {
            v["folders"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .filter_map(|f| f["report"]["messages"].as_u64())
                        .sum()
                })
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0)
}

fn spawn(dir: &Path, args: &[String]) -> Child {
    bin()
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn legacyflo")
}

#[test]
fn sigkill_then_rerun_resumes_without_loss_or_duplicates() {
    // Sizes to try: a run must still be going when it is killed, so if the machine was
    // fast enough to finish first, the corpus grows and the test starts over.
    for (attempt, n) in [30_000usize, 90_000].into_iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("mbox");
        let expected = make_corpus(&src, n, 11 + attempt as u64);
        let state = dir.path().join("state");
        let report = dir.path().join("report.json");
        let args: Vec<String> = [
            "run",
            "MBOX-S3-ZIP",
            "--source-url",
            &src.display().to_string(),
            "--dest-url",
            &format!("{}/out/", dir.path().display()),
            "--commit-every",
            "500",
            "--state-dir",
            &state.display().to_string(),
            "--report",
            &report.display().to_string(),
            "-q",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let final_zip = dir.path().join("out/mbox.zip");
        let final_csv = dir.path().join("out/mbox.csv");

        let mut child = spawn(dir.path(), &args);
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut killed_at = None;
        while Instant::now() < deadline {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            let done = committed(&state);
            if done >= (n / 6) as u64 {
                child.kill().expect("SIGKILL"); // std sends SIGKILL
                child.wait().expect("reap");
                killed_at = Some(done);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let Some(killed_at) = killed_at else {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "attempt {attempt}: the run of {n} messages ended before it could be killed; growing the corpus"
            );
            continue;
        };
        assert!(
            !final_zip.exists(),
            "a final ZIP exists after the kill: the run was not interrupted"
        );
        let after_kill = committed(&state);
        assert!(
            after_kill >= killed_at && after_kill < n as u64,
            "checkpoint {after_kill} of {n}"
        );

        // The same command again, to the end.
        let o = bin()
            .current_dir(dir.path())
            .args(&args)
            .output()
            .expect("re-run");
        assert_eq!(o.status.code(), Some(0), "re-run failed:\n{}", text(&o));
        let r = json(&report);
        assert_eq!(r["resumed"].as_bool(), Some(true), "{r:#}");
        assert_eq!(
            r["totals"]["messages"].as_u64(),
            Some(n as u64),
            "{:#}",
            r["totals"]
        );

        let entries = zip_eml_hashes(&final_zip);
        assert_eq!(entries.len(), n, "ZIP entries");
        let names: std::collections::HashSet<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names.len(), n, "duplicate entry names");
        assert_eq!(
            multiset(entries.iter().map(|e| e.1.clone())),
            expected,
            "ZIP content differs from the source: lost or duplicated messages"
        );
        let rows = csv_rows(&final_csv);
        assert_eq!(rows.len(), n, "content-list rows");
        assert_eq!(
            multiset(rows.iter().map(|r| r["sha256"].clone())),
            expected,
            "content-list hashes"
        );
        python_testzip(&final_zip);
        eprintln!("killed after {killed_at} committed messages of {n}; resumed to completion");
        return;
    }
    panic!("every run finished before it could be killed; the test did not interrupt anything");
}
