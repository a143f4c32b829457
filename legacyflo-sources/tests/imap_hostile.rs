//! The IMAP source against the testkit's hostile server (`hostile_imap`): every scripted
//! misbehaviour ends with every message stored or reported, in bounded time and memory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legacyflo_core::request::Secret;
use legacyflo_core::{
    Engine, EngineOptions, FolderPath, LocalStateStore, Report, RetryPolicy, RunResult, RunStatus,
};
use legacyflo_sources::imap::{
    ConnectOptions, Credentials, ImapClient, ImapPreset, ImapSource, ImapSourceOptions, TlsMode,
};
use legacyflo_testkit::fakeimap::FakeMailbox;
use legacyflo_testkit::hostile_imap::{
    HostileConfig, HostileImapServer, Mode, colliding_mailboxes, control_mailboxes, mailbox,
    scenario,
};
use legacyflo_testkit::memory::MemorySink;

/// Per-command deadline of these tests.
const DEADLINE: Duration = Duration::from_secs(2);
/// Retries of these tests (the engine's policy, fast).
const RETRIES: u32 = 2;

fn connect(port: u16) -> ConnectOptions {
    let mut o = ConnectOptions::new(
        "127.0.0.1",
        port,
        Credentials::Login {
            user: "someone".into(),
            password: Secret::new("pw".to_string()),
        },
    );
    o.tls = TlsMode::None;
    o.command_timeout = DEADLINE;
    o
}

fn source_with(port: u16, tweak: impl FnOnce(&mut ImapSourceOptions)) -> Arc<ImapSource> {
    let mut o = ImapSourceOptions::new(connect(port), ImapPreset::Generic);
    // The idle timeout stays long: only the per-command deadline can end a trickle.
    o.connect.timeout = Duration::from_secs(120);
    tweak(&mut o);
    Arc::new(ImapSource::new(o))
}

fn options() -> EngineOptions {
    EngineOptions {
        retry: RetryPolicy {
            max_retries: RETRIES,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
        },
        ..EngineOptions::default()
    }
}

struct Outcome {
    result: RunResult,
    stored: Vec<legacyflo_core::Message>,
    elapsed: Duration,
}

async fn run_with(source: Arc<ImapSource>, state: Option<Arc<LocalStateStore>>) -> Outcome {
    let sink = MemorySink::new();
    let store = sink.store();
    let started = Instant::now();
    let mut engine = Engine::new("IMAP-S3-ZIP", source, Box::new(sink)).options(options());
    if let Some(s) = state {
        engine = engine.state(s);
    }
    // A generous outer bound: a run that does not end is a failure, not a hang.
    let result = tokio::time::timeout(Duration::from_secs(120), engine.run())
        .await
        .expect("the run ended");
    let stored = store.lock().unwrap().committed.clone();
    Outcome {
        result,
        stored,
        elapsed: started.elapsed(),
    }
}

async fn run(
    config: HostileConfig,
    tweak: impl FnOnce(&mut ImapSourceOptions),
) -> (Outcome, HostileImapServer) {
    let server = HostileImapServer::start(config).await;
    let out = run_with(source_with(server.port(), tweak), None).await;
    (out, server)
}

fn subjects(stored: &[legacyflo_core::Message]) -> Vec<String> {
    let mut s: Vec<String> = stored
        .iter()
        .map(|m| {
            String::from_utf8_lossy(&m.raw)
                .lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    s.sort();
    s
}

fn failures(report: &Report) -> Vec<(String, String)> {
    report
        .folders
        .iter()
        .flat_map(|f| {
            f.failures
                .iter()
                .map(|x| (x.source_id.clone(), x.reason.clone()))
        })
        .collect()
}

/// The longest a failing run may take: every attempt uses up its deadline, plus backoff
/// and a generous margin for a loaded machine.
fn bound() -> Duration {
    DEADLINE * (RETRIES + 1) * 2 + Duration::from_secs(20)
}

/// `{99999999999}`: nothing is reserved for it; the message is reported skipped with its
/// UID and the announced size, and the others are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_huge_literal_is_skipped_not_allocated() {
    let (out, _server) = run(scenario("huge-literal-announced").unwrap(), |_| {}).await;
    let r = &out.result.report;
    assert!(out.result.error.is_none(), "{:?}", out.result.error);
    assert_eq!(r.status, RunStatus::DoneWithSkips);
    assert_eq!(
        subjects(&out.stored),
        ["INBOX 1", "INBOX 2", "INBOX 4", "INBOX 5"]
    );
    let f = failures(r);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, "7:3");
    assert!(
        f[0].1.contains("UID 3") && f[0].1.contains("99999999999"),
        "{f:?}"
    );
    assert!(out.elapsed < bound(), "{:?}", out.elapsed);
}

