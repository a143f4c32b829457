//! `s3://` outputs, inputs and checkpoints through the command, against the real Dovecot
//! and SeaweedFS servers (`scripts/test-infra.sh up`; the tests fail when they are
//! missing), and refusals SeaweedFS is not set up to make (an unknown access key, a
//! denied PutObject) from the testkit's `RefusingS3`.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use legacyflo_testkit::readpst::readpst_counts;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use legacyflo_core::request::S3Settings;
use legacyflo_testkit::s3mem::{MemS3, Mode};
use legacyflo_testkit::s3refuse::RefusingS3;
use legacyflo_testkit::servers::{
    ImapServer, S3Server, imap_server, reset_user, s3_server, seed_maildir,
};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn settings(s3: &S3Server) -> S3Settings {
    S3Settings {
        endpoint: Some(s3.endpoint.clone()),
        region: Some(s3.region.clone()),
        path_style: true,
    }
}

fn s3_args(s3: &S3Server) -> Vec<String> {
    vec![
        "--s3-endpoint".into(),
        s3.endpoint.clone(),
        "--s3-region".into(),
        s3.region.clone(),
        "--s3-path-style".into(),
        "true".into(),
    ]
}

fn make_bucket(s3: &S3Server, bucket: &str) {
    rt().block_on(async {
        let c = legacyflo_s3::client(&settings(s3)).await;
        if let Err(e) = c.create_bucket().bucket(bucket).send().await {
            let t = format!("{e:?}");
            assert!(t.contains("BucketAlreadyOwnedByYou"), "{t}");
        }
    });
}

fn fetch(s3: &S3Server, bucket: &str, key: &str, dest: &Path) {
    rt().block_on(async {
        let c = legacyflo_s3::client(&settings(s3)).await;
        legacyflo_s3::download_to_file(&c, bucket, key, dest)
            .await
            .unwrap_or_else(|e| panic!("download s3://{bucket}/{key}: {e}"));
    });
}

fn put(s3: &S3Server, bucket: &str, key: &str, src: &Path) {
    rt().block_on(async {
        let c = legacyflo_s3::client(&settings(s3)).await;
        legacyflo_s3::upload_file(
            &c,
            bucket,
            key,
            src,
            &legacyflo_s3::UploadOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("upload s3://{bucket}/{key}: {e}"));
    });
}

fn keys(s3: &S3Server, bucket: &str) -> Vec<String> {
    rt().block_on(async {
        let c = legacyflo_s3::client(&settings(s3)).await;
        let out = c.list_objects_v2().bucket(bucket).send().await.unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    })
}

fn open_uploads(s3: &S3Server, bucket: &str) -> usize {
    rt().block_on(async {
        let c = legacyflo_s3::client(&settings(s3)).await;
        let out = c
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        out.uploads().len()
    })
}

/// `n` distinct CRLF messages over three folders; returns (folder, raw) pairs.
fn messages(n: usize, pad: usize) -> Vec<(&'static str, Vec<u8>)> {
    let folders = ["INBOX", "Sent", "Archiv"];
    (0..n)
        .map(|i| {
            let body: String = format!("line {i} ").repeat(pad / 8 + 1);
            let raw = format!(
                "Message-ID: <m{i}@s3.test>\r\nFrom: Alice <alice@s3.test>\r\nTo: bob@s3.test\r\n\
                 Subject: message {i}\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n{body}\r\n"
            );
            (folders[i % 3], raw.into_bytes())
        })
        .collect()
}

/// `n` distinct messages of about `pad` bytes of pseudo-random hex (deflate keeps about
/// half), over three folders.
fn noisy_messages(n: usize, pad: usize) -> Vec<(&'static str, Vec<u8>)> {
    let folders = ["INBOX", "Sent", "Archiv"];
    (0..n)
        .map(|i| {
            let mut x = (i as u64 + 7).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut body = String::with_capacity(pad + 100);
            while body.len() < pad {
                for _ in 0..4 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    body.push_str(&format!("{x:016x}"));
                }
                body.push_str("\r\n");
            }
            let raw = format!(
                "Message-ID: <n{i}@s3.test>\r\nFrom: Alice <alice@s3.test>\r\nTo: bob@s3.test\r\n\
                 Subject: noisy {i}\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n{body}"
            );
            (folders[i % 3], raw.into_bytes())
        })
        .collect()
}

