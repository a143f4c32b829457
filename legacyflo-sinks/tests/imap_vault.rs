//! The IMAP vault sink against the real Dovecot (`scripts/test-infra.sh up`); these tests
//! fail when the server is missing. Output is read back with the IMAP source.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::StreamExt;
use legacyflo_core::request::Secret;
use legacyflo_core::{
    Engine, EngineOptions, Filter, FolderPath, LocalStateStore, Message, RetryPolicy, Sink, Source,
    SourceEvent, WriteOutcome,
};
use legacyflo_sinks::imap::{ImapSink, ImapSinkOptions};
use legacyflo_sources::imap::{
    ConnectOptions, Credentials, ImapPreset, ImapSource, ImapSourceOptions, TlsMode,
};
use legacyflo_testkit::conformance::{self, SinkCaps, SinkHarness};
use legacyflo_testkit::faultproxy::FaultProxy;
use legacyflo_testkit::servers::{
    ImapServer, imap_server, reset_user, seed_maildir, seed_messages,
};
use sha2::{Digest, Sha256};

fn login(server: &ImapServer, user: &str, port: u16) -> ConnectOptions {
    let mut o = ConnectOptions::new(
        server.host.clone(),
        port,
        Credentials::Login {
            user: user.into(),
            password: Secret::new(format!("{}pw", user.split('@').next().unwrap_or(user))),
        },
    );
    o.tls = TlsMode::None;
    o
}

/// IMAP carries CRLF text: Dovecot serves bare LFs as CRLF and NULs as 0x80.
fn imap_canonical(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 16);
    for (i, &b) in raw.iter().enumerate() {
        match b {
            b'\n' if i == 0 || raw[i - 1] != b'\r' => out.extend_from_slice(b"\r\n"),
            0 => out.push(0x80),
            _ => out.push(b),
        }
    }
    out
}

fn canonical(msgs: Vec<Message>) -> Vec<Message> {
    msgs.into_iter()
        .map(|mut m| {
            m.raw = imap_canonical(&m.raw).into();
            m
        })
        .collect()
}

async fn read_all(source: &dyn Source) -> Vec<Message> {
    let mut out = Vec::new();
    for f in source.list_folders().await.expect("list") {
        if !f.selectable {
            continue;
        }
        let mut s = source
            .stream(&f.path, &Filter::default(), None)
            .await
            .expect("stream");
        while let Some(ev) = s.next().await {
            if let SourceEvent::Message(i) = ev.expect("item") {
                out.push(i.message);
            }
        }
    }
    out
}

/// Every `reset` moves to a fresh destination folder `h<N>` of one user.
struct Harness {
    server: ImapServer,
    user: &'static str,
    n: AtomicUsize,
    batch: usize,
}

impl Harness {
    fn root(&self) -> String {
        format!("h{}", self.n.load(Ordering::SeqCst))
    }
}

#[async_trait]
impl SinkHarness for Harness {
    async fn sink(&self) -> Box<dyn Sink> {
        let mut o = ImapSinkOptions::new(
            login(&self.server, self.user, self.server.port),
            ImapPreset::Vaultastic4,
            FolderPath::new([format!(
                "{}{}",
                self.root(),
                if self.batch > 1 { "b" } else { "" }
            )]),
        );
        o.append_batch = self.batch;
        Box::new(ImapSink::new(o))
    }

    async fn read_back(&self) -> Vec<Message> {
        let mut o = ImapSourceOptions::new(
            login(&self.server, self.user, self.server.port),
            ImapPreset::Generic,
        );
        o.root = Some(format!(
            "{}{}",
            self.root(),
            if self.batch > 1 { "b" } else { "" }
        ));
        read_all(&ImapSource::new(o)).await
    }

    async fn reset(&self) {
        self.n.fetch_add(1, Ordering::SeqCst);
    }

    fn caps(&self) -> SinkCaps {
        SinkCaps {
            byte_exact: true,
            flags: true,
            internal_date: true,
        }
    }
}

async fn write_all(sink: &mut Box<dyn Sink>, msgs: &[Message]) -> Vec<WriteOutcome> {
    let mut out = Vec::new();
    let mut begun: Vec<FolderPath> = Vec::new();
    for m in msgs {
        if !begun.contains(&m.folder) {
            sink.begin_folder(&m.folder).await.expect("begin_folder");
            begun.push(m.folder.clone());
        }
        out.push(sink.write(m).await.expect("write"));
    }
    out
}