/// A real literal over the size cap is read and dropped in bounded chunks (never held),
/// reported skipped; one between the memory threshold and the cap goes to a temporary
/// file and arrives byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_over_the_cap_is_skipped_and_large_ones_spill() {
    let config = HostileConfig {
        mode: Mode::HugeLiteral {
            uid: 2,
            size: 48 << 20,
        },
        mailboxes: vec![mailbox("INBOX", 3)],
    };
    let (out, server) = run(config, |o| {
        o.connect.frame.literal.max_bytes = 8 << 20;
        o.connect.frame.literal.memory_threshold = 1 << 20;
    })
    .await;
    assert!(out.result.error.is_none(), "{:?}", out.result.error);
    assert_eq!(out.result.report.status, RunStatus::DoneWithSkips);
    assert_eq!(subjects(&out.stored), ["INBOX 1", "INBOX 3"]);
    let f = failures(&out.result.report);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].1.contains("UID 2") && f[0].1.contains(&(48u64 << 20).to_string()),
        "{f:?}"
    );
    drop(server);

    // Under the cap: 6 MiB, over the 1 MiB threshold.
    let config = HostileConfig {
        mode: Mode::HugeLiteral {
            uid: 2,
            size: 6 << 20,
        },
        mailboxes: vec![mailbox("INBOX", 3)],
    };
    let (out, _server) = run(config, |o| {
        o.connect.frame.literal.max_bytes = 8 << 20;
        o.connect.frame.literal.memory_threshold = 1 << 20;
    })
    .await;
    assert!(out.result.error.is_none(), "{:?}", out.result.error);
    assert_eq!(out.result.report.status, RunStatus::Done);
    let big = out
        .stored
        .iter()
        .find(|m| m.raw.len() > 1000)
        .expect("the big one");
    assert_eq!(big.raw.len(), 6 << 20);
    let pattern = b"Subject: huge\r\n\r\n0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    assert!(
        big.raw
            .chunks(pattern.len())
            .all(|c| pattern.starts_with(c))
    );
}

/// A line without CRLF ends the run with a clear error once it passes the line cap,
/// without growing memory or rescanning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_line_fails_clearly_at_the_line_cap() {
    let (out, _server) = run(scenario("endless-line").unwrap(), |o| {
        o.connect.frame.max_line = 256 << 10;
    })
    .await;
    let r = &out.result.report;
    assert_eq!(r.status, RunStatus::Failed);
    let e = out.result.error.expect("an error").to_string();
    assert!(
        e.contains("line") && e.contains(&(256u64 << 10).to_string()),
        "{e}"
    );
    assert!(out.elapsed < bound(), "{:?}", out.elapsed);
}

/// One byte every 100 ms never trips an idle timeout; the per-command deadline ends each
/// attempt, and the engine's retries end the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_server_is_abandoned_within_the_deadline() {
    let config = HostileConfig {
        mode: Mode::Trickle {
            every: Duration::from_millis(100),
        },
        mailboxes: vec![mailbox("INBOX", 3)],
    };
    let (out, server) = run(config, |_| {}).await;
    assert_eq!(out.result.report.status, RunStatus::Failed);
    let e = out.result.error.expect("an error").to_string();
    assert!(e.contains("UID FETCH") && e.contains("2s"), "{e}");
    assert!(out.elapsed < bound(), "{:?}", out.elapsed);
    assert_eq!(server.logins(), 1 + RETRIES as usize);
}

/// Greeting, then silence: the login is abandoned at the deadline, each attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_after_greeting_is_abandoned_within_the_deadline() {
    let (out, server) = run(scenario("silent-after-greeting").unwrap(), |_| {}).await;
    assert_eq!(out.result.report.status, RunStatus::Failed);
    let e = out.result.error.expect("an error").to_string();
    assert!(e.contains("LOGIN") && e.contains("2s"), "{e}");
    assert!(out.elapsed < bound(), "{:?}", out.elapsed);
    assert_eq!(server.connections(), 1 + RETRIES as usize);
}

/// With the default (15-minute) command deadline, a server that greets and then says
/// nothing is still given up within the 30 s login deadline: one connection attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_login_is_abandoned_at_the_login_deadline_by_default() {
    let server = HostileImapServer::start(scenario("silent-after-greeting").unwrap()).await;
    let mut o = connect(server.port());
    o.command_timeout = ConnectOptions::DEFAULT_COMMAND_TIMEOUT;
    o.timeout = Duration::from_secs(120);
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(120), ImapClient::connect(&o))
        .await
        .expect("connect ended");
    let e = r.expect_err("a deadline error").to_string();
    assert!(e.contains("30s"), "{e}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(29) && took < Duration::from_secs(60),
        "{took:?}"
    );
}

