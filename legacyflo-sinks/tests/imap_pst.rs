//! IMAP -> PST against the real Dovecot (`scripts/test-infra.sh up`; fails when it is
//! missing): a run killed with SIGKILL in the middle, then the same request again, leaves
//! every message exactly once in the PST. A PST keeps properties, not bytes, so messages
//! are compared by an identity that survives the round trip (Message-ID, subject and the
//! SHA-256 of the normalised text body), read back with the project's PST reader, and
//! counted by `readpst` (libpst), a reader we did not write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use futures::StreamExt;
use legacyflo_core::request::Secret;
use legacyflo_core::{
    Engine, EngineOptions, Filter, LocalStateStore, Message, Source, SourceEvent,
};
use legacyflo_sinks::pst::PstSink;
use legacyflo_sources::imap::{
    ConnectOptions, Credentials, ImapPreset, ImapSource, ImapSourceOptions, TlsMode,
};
use legacyflo_sources::pst::PstSource;
use legacyflo_testkit::servers::{ImapServer, imap_server, reset_user, seed_messages};
use mail_parser::MessageParser;
use sha2::{Digest, Sha256};

const USER: &str = "src";

fn login(server: &ImapServer) -> ConnectOptions {
    let mut o = ConnectOptions::new(
        server.host.clone(),
        server.port,
        Credentials::Login {
            user: USER.into(),
            password: Secret::new(format!("{USER}pw")),
        },
    );
    o.tls = TlsMode::None;
    o
}

/// Message-ID, subject and SHA-256 of the first text body with line ends and trailing
/// white space normalised.
fn identity(raw: &[u8]) -> String {
    let parsed = MessageParser::default().parse(raw);
    let (id, subject, body) = match &parsed {
        Some(m) => (
            m.message_id().unwrap_or_default().to_string(),
            m.subject().unwrap_or_default().to_string(),
            m.body_text(0).map(|b| b.into_owned()).unwrap_or_default(),
        ),
        None => Default::default(),
    };
    let body: String = body
        .replace("\r\n", "\n")
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    let body = body.trim_end();
    format!(
        "{id} | {subject} | {}",
        hex::encode(Sha256::digest(body.as_bytes()))
    )
}

fn multiset<'a>(raws: impl IntoIterator<Item = &'a [u8]>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in raws {
        *m.entry(identity(r)).or_insert(0) += 1;
    }
    m
}

fn request(server: &ImapServer, dest: &Path) -> (Arc<ImapSource>, Box<PstSink>, EngineOptions) {
    let source = Arc::new(ImapSource::new(ImapSourceOptions::new(
        login(server),
        ImapPreset::Generic,
    )));
    let sink = Box::new(PstSink::new(dest));
    let opts = EngineOptions {
        commit_every_messages: 100,
        jobs: 2,
        ..EngineOptions::default()
    };
    (source, sink, opts)
}

/// The child of `sigkill_mid_imap_to_pst_then_resume`: runs IMAP -> PST until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by sigkill_mid_imap_to_pst_then_resume as a child process"]
async fn pst_sigkill_child() {
    let Ok(dir) = std::env::var("LEGACYFLO_KILL_STATE") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let server = imap_server();
    let (source, sink, opts) = request(&server, &dir.join("out").join("kill.pst"));
    let res = Engine::new("IMAP-S3-PST", source, sink)
        .state(Arc::new(LocalStateStore::new(dir.join("state"), "kill")))
        .options(opts)
        .run()
        .await;
    assert!(res.error.is_none(), "{:?}", res.error);
}

async fn read_pst(path: &Path) -> Vec<Message> {
    let source = PstSource::new(path);
    let mut out = Vec::new();
    for f in source.list_folders().await.expect("list folders") {
        let mut s = source
            .stream(&f.path, &Filter::default(), None)
            .await
            .expect("stream");
        while let Some(ev) = s.next().await {
            match ev.expect("stream item") {
                SourceEvent::Message(item) => out.push(item.message),
                SourceEvent::Expunged { source_id, .. } => panic!("expunged {source_id}"),
                SourceEvent::Unreadable {
                    source_id, reason, ..
                } => panic!("unreadable {source_id} in {}: {reason}", f.path),
            }
        }
    }
    out
}