/// Acknowledged parts of the streamed ZIP in the S3 checkpoint (0 when none).
fn committed_parts_in_s3(s3: &S3Server, bucket: &str) -> usize {
    rt().block_on(async {
        let c = legacyflo_s3::client(&settings(s3)).await;
        let mut best = 0;
        for k in legacyflo_s3::list_keys(&c, bucket, "state/").await.unwrap() {
            let Ok(Some(b)) = legacyflo_s3::get_bytes(&c, bucket, &k).await else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b) else {
                continue;
            };
            let n = v["sink"]["current"]["zip"]["parts"]
                .as_array()
                .map_or(0, Vec::len);
            best = best.max(n);
        }
        best
    })
}

fn seed(server: &ImapServer, user: &str, msgs: &[(&str, Vec<u8>)]) {
    reset_user(server, user);
    for folder in ["INBOX", "Sent", "Archiv"] {
        let batch: Vec<(Vec<u8>, &str, i64)> = msgs
            .iter()
            .filter(|(f, _)| *f == folder)
            .map(|(_, raw)| (raw.clone(), "S", 1_700_000_000))
            .collect();
        seed_maildir(server, user, &[folder], &batch);
    }
}

fn imap_args(server: &ImapServer, kind: &str, user: &str, dest: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "run",
        kind,
        "--source-server",
        &server.host,
        "--source-port",
        &server.port.to_string(),
        "--source-user",
        user,
        "--source-password-env",
        "LF_SRC_PW",
        "--source-tls",
        "none",
        "--dest-url",
        dest,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(["-q".to_string()]);
    a
}

fn run(dir: &Path, args: &[String], pw: &str) -> std::process::Output {
    bin()
        .current_dir(dir)
        .env("LF_SRC_PW", pw)
        .args(args)
        .output()
        .expect("run legacyflo")
}