/// Silence in the middle of every FETCH answer, after its first message: each command is
/// abandoned at the deadline, the message that arrived is kept, and since every attempt
/// makes progress the run ends with everything, one deadline per message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_mid_fetch_is_abandoned_within_the_deadline() {
    let (out, server) = run(scenario("silent-mid-fetch").unwrap(), |_| {}).await;
    assert!(out.result.error.is_none(), "{:?}", out.result.error);
    assert_eq!(out.result.report.status, RunStatus::Done);
    assert_eq!(
        subjects(&out.stored),
        ["INBOX 1", "INBOX 2", "INBOX 3", "INBOX 4", "INBOX 5"]
    );
    assert!(
        out.elapsed < DEADLINE * 5 * 2 + Duration::from_secs(20),
        "{:?}",
        out.elapsed
    );
    assert_eq!(server.logins(), 5);
}

/// A server that always closes in the middle of the first FETCH answer: retries do not
/// nest (engine × IMAP); the logins are exactly the policy's budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_mid_fetch_costs_one_login_per_attempt() {
    let (out, server) = run(scenario("close-mid-fetch").unwrap(), |_| {}).await;
    assert_eq!(out.result.report.status, RunStatus::Failed);
    assert!(out.result.error.is_some());
    assert_eq!(
        server.logins(),
        1 + RETRIES as usize,
        "{:?}",
        server.commands()
    );
}

/// Messages `UID FETCH` left out although it answered OK: fetched again; one that shows
/// up is stored, one a fresh `UID SEARCH` no longer lists is counted as expunged, the
/// others are skipped with their UID and the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omitted_uids_are_refetched_then_expunged_or_skipped() {
    let (out, _server) = run(scenario("omitted-uids").unwrap(), |_| {}).await;
    let r = &out.result.report;
    assert!(out.result.error.is_none(), "{:?}", out.result.error);
    assert_eq!(r.status, RunStatus::DoneWithSkips);
    let want: Vec<String> = [1, 3, 5, 6, 8, 9, 10]
        .iter()
        .map(|u| format!("INBOX {u}"))
        .collect();
    let mut want = want;
    want.sort();
    assert_eq!(subjects(&out.stored), want);
    let t = r.totals();
    assert_eq!((t.skipped, t.expunged), (2, 1));
    let f = failures(r);
    let ids: Vec<&str> = f.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(ids, ["7:2", "7:7"]);
    assert!(f.iter().all(|x| x.1.contains("UID SEARCH")), "{f:?}");
}

/// FETCH answers without a body, with a body for a UID not asked for, unparsable, or
/// `NIL`: nothing is stored under a wrong UID, nothing crashes, every message that did
/// not arrive is skipped by UID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_fetch_answers_are_skipped_by_uid() {
    let (out, _server) = run(scenario("garbage-fetch").unwrap(), |_| {}).await;
    let r = &out.result.report;
    assert!(out.result.error.is_none(), "{:?}", out.result.error);
    assert_eq!(r.status, RunStatus::DoneWithSkips);
    assert_eq!(subjects(&out.stored), ["INBOX 10", "INBOX 5"]);
    let ids: Vec<String> = out.stored.iter().map(|m| m.source_id.clone()).collect();
    assert!(ids.iter().all(|i| i == "7:5" || i == "7:10"), "{ids:?}");
    let f = failures(r);
    let mut skipped: Vec<&str> = f.iter().map(|x| x.0.as_str()).collect();
    skipped.sort();
    assert_eq!(
        skipped,
        ["7:1", "7:2", "7:3", "7:4", "7:6", "7:7", "7:8", "7:9"]
    );
}

/// 30,000 unsolicited FETCH responses with bodies are dropped, not buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsolicited_fetch_responses_are_dropped() {
    let (out, _server) = run(scenario("unsolicited").unwrap(), |_| {}).await;
    assert!(out.result.error.is_none(), "{:?}", out.result.error);
    assert_eq!(out.result.report.status, RunStatus::Done);
    assert_eq!(
        subjects(&out.stored),
        ["INBOX 1", "INBOX 2", "INBOX 3", "INBOX 4", "INBOX 5"]
    );
}

fn folders_of(report: &Report) -> BTreeMap<FolderPath, (u64, Vec<String>)> {
    report
        .folders
        .iter()
        .map(|f| (f.folder.clone(), (f.messages, f.notes.clone())))
        .collect()
}

