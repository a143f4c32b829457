//! Transcript replay: a scripted server on an in-memory duplex stream.

use super::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Each step: the command the client must send (prefix after the tag, or `None` to only
/// send), and the server's answer with `TAG` replaced by the client's tag.
async fn replay(script: Vec<(Option<&'static str>, &'static str)>) -> ImapClient {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let (r, mut w) = tokio::io::split(server_io);
        let mut r = BufReader::new(r);
        for (expect, answer) in script {
            let mut tag = String::new();
            if let Some(expect) = expect {
                let mut line = String::new();
                r.read_line(&mut line).await.unwrap();
                let (t, rest) = line.split_once(' ').unwrap();
                assert!(
                    rest.starts_with(expect),
                    "client sent `{line}`, expected `{expect}`"
                );
                tag = t.to_string();
                // Swallow LITERAL+ data: `{n+}` at the end of the line.
                let mut l = line.trim_end().to_string();
                while let Ok(Some((_, n))) = framer::literal_at_end(l.as_bytes()) {
                    let mut data = vec![0u8; n as usize];
                    tokio::io::AsyncReadExt::read_exact(&mut r, &mut data)
                        .await
                        .unwrap();
                    l.clear();
                    r.read_line(&mut l).await.unwrap();
                    l = l.trim_end().to_string();
                }
            }
            w.write_all(answer.replace("TAG", &tag).as_bytes())
                .await
                .unwrap();
        }
    });
    ImapClient::new(Box::new(client_io), Duration::from_secs(5), "mock")
}

#[tokio::test]
async fn greeting_login_select_search_fetch() {
    let mut c = replay(vec![
        (None, "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN] ready\r\n"),
        (Some("AUTHENTICATE PLAIN "), "TAG OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS MULTIAPPEND] done\r\n"),
        (Some("EXAMINE \"INBOX\""), "* 2 EXISTS\r\n* OK [UIDVALIDITY 77] x\r\n* OK [UIDNEXT 9] x\r\nTAG OK [READ-ONLY] ok\r\n"),
        (Some("UID SEARCH ALL"), "* SEARCH 3 5\r\nTAG OK done\r\n"),
        (Some("UID FETCH 3,5 "), "* 1 FETCH (UID 3 RFC822.SIZE 5 FLAGS (\\Seen $X) INTERNALDATE \"02-Jan-2023 10:00:00 +0100\" BODY[] {5}\r\nhello)\r\n* 2 FETCH (UID 5 BODY[] {3}\r\nab\n FLAGS ())\r\nTAG OK done\r\n"),
    ]).await;
    c.read_greeting().await.unwrap();
    assert!(c.has_capability("literal+"));
    c.authenticate(&Credentials::Plain {
        authzid: Some("alice".into()),
        user: "admin".into(),
        password: Secret::new("pw"),
    })
    .await
    .unwrap();
    assert!(c.has_capability("UIDPLUS"));
    let info = c.select("INBOX", true).await.unwrap();
    assert_eq!(
        info,
        MailboxInfo {
            exists: 2,
            uid_validity: 77,
            uid_next: 9
        }
    );
    assert_eq!(c.uid_search("ALL", "INBOX").await.unwrap(), vec![3, 5]);
    let mut items = Vec::new();
    c.uid_fetch_each("3,5", "(UID BODY.PEEK[])", "INBOX", &mut |f| items.push(f))
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].body.as_deref(), Some(&b"hello"[..]));
    assert_eq!(items[0].flags, vec!["\\Seen", "$X"]);
    assert_eq!(
        items[0].internal_date.map(|d| d.timestamp()),
        Some(1672650000)
    );
    assert_eq!(items[1].body.as_deref(), Some(&b"ab\n"[..]));
}