async fn suite(user: &'static str, batch: usize) {
    let server = imap_server();
    reset_user(&server, user);
    let h = Harness {
        server,
        user,
        n: AtomicUsize::new(0),
        batch,
    };
    conformance::sink_round_trip(
        &h,
        "edge cases",
        canonical(legacyflo_testkit::corpus::edge_cases()),
    )
    .await;
    conformance::sink_round_trip(
        &h,
        "sample mailbox",
        canonical(legacyflo_testkit::corpus::sample()),
    )
    .await;
    conformance::sink_round_trip(
        &h,
        "generated corpus",
        canonical(legacyflo_testkit::corpus::generated(500, 7)),
    )
    .await;
    conformance::sink_redelivery_is_idempotent(&h).await;
    conformance::sink_abort_discards(&h).await;
    conformance::sink_resumes_after_failed_run(&h).await;
    // The suite's crash case expects the re-delivered uncommitted messages to be written
    // again (file sinks discard them). A server cannot discard an acknowledged APPEND, so
    // the sink recognises them instead (the Sink contract's other branch): they are
    // `Duplicate` (or `Written` when a batch never left the sink), and nothing is stored
    // twice.
    h.reset().await;
    let msgs = canonical(legacyflo_testkit::corpus::generated(10, 13));
    let mut first = h.sink().await;
    first.open(None).await.expect("open");
    write_all(&mut first, &msgs[..5]).await;
    let state = first.commit().await.expect("commit");
    write_all(&mut first, &msgs[5..8]).await;
    drop(first); // crash: no commit, no finish
    let mut second = h.sink().await;
    second.open(Some(state)).await.expect("open with state");
    let outcomes = write_all(&mut second, &msgs[5..]).await;
    if batch == 1 {
        assert!(
            outcomes[..3].iter().all(|o| *o == WriteOutcome::Duplicate),
            "{outcomes:?}"
        );
        assert!(
            outcomes[3..]
                .iter()
                .all(|o| matches!(o, WriteOutcome::Written { id: Some(_) })),
            "{outcomes:?}"
        );
    }
    second.finish().await.expect("finish");
    conformance::assert_delivered("crash resume", &msgs, &h.read_back().await, None, h.caps());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_one_append_per_write() {
    suite("vault", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_multiappend_batches() {
    suite("alice", 64).await;
}

#[tokio::test]
async fn vault_folders_reserved_names_and_appenduid() {
    let server = imap_server();
    reset_user(&server, "dst");
    let mut o = ImapSinkOptions::new(
        login(&server, "dst", server.port),
        ImapPreset::Vaultastic4,
        FolderPath::root(),
    );
    o.append_batch = 1;
    let mut sink: Box<dyn Sink> = Box::new(ImapSink::new(o));
    sink.open(None).await.unwrap();
    let mut m = Message::new(
        &b"Message-ID: <r@x>\r\nSubject: r\r\n\r\nx\r\n"[..],
        FolderPath::new(["Trash"]),
        "1",
    );
    m.internal_date = chrono::DateTime::from_timestamp(1_600_000_000, 0);
    let mut n = m.clone();
    n.folder = FolderPath::new(["Ünïcødé", "Ordner & Co"]);
    n.source_id = "2".into();
    sink.begin_folder(&m.folder).await.unwrap();
    let o = sink.write(&m).await.unwrap();
    assert!(
        matches!(&o, WriteOutcome::Written { id: Some(id) } if id.contains(':')),
        "{o:?}"
    );
    sink.begin_folder(&n.folder).await.unwrap();
    sink.write(&n).await.unwrap();
    let out = sink.finish().await.unwrap();
    assert_eq!(out[0].messages, 2);
    let src = ImapSource::new(ImapSourceOptions::new(
        login(&server, "dst", server.port),
        ImapPreset::Generic,
    ));
    let got = read_all(&src).await;
    let mut folders: Vec<String> = got.iter().map(|m| m.folder.to_string()).collect();
    folders.sort();
    assert_eq!(
        folders,
        vec![
            "Trash (migrated)".to_string(),
            "Ünïcødé/Ordner & Co".to_string()
        ]
    );
}

fn sha_multiset(msgs: &[Message]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for x in msgs {
        *m.entry(hex::encode(Sha256::digest(&x.raw))).or_insert(0) += 1;
    }
    m
}

/// IMAP -> vault through two proxies that cut the connections every few hundred KiB:
/// the run completes, nothing lost, nothing duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_to_vault_survives_cut_connections() {
    let server = imap_server();
    reset_user(&server, "carol@example.test");
    reset_user(&server, "bob");
    let msgs = legacyflo_testkit::corpus::generated(600, 31);
    type Seed<'a> = Vec<(Vec<u8>, &'a str, i64)>;
    let mut by_folder: BTreeMap<FolderPath, Seed> = BTreeMap::new();
    for m in &msgs {
        by_folder.entry(m.folder.clone()).or_default().push((
            imap_canonical(&m.raw),
            "S",
            m.internal_date.map(|d| d.timestamp()).unwrap_or(0),
        ));
    }
    for (f, seed) in &by_folder {
        let segs: Vec<&str> = f.segments().iter().map(String::as_str).collect();
        seed_maildir(&server, "carol@example.test", &segs, seed);
    }
    let upstream: std::net::SocketAddr = server.addr().parse().unwrap();
    let src_proxy = FaultProxy::start(upstream, 2_000_000).await;
    let dst_proxy = FaultProxy::start(upstream, 4_000_000).await;
    let source = Arc::new(ImapSource::new(ImapSourceOptions::new(
        login(&server, "carol@example.test", src_proxy.port()),
        ImapPreset::Generic,
    )));
    let sink = Box::new(ImapSink::new(ImapSinkOptions::new(
        login(&server, "bob", dst_proxy.port()),
        ImapPreset::Vaultastic4,
        FolderPath::new(["Migrated"]),
    )));
    let dir = tempfile::tempdir().unwrap();
    let opts = EngineOptions {
        commit_every_messages: 20,
        retry: RetryPolicy {
            max_retries: 200,
            initial_backoff: std::time::Duration::from_millis(5),
            max_backoff: std::time::Duration::from_millis(50),
        },
        ..EngineOptions::default()
    };
    let res = Engine::new("IMAP-VAULTASTIC4", source, sink)
        .state(Arc::new(LocalStateStore::new(dir.path(), "fault")))
        .options(opts)
        .run()
        .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    eprintln!(
        "cuts: source {} dest {}; retries {}",
        src_proxy.cuts(),
        dst_proxy.cuts(),
        res.report.retries
    );
    assert!(
        src_proxy.cuts() >= 3 && dst_proxy.cuts() >= 3,
        "the proxies must have cut"
    );
    let mut o = ImapSourceOptions::new(login(&server, "bob", server.port), ImapPreset::Generic);
    o.root = Some("Migrated".into());
    let got = read_all(&ImapSource::new(o)).await;
    let want: Vec<Message> = canonical(msgs);
    assert_eq!(
        sha_multiset(&got),
        sha_multiset(&want),
        "SHA-256 multisets differ"
    );
    assert_eq!(got.len(), 600);
}

fn kill_request(server: &ImapServer) -> (Arc<ImapSource>, Box<ImapSink>, EngineOptions) {
    let source = Arc::new(ImapSource::new(ImapSourceOptions::new(
        login(server, "src", server.port),
        ImapPreset::Generic,
    )));
    let sink = Box::new(ImapSink::new(ImapSinkOptions::new(
        login(server, "empty", server.port),
        ImapPreset::Vaultastic4,
        FolderPath::new(["K"]),
    )));
    let opts = EngineOptions {
        commit_every_messages: 100,
        jobs: 2,
        ..EngineOptions::default()
    };
    (source, sink, opts)
}

/// The child of `sigkill_mid_run_then_resume`: runs IMAP -> vault until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by sigkill_mid_run_then_resume as a child process"]
async fn sigkill_child() {
    let Ok(dir) = std::env::var("LEGACYFLO_KILL_STATE") else {
        return;
    };
    let server = imap_server();
    let (source, sink, opts) = kill_request(&server);
    let res = Engine::new("IMAP-VAULTASTIC4", source, sink)
        .state(Arc::new(LocalStateStore::new(
            std::path::Path::new(&dir),
            "kill",
        )))
        .options(opts)
        .run()
        .await;
    assert!(res.error.is_none(), "{:?}", res.error);
}

/// SIGKILL in the middle of an IMAP -> vault run, then the same request again: every
/// message exactly once (SHA-256 multisets of source and destination agree).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_then_resume() {
    let server = imap_server();
    reset_user(&server, "src");
    reset_user(&server, "empty");
    let msgs = canonical(legacyflo_testkit::corpus::generated(3000, 41));
    seed_messages(&server, "src", &msgs, "");
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "sigkill_child", "--ignored", "--nocapture"])
        .env("LEGACYFLO_KILL_STATE", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it right after its first checkpoint.
    let t = std::time::Instant::now();
    loop {
        let has_state = std::fs::read_dir(dir.path())
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
    let (source, sink, opts) = kill_request(&server);
    let res = Engine::new("IMAP-VAULTASTIC4", source, sink)
        .state(Arc::new(LocalStateStore::new(dir.path(), "kill")))
        .options(opts)
        .run()
        .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    let totals = res.report.totals();
    eprintln!("resumed run: {totals:?}");
    let mut o = ImapSourceOptions::new(login(&server, "empty", server.port), ImapPreset::Generic);
    o.root = Some("K".into());
    let got = read_all(&ImapSource::new(o)).await;
    assert_eq!(got.len(), msgs.len(), "every message exactly once");
    assert_eq!(
        sha_multiset(&got),
        sha_multiset(&msgs),
        "SHA-256 multisets differ"
    );
}

/// Runs `msgs` into a fresh vault folder with `batch` messages per APPEND round and checks
/// that the report (and the JSON report) maps every message to the APPENDUID under which
/// the destination holds exactly its bytes.
async fn appenduids_reach_the_report(server: &ImapServer, user: &str, batch: usize) {
    let root = format!("U{batch}");
    let msgs = canonical(legacyflo_testkit::corpus::generated(150, 53));
    let source = Arc::new(legacyflo_testkit::memory::MemorySource::new(msgs.clone()));
    let mut o = ImapSinkOptions::new(
        login(server, user, server.port),
        ImapPreset::Vaultastic4,
        FolderPath::new([root.as_str()]),
    );
    o.append_batch = batch;
    let sink = Box::new(ImapSink::new(o));
    let opts = EngineOptions {
        commit_every_messages: 40,
        ..EngineOptions::default()
    };
    let res = Engine::new("IMAP-VAULTASTIC4", source, sink)
        .options(opts)
        .run()
        .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    let placements = &res.report.placements;
    assert_eq!(placements.len(), msgs.len(), "one APPENDUID per message");
    let json = res.report.to_json();
    assert_eq!(
        json["placements"].as_array().map(Vec::len),
        Some(msgs.len()),
        "placements in the JSON report"
    );
    assert!(
        res.report
            .to_string()
            .contains("destination ids of 150 messages")
    );
    // What the destination holds under each UID (the IMAP source's ids are `UIDVALIDITY:UID`).
    let mut so = ImapSourceOptions::new(login(server, user, server.port), ImapPreset::Generic);
    so.root = Some(root);
    let stored: BTreeMap<(FolderPath, String), Vec<u8>> = read_all(&ImapSource::new(so))
        .await
        .into_iter()
        .map(|m| ((m.folder.clone(), m.source_id.clone()), m.raw.to_vec()))
        .collect();
    assert_eq!(stored.len(), msgs.len());
    let by_source: BTreeMap<(FolderPath, String), &Message> = msgs
        .iter()
        .map(|m| ((m.folder.clone(), m.source_id.clone()), m))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for p in placements {
        assert!(
            seen.insert((p.folder.clone(), p.source_id.clone())),
            "{p:?} twice"
        );
        let want = by_source
            .get(&(p.folder.clone(), p.source_id.clone()))
            .unwrap_or_else(|| panic!("placement of an unknown message {p:?}"));
        let got = stored
            .get(&(p.folder.clone(), p.id.clone()))
            .unwrap_or_else(|| panic!("nothing stored under {p:?}"));
        assert_eq!(got.as_slice(), &want.raw[..], "bytes under {p:?}");
    }
}

/// APPENDUIDs in the report: MULTIAPPEND batches (one uid-set per batch) and one APPEND
/// per message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appenduids_of_batches_and_single_appends_in_the_report() {
    let server = imap_server();
    reset_user(&server, "big");
    appenduids_reach_the_report(&server, "big", 25).await;
    appenduids_reach_the_report(&server, "big", 1).await;
    // The upload cap as a throttle: once reached, the sink waits for the window's end
    // (1 s here; 24 h for Gmail) and then goes on.
    let msgs = canonical(legacyflo_testkit::corpus::generated(6, 57));
    let cap: u64 = msgs[..3].iter().map(Message::size).sum();
    let mut o = ImapSinkOptions::new(
        login(&server, "big", server.port),
        ImapPreset::Vaultastic4,
        FolderPath::new(["Capped"]),
    );
    o.append_batch = 1;
    o.limits.daily_upload_bytes = Some(cap);
    o.limits.cap_window = std::time::Duration::from_secs(1);
    let t = std::time::Instant::now();
    let res = Engine::new(
        "IMAP-VAULTASTIC4",
        Arc::new(legacyflo_testkit::memory::MemorySource::new(msgs.clone())),
        Box::new(ImapSink::new(o)),
    )
    .run()
    .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    assert_eq!(res.report.totals().messages, 6);
    let took = t.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(800),
        "no pause: {took:?}"
    );
}