/// Mailboxes whose names collide once decoded are all read, kept apart with a suffix that
/// does not depend on the LIST order, each with a note; a re-run with the mailboxes listed
/// in the opposite order resumes onto the same folders and stores nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_mailbox_names_are_all_read_apart() {
    let dir = tempfile::tempdir().unwrap();
    let state = || Arc::new(LocalStateStore::new(dir.path(), "collide"));
    let boxes = colliding_mailboxes(2);
    let server = HostileImapServer::start(HostileConfig {
        mode: Mode::Honest,
        mailboxes: boxes.clone(),
    })
    .await;
    // `inbox` is INBOX again: one mailbox less than listed.
    let distinct = boxes.len() - 1;
    let first = run_with(source_with(server.port(), |_| {}), Some(state())).await;
    assert!(first.result.error.is_none(), "{:?}", first.result.error);
    let r = &first.result.report;
    assert_eq!(r.totals().messages, 2 * distinct as u64, "{:#?}", r.folders);
    let folders = folders_of(r);
    assert_eq!(folders.len(), distinct, "{folders:#?}");
    assert!(folders.values().all(|(n, _)| *n == 2), "{folders:#?}");
    for plain in ["INBOX", "abs", "x/y", "Foo"] {
        let p = FolderPath::parse(plain, '/');
        let (_, notes) = &folders[&p];
        assert!(!notes.is_empty(), "{plain}: {folders:#?}");
    }
    // Every folder holds the messages of one mailbox, and no two folders the same one.
    let tags = tags_by_folder(&first.stored);
    assert_eq!(tags.len(), distinct);
    assert!(tags.values().all(|t| t.len() == 1), "{tags:#?}");
    let apart: std::collections::BTreeSet<_> = tags.values().collect();
    assert_eq!(apart.len(), distinct, "{tags:#?}");
    drop(server);

    // Same mailboxes, one more message each, listed in reverse order: a resume.
    let mut reversed: Vec<FakeMailbox> = boxes.clone();
    reversed.reverse();
    for b in reversed.iter_mut().filter(|b| !b.messages.is_empty()) {
        let tag: String = b
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        b.messages
            .push(legacyflo_testkit::hostile_imap::message(&tag, 3));
    }
    let server = HostileImapServer::start(HostileConfig {
        mode: Mode::Honest,
        mailboxes: reversed,
    })
    .await;
    // The finished state is reported again without work: start afresh on a copy of the
    // checkpoints instead, so the listing is compared.
    let st = state().path().to_path_buf();
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&st).unwrap()).unwrap();
    saved["finished"] = serde_json::Value::Bool(false);
    for f in saved["folders"].as_array_mut().unwrap() {
        f["done"] = serde_json::Value::Bool(false);
    }
    std::fs::write(&st, serde_json::to_vec(&saved).unwrap()).unwrap();
    let second = run_with(source_with(server.port(), |_| {}), Some(state())).await;
    assert!(second.result.error.is_none(), "{:?}", second.result.error);
    let r2 = &second.result.report;
    let f2 = folders_of(r2);
    assert_eq!(
        f2.keys().collect::<Vec<_>>(),
        folders.keys().collect::<Vec<_>>(),
        "same folders whatever the LIST order"
    );
    assert_eq!(
        second.stored.len(),
        distinct,
        "only the new message of each mailbox"
    );
    assert!(subjects(&second.stored).iter().all(|s| s.ends_with(" 3")));
    // Each resumed folder is the same mailbox as in the first run.
    assert_eq!(tags_by_folder(&second.stored), tags);
}

/// Folder → the mailbox tags (subject without the number) of its messages.
fn tags_by_folder(
    stored: &[legacyflo_core::Message],
) -> BTreeMap<FolderPath, std::collections::BTreeSet<String>> {
    let mut out: BTreeMap<FolderPath, std::collections::BTreeSet<String>> = BTreeMap::new();
    for m in stored {
        let subject = subjects(std::slice::from_ref(m)).remove(0);
        let tag = subject
            .rsplit_once(' ')
            .map_or(subject.clone(), |(t, _)| t.to_string());
        out.entry(m.folder.clone()).or_default().insert(tag);
    }
    out
}

/// Names with ESC, CR LF, NUL and TAB are read (selected back exactly) and kept exactly
/// in the report's JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_names_are_kept_exactly() {
    let (out, _server) = run(
        HostileConfig {
            mode: Mode::Honest,
            mailboxes: control_mailboxes(2),
        },
        |_| {},
    )
    .await;
    assert!(out.result.error.is_none(), "{:?}", out.result.error);
    let r = &out.result.report;
    assert_eq!(r.totals().messages, 10);
    let names: Vec<String> = r
        .folders
        .iter()
        .map(|f| f.folder.segments().join("/"))
        .collect();
    for want in [
        "esc\u{1b}[31mred",
        "x\r\nMBOX-S3-ZIP: done",
        "nul\u{0}byte",
        "tab\tand\r\ncrlf",
    ] {
        assert!(names.iter().any(|n| n == want), "{want:?} in {names:?}");
    }
    let json = serde_json::to_string(r).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(&back.folders, &r.folders);
}
