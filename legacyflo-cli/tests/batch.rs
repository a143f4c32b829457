//! `legacyflo batch`: every row validated first; good rows all run.
// Test helpers outside #[test] functions fail by panicking too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;

fn sample() -> String {
    sample_mailbox().display().to_string()
}

#[test]
fn one_bad_row_stops_the_batch_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("requests.csv");
    let s = sample();
    std::fs::write(
        &csv,
        format!(
            "Request Type,Source File,Destination,Since,Before,Folder\n\
             MBOX-S3-ZIP,{s},out/a/,,,INBOX\n\
             MBOX-S3-ZIP,{s},out/b/,2019-01-01,2030-01-01,\n\
             MBOX-S3-ZIP,{s},out/c/,2020-02-30,,\n"
        ),
    )
    .expect("write csv");
    let o = run_in(dir.path(), &["batch", "requests.csv", "--jobs", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_no_panic(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.lines()
            .any(|l| l
                == "error: row 4: Since (--since): `2020-02-30` is not a date in YYYY-MM-DD form"),
        "{err}"
    );
    assert!(
        !err.contains("row 2:") && !err.contains("row 3:"),
        "good rows reported as bad:\n{err}"
    );
    assert!(
        !dir.path().join("out").exists(),
        "a row ran although the batch was invalid"
    );
    assert!(!dir.path().join(".legacyflo").exists());
}

#[test]
fn every_bad_row_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("r.csv");
    std::fs::write(
        &csv,
        "type,source_url,dest_url\nNOPE-S3-ZIP,x,out/\nMBOX-S3-ZIP,/nonexistent/in,out/\nGMAIL-S3-ZIP,,out/g/\n",
    )
    .expect("write");
    let o = run_in(dir.path(), &["batch", "r.csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("row 2: Request Type"), "{err}");
    assert!(err.contains("row 3: Source File (--source-url)"), "{err}");
    assert!(err.contains("row 4:"), "{err}");
    assert!(err.contains("3 of 3 rows are invalid"), "{err}");
}

#[test]
fn password_column_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("r.csv"),
        "Request Type,Source Server,User ID,Password,Destination\nIMAP-S3-ZIP,h,u,PlainTextSecret99,out/\n",
    )
    .expect("write");
    let o = run_in(dir.path(), &["batch", "r.csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("source_password_env"), "{t}");
    assert!(!t.contains("PlainTextSecret99"), "{t}");
}

#[test]
fn missing_csv_is_a_bad_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run_in(dir.path(), &["batch", "nope.csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope.csv"));
}

#[test]
fn two_good_rows_both_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = sample();
    std::fs::write(
        dir.path().join("requests.csv"),
        format!(
            "type,--source-url,dest_url,file_name,folder\n\
             MBOX-S3-ZIP,{s},out/,inbox,INBOX\n\
             MBOX-S3-ZIP,{s},out/,all,\n"
        ),
    )
    .expect("write csv");
    let o = run_in(
        dir.path(),
        &[
            "batch",
            "requests.csv",
            "--jobs",
            "2",
            "--state-dir",
            "st",
            "--report",
            "reports.json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("row 2: MBOX-S3-ZIP done")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("row 3: MBOX-S3-ZIP done")),
        "{out}"
    );
    assert!(out.contains("2 requests: 2 done"), "{out}");
    for name in ["inbox", "all"] {
        assert!(
            dir.path().join(format!("out/{name}.zip")).is_file(),
            "out/{name}.zip missing:\n{out}"
        );
        assert!(
            dir.path().join(format!("out/{name}.csv")).is_file(),
            "out/{name}.csv missing"
        );
    }
    let inbox = zip_eml_hashes(&dir.path().join("out/inbox.zip")).len();
    let all = zip_eml_hashes(&dir.path().join("out/all.zip")).len();
    assert_eq!(all, legacyflo_corpus::sample_mailbox().len());
    assert!(inbox > 0 && inbox < all, "inbox {inbox}, all {all}");
    let reports = json(&dir.path().join("reports.json"));
    let reports = reports.as_array().expect("array");
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["row"].as_u64(), Some(2));
    assert_eq!(reports[1]["row"].as_u64(), Some(3));
    assert_eq!(
        reports[0]["totals"]["messages"].as_u64(),
        Some(inbox as u64)
    );
    assert_eq!(reports[1]["totals"]["messages"].as_u64(), Some(all as u64));
    // Each row has its own checkpoint.
    let states = std::fs::read_dir(dir.path().join("st"))
        .expect("state dir")
        .count();
    assert_eq!(states, 2);

    // Running the batch again resumes both finished requests: nothing is redone.
    let o = run_in(dir.path(), &["batch", "requests.csv", "--state-dir", "st"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("(resumed)"));
}