/// Marks a saved request unfinished with every folder open again, as if it had been
/// interrupted after its last commit: the next run must contact both servers.
fn reopen_state(dir: &std::path::Path, name: &str) {
    let path = dir.join(format!("{name}.json"));
    let mut s = legacyflo_core::RunState::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    s.finished = false;
    s.outputs.clear();
    for f in &mut s.folders {
        f.done = false;
    }
    std::fs::write(&path, s.to_bytes().unwrap()).unwrap();
}

/// A re-run that finds nothing new logs in once on each side (LIST-STATUS shows every
/// folder is at its checkpoint, the sink is opened while the source lists), and a
/// message delivered afterwards is still found by the next re-run, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_with_nothing_new_opens_one_connection_per_side() {
    let server = imap_server();
    reset_user(&server, "rsrc");
    reset_user(&server, "rdst");
    let msgs = canonical(legacyflo_testkit::corpus::generated(40, 57));
    let folders: std::collections::BTreeSet<&FolderPath> = msgs.iter().map(|m| &m.folder).collect();
    assert!(folders.len() >= 2, "the corpus must span folders");
    seed_messages(&server, "rsrc", &msgs, "S");
    let upstream: std::net::SocketAddr = server.addr().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |src_port: u16, dst_port: u16| {
        let source = Arc::new(ImapSource::new(ImapSourceOptions::new(
            login(&server, "rsrc", src_port),
            ImapPreset::Generic,
        )));
        let sink = Box::new(ImapSink::new(ImapSinkOptions::new(
            login(&server, "rdst", dst_port),
            ImapPreset::Vaultastic4,
            FolderPath::new(["R"]),
        )));
        Engine::new("IMAP-VAULTASTIC4", source, sink)
            .state(Arc::new(LocalStateStore::new(dir.path(), "rerun")))
            .run()
    };
    let first = run(server.port, server.port).await;
    assert!(first.error.is_none(), "{:?}", first.error);
    assert_eq!(first.report.run_messages, msgs.len() as u64);

    reopen_state(dir.path(), "rerun");
    let src = FaultProxy::start(upstream, 0).await;
    let dst = FaultProxy::start(upstream, 0).await;
    let noop = run(src.port(), dst.port()).await;
    assert!(noop.error.is_none(), "{:?}", noop.error);
    assert_eq!(noop.report.run_messages, 0);
    assert_eq!(
        (src.connections(), dst.connections()),
        (1, 1),
        "a re-run with nothing new needs one connection per server"
    );

    // One new message in the first folder: the next re-run must fetch it, and only it.
    let folder = folders.first().unwrap();
    let segs: Vec<&str> = folder.segments().iter().map(String::as_str).collect();
    let mailbox = ImapServer::mailbox_name(&segs);
    let new = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: late arrival\r\nMessage-ID: <late-1@example.test>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\narrived after the first run\r\n";
    let mut c = server.login("rsrc", "rsrcpw").unwrap();
    assert!(c.append(&mailbox, "", new).unwrap().is_ok());
    c.logout();
    reopen_state(dir.path(), "rerun");
    let again = run(server.port, server.port).await;
    assert!(again.error.is_none(), "{:?}", again.error);
    assert_eq!(again.report.run_messages, 1, "only the new message");
    let mut o = ImapSourceOptions::new(login(&server, "rdst", server.port), ImapPreset::Generic);
    o.root = Some("R".into());
    let got = read_all(&ImapSource::new(o)).await;
    let mut want = msgs.clone();
    let mut late = msgs[0].clone();
    late.raw = new.to_vec().into();
    want.push(late);
    assert_eq!(got.len(), want.len(), "every message exactly once");
    assert_eq!(sha_multiset(&got), sha_multiset(&want));
}