#[test]
fn imap_to_s3_zip_and_pst_then_back_from_s3() {
    let (imap, s3) = (imap_server(), s3_server());
    let msgs = messages(150, 400);
    seed(&imap, "src", &msgs);
    make_bucket(&s3, "lf-cli-out");
    let dir = tempfile::tempdir().unwrap();
    let want = multiset(msgs.iter().map(|(_, r)| sha256(r)));

    // IMAP -> S3 ZIP, named by --file-name.
    let mut args = imap_args(&imap, "IMAP-S3-ZIP", "src", "s3://lf-cli-out/zips/");
    args.extend(["--file-name".into(), "mailbox-src".into()]);
    args.extend(s3_args(&s3));
    let o = run(dir.path(), &args, "srcpw");
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("s3://lf-cli-out/zips/mailbox-src.zip"),
        "{}",
        text(&o)
    );
    let zip = dir.path().join("got.zip");
    let csv = dir.path().join("got.csv");
    fetch(&s3, "lf-cli-out", "zips/mailbox-src.zip", &zip);
    fetch(&s3, "lf-cli-out", "zips/mailbox-src.csv", &csv);
    python_testzip(&zip);
    let got = multiset(zip_eml_hashes(&zip).into_iter().map(|(_, h)| h));
    assert_eq!(got, want, "every message exactly once in the ZIP");
    assert_eq!(csv_rows(&csv).len(), msgs.len());
    let spool = dir.path().join(".legacyflo/spool");
    let left: Vec<_> = walk(&spool)
        .into_iter()
        .filter(|p| !p.ends_with("uploaded.json"))
        .collect();
    assert!(left.is_empty(), "spooled files are removed: {left:?}");

    // IMAP -> S3 PST: readpst sees every message in its folder.
    let mut args = imap_args(&imap, "IMAP-S3-PST", "src", "s3://lf-cli-out/psts/");
    args.extend(s3_args(&s3));
    let o = run(dir.path(), &args, "srcpw");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pst = dir.path().join("got.pst");
    fetch(&s3, "lf-cli-out", "psts/src.pst", &pst);
    fetch(
        &s3,
        "lf-cli-out",
        "psts/src.csv",
        &dir.path().join("pst.csv"),
    );
    let counts = readpst_counts(&pst, &dir.path().join("readpst"));
    let total: usize = counts.values().sum();
    assert_eq!(total, msgs.len(), "readpst: {counts:?}");
    for folder in ["INBOX", "Sent", "Archiv"] {
        let n = msgs.iter().filter(|(f, _)| *f == folder).count();
        let found = counts
            .iter()
            .filter(|(k, _)| k.ends_with(folder))
            .map(|(_, v)| *v)
            .sum::<usize>();
        assert_eq!(found, n, "{folder}: {counts:?}");
    }
    assert_eq!(open_uploads(&s3, "lf-cli-out"), 0);

    // S3 sources: the ZIP back from S3 into an mbox tree, and a PST from S3 into a ZIP.
    let mut args: Vec<String> = [
        "run",
        "EML-MBOX",
        "--source-url",
        "s3://lf-cli-out/zips/mailbox-src.zip",
        "--dest-url",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(dir.path().join("mboxes").display().to_string());
    args.extend(s3_args(&s3));
    args.push("-q".into());
    let o = run(dir.path(), &args, "");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mbox_bytes: usize = walk(&dir.path().join("mboxes"))
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len() as usize)
        .sum();
    assert!(
        mbox_bytes > msgs.iter().map(|(_, r)| r.len()).sum::<usize>(),
        "the mbox tree holds the messages"
    );

    let mut args: Vec<String> = [
        "run",
        "PST-S3-ZIP",
        "--source-url",
        "s3://lf-cli-out/psts/src.pst",
        "--dest-url",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(dir.path().join("frompst/").display().to_string());
    args.extend(s3_args(&s3));
    args.push("-q".into());
    let o = run(dir.path(), &args, "");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        zip_eml_hashes(&dir.path().join("frompst/src.zip")).len(),
        msgs.len()
    );

    // An mbox uploaded to S3 and read back as MBOX-S3-ZIP (the source is plain mbox).
    let mbox_file = dir.path().join("one.mbox");
    let mut mb = Vec::new();
    for (_, raw) in msgs.iter().take(10) {
        mb.extend_from_slice(b"From alice@s3.test Mon Jan  1 10:00:00 2024\r\n");
        mb.extend_from_slice(raw);
        mb.extend_from_slice(b"\r\n");
    }
    std::fs::write(&mbox_file, mb).unwrap();
    put(&s3, "lf-cli-out", "in/one.mbox", &mbox_file);
    let mut args: Vec<String> = [
        "run",
        "MBOX-S3-ZIP",
        "--source-url",
        "s3://lf-cli-out/in/one.mbox",
        "--dest-url",
        "s3://lf-cli-out/fromm/",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(s3_args(&s3));
    args.push("-q".into());
    let o = run(dir.path(), &args, "");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    fetch(
        &s3,
        "lf-cli-out",
        "fromm/one.zip",
        &dir.path().join("fromm.zip"),
    );
    assert_eq!(zip_eml_hashes(&dir.path().join("fromm.zip")).len(), 10);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn spawn(dir: &Path, args: &[String], pw: &str) -> std::process::Child {
    bin()
        .current_dir(dir)
        .env("LF_SRC_PW", pw)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn legacyflo")
}

/// Messages the S3 checkpoint says are durable (0 when there is none yet).
fn committed_in_s3(s3: &S3Server, bucket: &str) -> u64 {
    rt().block_on(async {
        let c = legacyflo_s3::client(&settings(s3)).await;
        let out = c
            .list_objects_v2()
            .bucket(bucket)
            .prefix("state/")
            .send()
            .await
            .unwrap();
        let mut best = 0;
        for o in out.contents() {
            let Some(k) = o.key() else { continue };
            let Ok(Some(b)) = legacyflo_s3::get_bytes(&c, bucket, k).await else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b) else {
                continue;
            };
            let n: u64 = v["folders"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .filter_map(|f| f["report"]["messages"].as_u64())
                        .sum()
                })
                .unwrap_or(0);
            best = best.max(n);
        }
        best
    })
}

