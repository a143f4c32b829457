//! The GMAIL and O365 presets against the testkit's scripted server answering as those
//! providers do (Dovecot speaks neither `X-GM-EXT-1` nor Exchange Online's throttling).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::time::{Duration, Instant};

use legacyflo_core::request::Secret;
use legacyflo_core::{Engine, EngineOptions, RetryPolicy};
use legacyflo_sources::imap::{
    ConnectOptions, Credentials, ImapPreset, ImapSource, ImapSourceOptions, TlsMode,
};
use legacyflo_testkit::fakeimap::{FakeConfig, FakeImapServer, FakeMailbox, FakeMessage, Flavor};
use legacyflo_testkit::memory::MemorySink;

fn connect(port: u16) -> ConnectOptions {
    let mut o = ConnectOptions::new(
        "127.0.0.1",
        port,
        Credentials::Login {
            user: "someone@example.test".into(),
            password: Secret::new("pw".to_string()),
        },
    );
    o.tls = TlsMode::None;
    o
}

fn msg(uid: u32, labels: &[&str]) -> FakeMessage {
    FakeMessage {
        uid,
        raw: format!(
            "Message-ID: <m{uid}@example.test>\r\nSubject: message {uid}\r\nFrom: a@example.test\r\n\r\nbody {uid}\r\n"
        )
        .into_bytes(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        gm_msgid: 1_700_000_000_000_000_000 + u64::from(uid),
    }
}

fn mailbox(name: &str, attributes: &str, messages: Vec<FakeMessage>) -> FakeMailbox {
    FakeMailbox {
        name: name.into(),
        attributes: attributes.into(),
        messages,
    }
}

/// Gmail: only `[Gmail]/All Mail` is read, although INBOX and the label folders show the
/// same messages again; each message arrives once, its labels (modified UTF-7 decoded)
/// kept as metadata, and the FETCH asked for X-GM-LABELS and X-GM-MSGID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_reads_all_mail_once_with_labels() {
    let all = vec![
        msg(1, &["\\Inbox", "Work"]),
        msg(2, &["\\Sent", "Work", "Projekte/Entw&APw-rfe"]),
        msg(3, &["\\Inbox", "\\Important"]),
    ];
    let server = FakeImapServer::start(FakeConfig {
        flavor: Flavor::Gmail,
        mailboxes: vec![
            mailbox("INBOX", "\\HasNoChildren", vec![msg(1, &[]), msg(3, &[])]),
            mailbox("Work", "\\HasNoChildren", vec![msg(1, &[]), msg(2, &[])]),
            mailbox("[Gmail]", "\\HasChildren \\Noselect", vec![]),
            mailbox("[Gmail]/All Mail", "\\HasNoChildren \\All", all),
            mailbox(
                "[Gmail]/Sent Mail",
                "\\HasNoChildren \\Sent",
                vec![msg(2, &[])],
            ),
            mailbox("[Gmail]/Spam", "\\HasNoChildren \\Junk", vec![]),
        ],
        throttle: None,
        throttle_with_bad: false,
    })
    .await;
    let source = Arc::new(ImapSource::new(ImapSourceOptions::new(
        connect(server.port()),
        ImapPreset::Gmail,
    )));
    let sink = MemorySink::new();
    let store = sink.store();
    let res = Engine::new("GMAIL-S3-ZIP", source, Box::new(sink))
        .run()
        .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    let folders: Vec<String> = res
        .report
        .folders
        .iter()
        .map(|f| f.folder.to_string())
        .collect();
    assert_eq!(folders, vec!["[Gmail]/All Mail".to_string()]);
    assert_eq!(res.report.totals().messages, 3, "no label duplicates");
    let store = store.lock().unwrap();
    let mut ids: Vec<String> = store
        .committed
        .iter()
        .map(|m| m.source_id.clone())
        .collect();
    ids.sort();
    let want_ids: Vec<String> = (1..=3u64)
        .map(|u| format!("{:x}", 1_700_000_000_000_000_000 + u))
        .collect();
    assert_eq!(ids, want_ids, "source ids are the X-GM-MSGIDs (hex)");
    let mut got: Vec<(String, Vec<String>)> = store
        .committed
        .iter()
        .map(|m| {
            (
                String::from_utf8_lossy(&m.raw)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                m.labels.clone(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "Message-ID: <m1@example.test>".to_string(),
                vec!["\\Inbox".to_string(), "Work".to_string()]
            ),
            (
                "Message-ID: <m2@example.test>".to_string(),
                vec![
                    "\\Sent".to_string(),
                    "Work".to_string(),
                    "Projekte/Entwürfe".to_string()
                ]
            ),
            (
                "Message-ID: <m3@example.test>".to_string(),
                vec!["\\Inbox".to_string(), "\\Important".to_string()]
            ),
        ]
    );
    let fetches: Vec<String> = server
        .received()
        .into_iter()
        .map(|r| r.command)
        .filter(|c| c.to_ascii_uppercase().starts_with("UID FETCH"))
        .collect();
    assert!(!fetches.is_empty());
    assert!(
        fetches
            .iter()
            .all(|c| c.contains("X-GM-LABELS") && c.contains("X-GM-MSGID")),
        "{fetches:?}"
    );
    let selects: Vec<String> = server
        .received()
        .into_iter()
        .map(|r| r.command)
        .filter(|c| c.starts_with("EXAMINE") || c.starts_with("SELECT"))
        .collect();
    assert!(
        selects.iter().all(|c| c.contains("All Mail")),
        "only All Mail is opened: {selects:?}"
    );
}

/// O365: the folders that hold no mail are skipped, and a `NO Request is throttled.
/// Suggested Backoff Time: N milliseconds` answer is waited out for exactly N ms (not the
/// retry policy's own backoff) before the FETCH is sent again; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn o365_skips_non_mail_folders_and_waits_the_suggested_backoff() {
    o365_throttled(false).await;
}