/// `readpst -e -8`: the Message-IDs of the exported `.eml` files (one entry per file).
fn readpst_message_ids(pst: &Path, out: &Path) -> BTreeMap<String, usize> {
    std::fs::create_dir_all(out).unwrap();
    let o = Command::new("readpst")
        .args(["-q", "-j", "0", "-e", "-8", "-o"])
        .arg(out)
        .arg(pst)
        .output()
        .expect("`readpst` is not installed: run `bash scripts/test.sh` (installs pst-utils)");
    assert!(
        o.status.success(),
        "readpst failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    fn rec(dir: &Path, map: &mut BTreeMap<String, usize>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                rec(&p, map);
            } else if p.extension().is_some_and(|e| e == "eml") {
                let raw = std::fs::read(&p).unwrap();
                let id = MessageParser::default()
                    .parse(&raw[..])
                    .and_then(|m| m.message_id().map(str::to_string))
                    .unwrap_or_default();
                *map.entry(id).or_insert(0) += 1;
            }
        }
    }
    let mut map = BTreeMap::new();
    rec(out, &mut map);
    map
}

/// SIGKILL in the middle of an IMAP -> PST run, then the same request again: every
/// source message exactly once in the PST (identity multisets agree, read with our PST
/// reader; readpst exports the same Message-IDs, each once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_imap_to_pst_then_resume() {
    let server = imap_server();
    reset_user(&server, USER);
    let msgs = legacyflo_testkit::corpus::generated(2000, 43);
    seed_messages(&server, USER, &msgs, "S");
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "pst_sigkill_child", "--ignored", "--nocapture"])
        .env("LEGACYFLO_KILL_STATE", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it right after its first checkpoint, in the middle of the next batch.
    let t = std::time::Instant::now();
    loop {
        let has_state = std::fs::read_dir(&state_dir)
            .map(|d| d.count() > 0)
            .unwrap_or(false);
        if has_state || t.elapsed() > std::time::Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(150));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child finished before it was killed");
    let state = std::fs::read_to_string(state_dir.join("kill.json")).unwrap();
    assert!(
        !state.contains("\"finished\":true"),
        "killed before finishing"
    );

    let dest = dir.path().join("out").join("kill.pst");
    let (source, sink, opts) = request(&server, &dest);
    let res = Engine::new("IMAP-S3-PST", source, sink)
        .state(Arc::new(LocalStateStore::new(&state_dir, "kill")))
        .options(opts)
        .run()
        .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    assert!(res.report.resumed);
    let totals = res.report.totals();
    eprintln!(
        "resumed run: {totals:?}, this run {} messages",
        res.report.run_messages
    );
    assert!(
        res.report.run_messages < msgs.len() as u64,
        "the resumed run redid everything"
    );
    assert_eq!(totals.messages, msgs.len() as u64, "{totals:?}");

    let got = read_pst(&dest).await;
    assert_eq!(got.len(), msgs.len(), "every message exactly once");
    let want = multiset(msgs.iter().map(|m| &m.raw[..]));
    let have = multiset(got.iter().map(|m| &m.raw[..]));
    let missing: Vec<_> = want
        .iter()
        .filter(|(k, n)| have.get(*k) != Some(n))
        .take(3)
        .collect();
    assert_eq!(have, want, "identity multisets differ; e.g. {missing:?}");

    let external = readpst_message_ids(&dest, &dir.path().join("readpst"));
    let mut want_ids: BTreeMap<String, usize> = BTreeMap::new();
    for m in &msgs {
        let id = MessageParser::default()
            .parse(&m.raw[..])
            .and_then(|p| p.message_id().map(str::to_string))
            .unwrap_or_default();
        *want_ids.entry(id).or_insert(0) += 1;
    }
    assert_eq!(
        external.values().sum::<usize>(),
        msgs.len(),
        "readpst: messages exported"
    );
    assert_eq!(external, want_ids, "readpst: Message-IDs, each once");
}
