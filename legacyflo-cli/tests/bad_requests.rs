//! Bad requests exit 2, name the field, show no stack trace and never print a secret.
// Test helpers outside #[test] functions fail by panicking too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;

fn bad(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run_in(dir.path(), args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "expected exit 2 for {args:?}:\n{}",
        text(&o)
    );
    assert_no_panic(&o);
    // Nothing ran, so nothing was written next to us.
    assert!(
        !dir.path().join(".legacyflo").exists(),
        "state written for a bad request"
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sample() -> String {
    sample_mailbox().display().to_string()
}

#[test]
fn unknown_type() {
    let err = bad(&["run", "NOPE-S3-ZIP", "--dest-url", "out/"]);
    assert!(err.contains("Request Type"), "{err}");
    assert!(err.contains("unknown request type `NOPE-S3-ZIP`"), "{err}");
}

#[test]
fn misspelt_type_gets_a_suggestion() {
    let err = bad(&["run", "MBOX-S3-ZIPP", "--dest-url", "out/"]);
    assert!(err.contains("did you mean MBOX-S3-ZIP?"), "{err}");
}

#[test]
fn missing_dest_url() {
    let err = bad(&["run", "MBOX-S3-ZIP", "--source-url", &sample()]);
    assert!(
        err.contains("error: Destination (--dest-url): missing"),
        "{err}"
    );
}

#[test]
fn bad_date() {
    let err = bad(&[
        "run",
        "MBOX-S3-ZIP",
        "--source-url",
        &sample(),
        "--dest-url",
        "out/",
        "--since",
        "2020-13-01",
    ]);
    assert!(
        err.lines()
            .any(|l| l == "error: Since (--since): `2020-13-01` is not a date in YYYY-MM-DD form"),
        "{err}"
    );
}

#[test]
fn since_not_before_before() {
    let err = bad(&[
        "run",
        "MBOX-S3-ZIP",
        "--source-url",
        &sample(),
        "--dest-url",
        "out/",
        "--since",
        "2021-01-01",
        "--before",
        "2021-01-01",
    ]);
    assert!(
        err.contains("error: Before (--before): must be later than Since"),
        "{err}"
    );
}

#[test]
fn missing_input_file() {
    let err = bad(&[
        "run",
        "MBOX-S3-ZIP",
        "--source-url",
        "/nonexistent/legacyflo/in.mbox",
        "--dest-url",
        "out/",
    ]);
    assert!(
        err.contains(
            "error: Source File (--source-url): `/nonexistent/legacyflo/in.mbox` does not exist"
        ),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let err = bad(&[
        "run",
        "MBOX-S3-ZIP",
        "--source-url",
        "/nonexistent/x",
        "--since",
        "yesterday",
    ]);
    assert!(err.contains("--source-url"), "{err}");
    assert!(err.contains("--since"), "{err}");
    assert!(err.contains("--dest-url"), "{err}");
}

#[test]
fn not_implemented_and_out_of_scope_types() {
    let err = bad(&[
        "run",
        "GMAILAPI-S3-ZIP",
        "--source-user",
        "u",
        "--dest-url",
        "out/",
    ]);
    assert!(
        err.contains("Source Credentials File (--source-credentials): missing"),
        "{err}"
    );
    let err = bad(&[
        "run",
        "TEAMS-S3-ZIP",
        "--source-user",
        "u",
        "--dest-url",
        "out/",
    ]);
    assert!(err.contains("out of scope"), "{err}");
}

#[test]
fn s3_state_dir_without_bucket_is_refused() {
    let err = bad(&[
        "run",
        "MBOX-S3-ZIP",
        "--source-url",
        &sample(),
        "--dest-url",
        "out/",
        "--state-dir",
        "s3:///state",
    ]);
    assert!(
        err.contains("--state-dir") && err.contains("needs a bucket"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    bad(&["run", "MBOX-S3-ZIP", "--no-such-flag"]);
    bad(&[
        "run",
        "MBOX-S3-ZIP",
        "--source-url",
        &sample(),
        "--dest-url",
        "out/",
        "--jobs",
        "0",
    ]);
    bad(&["frobnicate"]);
}

#[test]
fn password_values_never_appear() {
    const SECRET: &str = "Tr0ub4dor&3-legacyflo-secret";
    let dir = tempfile::tempdir().expect("tempdir");
    let pw_file = dir.path().join("pw.txt");
    std::fs::write(&pw_file, format!("{SECRET}\n")).expect("write pw");
    let pw_file = pw_file.display().to_string();
    // A real login against the test Dovecot with the secret as a (wrong) password.
    let host = std::env::var("TEST_IMAP_HOST")
        .expect("TEST_IMAP_HOST: run the tests with `bash scripts/test.sh`, which starts Dovecot");
    let port = std::env::var("TEST_IMAP_PORT")
        .expect("TEST_IMAP_PORT: run the tests with `bash scripts/test.sh`, which starts Dovecot");
    let cases: Vec<(Vec<&str>, i32)> = vec![
        // Valid request, refused by the server: exit 1, the password is not shown.
        (
            vec![
                "-vvv",
                "run",
                "IMAP-S3-ZIP",
                "--source-server",
                &host,
                "--source-port",
                &port,
                "--source-tls",
                "none",
                "--source-user",
                "alice",
                "--source-password-env",
                "LEGACYFLO_TEST_PW",
                "--dest-url",
                "out/",
            ],
            1,
        ),
        (
            vec![
                "run",
                "IMAP-S3-ZIP",
                "--source-server",
                &host,
                "--source-port",
                &port,
                "--source-tls",
                "none",
                "--source-user",
                "alice",
                "--source-password-file",
                &pw_file,
                "--dest-url",
                "out/",
            ],
            1,
        ),
        (
            // Invalid request: every error is printed, the secret is not.
            vec![
                "-vvv",
                "run",
                "IMAP-VAULTASTIC4",
                "--source-server",
                "127.0.0.1",
                "--source-user",
                "u",
                "--source-password-env",
                "LEGACYFLO_TEST_PW",
                "--dest-password-file",
                &pw_file,
                "--since",
                "bad",
            ],
            2,
        ),
    ];
    for (args, code) in cases {
        let o = bin()
            .current_dir(dir.path())
            .env("LEGACYFLO_TEST_PW", SECRET)
            .env("RUST_LOG", "trace")
            .args(&args)
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
        assert!(
            !text(&o).contains(SECRET),
            "secret printed for {args:?}:\n{}",
            text(&o)
        );
        assert!(
            !text(&o).contains("Tr0ub4dor"),
            "part of the secret printed for {args:?}"
        );
    }
}

#[test]
fn malformed_credentials_file_is_named_and_not_printed() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    std::fs::write(
        &key,
        "{\"type\": \"service_account\", \"client_email\": \"a@b\", \"private_key\": \"SECRETSECRET\"}",
    )
    .unwrap();
    let err = bad(&[
        "run",
        "GMAILAPI-S3-ZIP",
        "--source-user",
        "u@example.test",
        "--source-credentials",
        key.to_str().unwrap(),
        "--dest-url",
        "out/",
    ]);
    assert!(
        err.contains("Source Credentials File (--source-credentials)")
            && err.contains("`private_key` is not a PEM private key"),
        "{err}"
    );
    assert!(!err.contains("SECRETSECRET"), "{err}");
}