/// The same with the `BAD Request is throttled. …` form Exchange Online also sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn o365_bad_throttling_answer_is_waited_out_too() {
    o365_throttled(true).await;
}

async fn o365_throttled(with_bad: bool) {
    const BACKOFF_MS: u64 = 1500;
    let server = FakeImapServer::start(FakeConfig {
        flavor: Flavor::O365,
        mailboxes: vec![
            mailbox(
                "INBOX",
                "\\HasNoChildren",
                (1..=5).map(|u| msg(u, &[])).collect(),
            ),
            mailbox("Calendar", "\\HasChildren", vec![msg(1, &[])]),
            mailbox("Calendar/Birthdays", "\\HasNoChildren", vec![msg(1, &[])]),
            mailbox("Contacts", "\\HasNoChildren", vec![msg(1, &[])]),
            mailbox(
                "Deleted Items",
                "\\HasNoChildren \\Trash",
                vec![msg(1, &[])],
            ),
            mailbox("Tasks", "\\HasNoChildren", vec![msg(1, &[])]),
            mailbox("Files", "\\HasNoChildren", vec![msg(1, &[])]),
            mailbox("Sent Items", "\\HasNoChildren \\Sent", vec![msg(7, &[])]),
        ],
        throttle: Some((1, BACKOFF_MS)),
        throttle_with_bad: with_bad,
    })
    .await;
    let source = Arc::new(ImapSource::new(ImapSourceOptions::new(
        connect(server.port()),
        ImapPreset::O365,
    )));
    let sink = MemorySink::new();
    let opts = EngineOptions {
        jobs: 1,
        retry: RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
        },
        ..EngineOptions::default()
    };
    let t = Instant::now();
    let res = Engine::new("O365-S3-ZIP", source, Box::new(sink))
        .options(opts)
        .run()
        .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    let mut folders: Vec<String> = res
        .report
        .folders
        .iter()
        .map(|f| f.folder.to_string())
        .collect();
    folders.sort();
    assert_eq!(folders, vec!["INBOX".to_string(), "Sent Items".to_string()]);
    assert_eq!(res.report.totals().messages, 6, "nothing lost");
    assert!(res.report.retries >= 1, "the throttled FETCH was retried");
    let log = server.received();
    let i = log
        .iter()
        .position(|r| r.throttled)
        .expect("one FETCH was throttled");
    let throttled_at = log[i].at;
    let next = log[i + 1..]
        .iter()
        .find(|r| r.command.to_ascii_uppercase().starts_with("UID FETCH"))
        .expect("the FETCH was sent again");
    let waited = next.at.duration_since(throttled_at);
    assert!(
        waited >= Duration::from_millis(BACKOFF_MS),
        "waited {waited:?}, asked {BACKOFF_MS} ms"
    );
    assert!(
        waited < Duration::from_millis(BACKOFF_MS + 1000),
        "waited {waited:?}: much longer than the {BACKOFF_MS} ms asked"
    );
    assert!(t.elapsed() >= Duration::from_millis(BACKOFF_MS));
}