#[test]
// Every path reaps the child (wait after kill, or after it exited); the lint cannot see
// through the polling loop.
#[allow(clippy::zombie_processes)]
fn sigkill_during_imap_to_s3_zip_then_rerun_stores_every_message_once() {
    let (imap, s3) = (imap_server(), s3_server());
    let n = 3000;
    // Incompressible bodies: the ZIP (about 20 MB) is streamed in several 8 MiB parts.
    let msgs = noisy_messages(n, 12_000);
    seed(&imap, "big", &msgs);
    // A fresh bucket per run: the server keeps objects (the S3 checkpoint) between runs.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let bucket = format!("lf-cli-kill-{}", nanos % 1_000_000_000_000);
    let bucket = bucket.as_str();
    make_bucket(&s3, bucket);
    let dir = tempfile::tempdir().unwrap();
    let mut args = imap_args(&imap, "IMAP-S3-ZIP", "big", &format!("s3://{bucket}/out/"));
    args.extend(s3_args(&s3));
    args.extend([
        "--commit-every".into(),
        "100".into(),
        "--state-dir".into(),
        format!("s3://{bucket}/state"),
        "--jobs".into(),
        "1".into(),
    ]);
    let mut child = spawn(dir.path(), &args, "bigpw");
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut killed = false;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            let _ = child.wait();
            break;
        }
        if committed_in_s3(&s3, bucket) >= 1500 {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        killed,
        "the run finished (or hung) before it could be killed"
    );
    let before = committed_in_s3(&s3, bucket);
    eprintln!("killed with {before} of {n} messages committed");
    assert!(before < n as u64, "killed mid-run ({before} committed)");
    let listed = keys(&s3, bucket);
    assert!(
        !listed
            .iter()
            .any(|k| k == "out/big.zip" || k == "out/big.csv"),
        "no output object before the run completes: {listed:?}"
    );
    assert!(
        listed.iter().any(|k| k.starts_with("out/big.zip.partial/")),
        "the committed tail is in S3: {listed:?}"
    );
    assert!(
        committed_parts_in_s3(&s3, bucket) >= 1,
        "the checkpoint holds acknowledged parts of the streamed ZIP"
    );
    assert_eq!(
        open_uploads(&s3, bucket),
        2,
        "the uploads of the ZIP and its content list are kept for the resume"
    );
    // The re-run is on "another machine": a fresh working directory and spool, the
    // checkpoint only in S3.
    let other = tempfile::tempdir().unwrap();
    let o = bin()
        .current_dir(other.path())
        .env("LF_SRC_PW", "bigpw")
        .env("LEGACYFLO_SPOOL_DIR", other.path().join("spool"))
        .args(&args)
        .output()
        .expect("run legacyflo");
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let zip = dir.path().join("got.zip");
    fetch(&s3, bucket, "out/big.zip", &zip);
    let got = multiset(zip_eml_hashes(&zip).into_iter().map(|(_, h)| h));
    let want: HashMap<String, usize> = multiset(msgs.iter().map(|(_, r)| sha256(r)));
    assert_eq!(got.len(), want.len(), "distinct messages");
    assert_eq!(
        got, want,
        "every message exactly once after SIGKILL + re-run"
    );
    let csv = dir.path().join("got.csv");
    fetch(&s3, bucket, "out/big.csv", &csv);
    assert_eq!(csv_rows(&csv).len(), n);
    assert_eq!(open_uploads(&s3, bucket), 0, "no orphaned multipart upload");
    let left: Vec<String> = keys(&s3, bucket)
        .into_iter()
        .filter(|k| k.starts_with("out/") && k != "out/big.zip" && k != "out/big.csv")
        .collect();
    assert!(left.is_empty(), "no state objects left: {left:?}");
    assert!(
        walk(other.path())
            .iter()
            .all(|p| !p.to_string_lossy().ends_with(".zip"))
    );
    // A third run finds the finished checkpoint in S3 and does nothing.
    let o = run(dir.path(), &args, "bigpw");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