#[tokio::test]
async fn no_and_bye_are_typed() {
    let mut c = replay(vec![
        (None, "* OK hi\r\n"),
        (
            Some("LOGIN \"bob\" \"p\\\"w\""),
            "TAG NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
        ),
        (
            Some("SELECT \"Nope\""),
            "TAG NO [NONEXISTENT] Mailbox doesn't exist: Nope\r\n",
        ),
        (
            Some("UID SEARCH ALL"),
            "TAG NO Request is throttled. Suggested Backoff Time: 250 milliseconds\r\n",
        ),
        (Some("NOOP"), "* BYE shutting down\r\n"),
    ])
    .await;
    c.read_greeting().await.unwrap();
    let e = c
        .authenticate(&Credentials::Login {
            user: "bob".into(),
            password: Secret::new("p\"w"),
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), legacyflo_core::ErrorKind::Unauthenticated);
    assert!(!e.to_string().contains("p\"w"));
    let e = c.select("Nope", false).await.unwrap_err();
    assert_eq!(e.kind(), legacyflo_core::ErrorKind::NotFound);
    assert!(e.to_string().contains("SELECT `Nope`"), "{e}");
    let e = c.uid_search("ALL", "INBOX").await.unwrap_err();
    assert_eq!(e.kind(), legacyflo_core::ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_millis(250)));
    let e = c.simple("NOOP", "NOOP", None).await.unwrap_err();
    assert_eq!(e.kind(), legacyflo_core::ErrorKind::Temporary);
    let e = c.simple("NOOP", "NOOP", None).await.unwrap_err();
    assert!(
        matches!(e, ImapError::Closed { .. } | ImapError::Io { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn multiappend_returns_appenduid_and_pipelined_fetch_reads_split_input() {
    let mut c = replay(vec![
        (
            None,
            "* OK [CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND UIDPLUS] hi\r\n",
        ),
        (
            Some("APPEND \"Arch/&AOQ-\" (\\Seen) \"02-Jan-2023 09:00:00 +0000\" {5+}"),
            "TAG OK [APPENDUID 42 10:11] Append completed.\r\n",
        ),
        (Some("UID FETCH 1 "), ""),
        (Some("UID FETCH 2 "), "* 1 FETCH (UID 1 BODY[] {4}\r\n"),
        (None, "ab"),
        (
            None,
            "cd)\r\nL2 OK x\r\n* 2 FETCH (UID 2 BODY[] {0}\r\n)\r\nL3 OK y\r\n",
        ),
    ])
    .await;
    c.read_greeting().await.unwrap();
    let d = parse_internal_date("02-Jan-2023 09:00:00 +0000");
    let msgs = vec![
        AppendMessage {
            body: Bytes::from_static(b"hello"),
            flags: vec!["\\Seen".into()],
            internal_date: d,
        },
        AppendMessage {
            body: Bytes::from_static(b"x"),
            flags: vec![],
            internal_date: None,
        },
    ];
    let uids = c.append("Arch/&AOQ-", &msgs).await.unwrap();
    assert_eq!(uids, vec![Some((42, 10)), Some((42, 11))]);
    let _t1 = c.send_uid_fetch("1", "(BODY.PEEK[])").await.unwrap();
    let _t2 = c.send_uid_fetch("2", "(BODY.PEEK[])").await.unwrap();
    let mut bodies = Vec::new();
    let mut done = 0;
    while done < 2 {
        match c.next_reply("UID FETCH", c.deadline()).await.unwrap() {
            Reply::Fetch(f) => bodies.push(f.body.unwrap()),
            Reply::Done { .. } => done += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(bodies, vec![Bytes::from_static(b"abcd"), Bytes::new()]);
}

#[test]
fn helpers() {
    assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
    assert_eq!(quote("a\"b\\"), Some("\"a\\\"b\\\\\"".into()));
    assert_eq!(quote("ü"), None);
    assert_eq!(TlsMode::default_for_port(143), TlsMode::StartTls);
    assert_eq!(TlsMode::default_for_port(993), TlsMode::Implicit);
    assert_eq!(TlsMode::parse("STARTTLS"), Some(TlsMode::StartTls));
}

#[tokio::test]
async fn list_status_attaches_each_mailbox_status() {
    let mut c = replay(vec![
        (
            None,
            "* OK [CAPABILITY IMAP4rev1 LIST-EXTENDED SPECIAL-USE LIST-STATUS] ready\r\n",
        ),
        (
            Some("LIST \"\" \"*\" RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT UIDVALIDITY))"),
            "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
             * STATUS INBOX (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 11)\r\n\
             * LIST (\\Noselect \\HasChildren) \"/\" Archive\r\n\
             * LIST (\\HasNoChildren \\Sent) \"/\" \"Archive/Sent &AOQ-\"\r\n\
             * STATUS \"Archive/Sent &AOQ-\" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 12)\r\n\
             * LIST (\\HasNoChildren) \"/\" Empty\r\n\
             TAG OK done\r\n",
        ),
    ])
    .await;
    c.read_greeting().await.unwrap();
    let entries = c.list().await.unwrap();
    assert_eq!(entries.len(), 4);
    let by = |n: &str| entries.iter().find(|e| e.raw_name == n).unwrap();
    assert_eq!(
        by("INBOX").status,
        Some(MailboxInfo {
            exists: 3,
            uid_validity: 11,
            uid_next: 4
        })
    );
    assert_eq!(by("Archive").status, None, "\\Noselect has no status");
    assert_eq!(by("Archive/Sent &AOQ-").name, "Archive/Sent ä");
    assert_eq!(by("Archive/Sent &AOQ-").status.map(|s| s.uid_next), Some(1));
    assert_eq!(
        by("Empty").status,
        None,
        "no STATUS sent: unknown, not empty"
    );
}

#[tokio::test]
async fn list_without_list_status_asks_only_special_use() {
    let mut c = replay(vec![
        (
            None,
            "* OK [CAPABILITY IMAP4rev1 LIST-EXTENDED SPECIAL-USE] ready\r\n",
        ),
        (
            Some("LIST \"\" \"*\" RETURN (SPECIAL-USE)\r"),
            "* LIST (\\HasNoChildren) \"/\" INBOX\r\nTAG OK done\r\n",
        ),
    ])
    .await;
    c.read_greeting().await.unwrap();
    let entries = c.list().await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].status, None);
}