/// Gmail after a UIDVALIDITY change: the checkpoint's X-GM-MSGID finds where to go on in
/// the renumbered All Mail, so nothing is read twice; an id that is gone fails the stream
/// instead of copying the folder again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_resume_after_uidvalidity_change_uses_x_gm_msgid() {
    use futures::StreamExt;
    use legacyflo_core::{Filter, FolderPath, Source, SourceEvent};
    // Renumbered: the same three messages (same X-GM-MSGID) now have UIDs 21..23.
    let renumbered: Vec<FakeMessage> = (1..=3u32)
        .map(|u| FakeMessage {
            uid: 20 + u,
            ..msg(u, &["\\Inbox"])
        })
        .collect();
    let server = FakeImapServer::start(FakeConfig {
        flavor: Flavor::Gmail,
        mailboxes: vec![mailbox(
            "[Gmail]/All Mail",
            "\\HasNoChildren \\All",
            renumbered,
        )],
        throttle: None,
        throttle_with_bad: false,
    })
    .await;
    let source = ImapSource::new(ImapSourceOptions::new(
        connect(server.port()),
        ImapPreset::Gmail,
    ));
    let folder = FolderPath::new(["[Gmail]", "All Mail"]);
    assert_eq!(
        source
            .list_folders()
            .await
            .unwrap()
            .iter()
            .map(|f| f.path.clone())
            .collect::<Vec<_>>(),
        vec![folder.clone()]
    );
    // Checkpoint of an earlier run: UIDVALIDITY 10, UID 2, message 2's X-GM-MSGID.
    let position = format!("10:2:gm{:x}", 1_700_000_000_000_000_002u64);
    let mut s = source
        .stream(&folder, &Filter::default(), Some(&position))
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(ev) = s.next().await {
        if let SourceEvent::Message(i) = ev.unwrap() {
            got.push(i.message.source_id.clone());
        }
    }
    assert_eq!(got, vec![format!("{:x}", 1_700_000_000_000_000_003u64)]);
    let gone = format!("10:2:gm{:x}", 42u64);
    let r = match source
        .stream(&folder, &Filter::default(), Some(&gone))
        .await
    {
        Err(e) => Err(e),
        Ok(mut s) => match s.next().await {
            Some(Err(e)) => Err(e),
            other => Ok(other.is_some()),
        },
    };
    let e = r.expect_err("a checkpoint whose message is gone must fail");
    assert_eq!(e.kind(), legacyflo_core::ErrorKind::InvalidInput, "{e}");
}

/// Gmail's daily download cap as a throttle: with a cap the source pauses until the
/// window ends once the cap is reached (window shortened to 1 s for the test), then goes
/// on; without reaching it, no pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_download_cap_pauses_until_the_window_ends() {
    let all: Vec<FakeMessage> = (1..=4).map(|u| msg(u, &["\\Inbox"])).collect();
    let size = all[0].raw.len() as u64;
    let server = FakeImapServer::start(FakeConfig {
        flavor: Flavor::Gmail,
        mailboxes: vec![mailbox("[Gmail]/All Mail", "\\HasNoChildren \\All", all)],
        throttle: None,
        throttle_with_bad: false,
    })
    .await;
    let run = |cap: u64| {
        let mut o = ImapSourceOptions::new(connect(server.port()), ImapPreset::Gmail);
        assert_eq!(o.limits.daily_download_bytes, Some(2_500 * 1_000_000));
        o.limits.daily_download_bytes = Some(cap);
        o.limits.cap_window = Duration::from_secs(1);
        async move {
            let t = Instant::now();
            let res = Engine::new(
                "GMAIL-S3-ZIP",
                Arc::new(ImapSource::new(o)),
                Box::new(MemorySink::new()),
            )
            .run()
            .await;
            assert!(res.error.is_none(), "{:?}", res.error);
            assert_eq!(res.report.totals().messages, 4, "nothing lost");
            t.elapsed()
        }
    };
    // Reached after the third message: one pause until the 1 s window ends.
    let capped = run(3 * size).await;
    assert!(capped >= Duration::from_millis(800), "no pause: {capped:?}");
    assert!(
        capped < Duration::from_millis(1900),
        "paused twice: {capped:?}"
    );
    let free = run(100 * size).await;
    assert!(
        free < Duration::from_millis(500),
        "paused without reason: {free:?}"
    );
}