fn zip_request(dest: &str, endpoint: &str) -> Vec<String> {
    let mut a: Vec<String> = ["run", "MBOX-S3-ZIP", "--source-url"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.push(sample_mailbox().display().to_string());
    a.extend(
        [
            "--dest-url",
            dest,
            "--s3-endpoint",
            endpoint,
            "--s3-region",
            "us-east-1",
            "--s3-path-style",
            "true",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    a
}

#[test]
fn bucket_problems_fail_fast_naming_bucket_and_action() {
    let s3 = s3_server();
    let dir = tempfile::tempdir().unwrap();
    // Missing bucket (real SeaweedFS).
    let o = run(
        dir.path(),
        &zip_request("s3://lf-cli-no-such-bucket/x/", &s3.endpoint),
        "",
    );
    assert_no_panic(&o);
    let t = text(&o);
    assert!(matches!(o.status.code(), Some(1 | 2)), "{t}");
    assert!(
        t.contains("lf-cli-no-such-bucket") && t.contains("HeadBucket"),
        "{t}"
    );
    assert!(!t.contains(&s3.secret_key), "no secret in the output");

    // A wrong secret (real SeaweedFS checks the signature).
    make_bucket(&s3, "lf-cli-creds");
    let o = bin()
        .current_dir(dir.path())
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret-value")
        .args(zip_request("s3://lf-cli-creds/x/", &s3.endpoint))
        .output()
        .unwrap();
    assert_no_panic(&o);
    let t = text(&o);
    assert!(matches!(o.status.code(), Some(1 | 2)), "{t}");
    assert!(
        t.contains("lf-cli-creds") && t.contains("HeadBucket") && t.contains("credentials"),
        "{t}"
    );
    assert!(
        !t.contains("not-the-secret-value"),
        "no secret in the output: {t}"
    );
    assert!(keys(&s3, "lf-cli-creds").is_empty(), "nothing written");

    let refusing = RefusingS3::start().unwrap();
    // An unknown access key.
    let o = bin()
        .current_dir(dir.path())
        .env("AWS_ACCESS_KEY_ID", RefusingS3::WRONG_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret-value")
        .args(zip_request("s3://some-bucket/x/", &refusing.endpoint))
        .output()
        .unwrap();
    let t = text(&o);
    assert!(matches!(o.status.code(), Some(1 | 2)), "{t}");
    assert!(t.contains("some-bucket") && t.contains("HeadBucket"), "{t}");
    assert!(
        !t.contains("not-the-secret-value"),
        "no secret in the output: {t}"
    );
    // Denied PutObject.
    let o = run(
        dir.path(),
        &zip_request(
            &format!("s3://{}/x/", RefusingS3::DENY_PUT_BUCKET),
            &refusing.endpoint,
        ),
        "",
    );
    let t = text(&o);
    assert!(matches!(o.status.code(), Some(1 | 2)), "{t}");
    assert!(
        t.contains(RefusingS3::DENY_PUT_BUCKET) && t.contains("PutObject") && t.contains("denied"),
        "{t}"
    );
    // A bad S3 field is a bad request naming the field.
    let mut a = zip_request("s3://b/x/", "ftp://nope");
    a.push("-q".into());
    let o = run(dir.path(), &a, "");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--s3-endpoint"), "{}", text(&o));
}

/// A part refused mid-run (before any commit referred to the upload): the run fails
/// naming the bucket and the action, the upload is aborted and no object is left.
#[test]
fn an_s3_error_mid_run_aborts_the_upload_and_leaves_nothing() {
    let server = MemS3::start(Mode::Keep, &["mem-out"]).unwrap();
    server.fail("UploadPart", 1, 403, "AccessDenied");
    let dir = tempfile::tempdir().unwrap();
    let mut a = zip_request("s3://mem-out/x/", &server.endpoint);
    a.push("-q".into());
    let o = run(dir.path(), &a, "");
    assert_no_panic(&o);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("mem-out") && t.contains("UploadPart"), "{t}");
    assert!(server.stats().aborted >= 1, "{:?}", server.stats());
    assert!(
        server.open_uploads().is_empty(),
        "no multipart upload left: {:?}",
        server.open_uploads()
    );
    assert!(
        server.keys("mem-out").is_empty(),
        "no object left: {:?}",
        server.keys("mem-out")
    );
}
