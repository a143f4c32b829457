//! The vault sink against the testkit's hostile IMAP server: an `APPENDUID` naming four
//! billion UIDs, a vault that goes silent, trickles, sends endless lines, garbage or
//! unsolicited answers while the sink reads back what a mailbox holds. Every case ends
//! in bounded time and memory with a clear error or a correct answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::{Duration, Instant};

use legacyflo_core::request::Secret;
use legacyflo_core::{ErrorKind, FolderPath, Message, Sink, WriteOutcome};
use legacyflo_sinks::imap::{ImapSink, ImapSinkOptions};
use legacyflo_sources::imap::{ConnectOptions, Credentials, ImapPreset, TlsMode};
use legacyflo_testkit::hostile_imap::{HostileConfig, HostileImapServer, Mode, mailbox};

const DEADLINE: Duration = Duration::from_secs(2);

fn sink(port: u16, batch: usize) -> ImapSink {
    let mut c = ConnectOptions::new(
        "127.0.0.1",
        port,
        Credentials::Login {
            user: "vault".into(),
            password: Secret::new("pw".to_string()),
        },
    );
    c.tls = TlsMode::None;
    let mut o = ImapSinkOptions::new(c, ImapPreset::Vaultastic4, FolderPath::root());
    o.connect.timeout = Duration::from_secs(120);
    o.connect.command_timeout = DEADLINE;
    o.append_batch = batch;
    ImapSink::new(o)
}

/// The message the hostile server holds as `INBOX` UID `uid` (same bytes, as sent back).
fn stored(uid: u32) -> Message {
    let raw = legacyflo_testkit::hostile_imap::message("INBOX", uid).raw;
    Message::new(raw, FolderPath::inbox(), format!("src{uid}"))
}

fn fresh(n: u32) -> Message {
    let raw = format!("Message-ID: <new-{n}@x>\r\nSubject: new {n}\r\n\r\nbody\r\n").into_bytes();
    Message::new(raw, FolderPath::inbox(), format!("new{n}"))
}

async fn server(mode: Mode, inbox: u32) -> HostileImapServer {
    HostileImapServer::start(HostileConfig {
        mode,
        mailboxes: vec![mailbox("INBOX", inbox)],
    })
    .await
}

/// `APPENDUID 1 1:4294967295` for one message, and for a MULTIAPPEND of three: a protocol
/// error naming the set, at once, not four billion UIDs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_appenduid_is_a_protocol_error_not_expanded() {
    for batch in [1, 3] {
        let srv = server(Mode::HugeAppendUid, 0).await;
        let mut s = sink(srv.port(), batch);
        let started = Instant::now();
        s.open(None).await.unwrap();
        s.begin_folder(&FolderPath::inbox()).await.unwrap();
        let mut err = None;
        for n in 0..3 {
            match s.write(&fresh(n)).await {
                Ok(_) => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let err = match err {
            Some(e) => e,
            None => s.commit().await.expect_err("the APPENDUID is refused"),
        };
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("APPENDUID") && text.contains("4294967295 UIDs"),
            "{text}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }
}

/// A vault that greets and then says nothing: the login is abandoned at the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_vault_is_abandoned_within_the_deadline() {
    let srv = server(Mode::SilentAfterGreeting, 0).await;
    let mut s = sink(srv.port(), 1);
    let started = Instant::now();
    let e = s.open(None).await.expect_err("no answer");
    assert_eq!(e.kind(), ErrorKind::Temporary, "{e}");
    assert!(e.to_string().contains("deadline"), "{e}");
    assert!(started.elapsed() < DEADLINE + Duration::from_secs(20));
}

/// Reading back what a non-empty mailbox holds (the re-delivery check) against a vault
/// that trickles, or sends a line without end: a deadline or a line-cap error, in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_scan_of_a_trickling_or_endless_vault_ends_in_time() {
    for (mode, kind, words) in [
        (
            Mode::Trickle {
                every: Duration::from_millis(100),
            },
            ErrorKind::Temporary,
            "deadline",
        ),
        (Mode::EndlessLine, ErrorKind::Protocol, "line"),
    ] {
        let srv = server(mode, 3).await;
        let mut s = sink(srv.port(), 1);
        let started = Instant::now();
        s.open(None).await.unwrap();
        let e = s
            .begin_folder(&FolderPath::inbox())
            .await
            .expect_err("the scan fails");
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.to_string().contains(words), "{e}");
        assert!(started.elapsed() < DEADLINE + Duration::from_secs(20));
    }
}

/// Garbage and unsolicited answers while reading back the mailbox: only real answers for
/// UIDs the mailbox can hold count, so a message the vault really holds is recognised and
/// one it only pretended to hold (a body under a UID past UIDNEXT) is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_unsolicited_answers_do_not_fake_stored_messages() {
    let srv = server(Mode::GarbageFetch, 10).await;
    let mut s = sink(srv.port(), 1);
    s.open(None).await.unwrap();
    s.begin_folder(&FolderPath::inbox()).await.unwrap();
    // UID 5 is answered properly: already there.
    assert_eq!(s.write(&stored(5)).await.unwrap(), WriteOutcome::Duplicate);
    // UID 2 came back under UID 100002, which the mailbox cannot hold: not taken as stored.
    assert!(matches!(
        s.write(&stored(2)).await.unwrap(),
        WriteOutcome::Written { .. }
    ));
    drop(srv);

    let srv = server(Mode::Unsolicited { count: 5_000 }, 4).await;
    let mut s = sink(srv.port(), 1);
    s.open(None).await.unwrap();
    s.begin_folder(&FolderPath::inbox()).await.unwrap();
    assert_eq!(s.write(&stored(3)).await.unwrap(), WriteOutcome::Duplicate);
    // An unsolicited 1 KiB body without Message-ID is not "already stored".
    let mut blank = Message::new(vec![b'u'; 1024], FolderPath::inbox(), "blank");
    blank.internal_date = None;
    assert!(matches!(
        s.write(&blank).await.unwrap(),
        WriteOutcome::Written { .. }
    ));
}
