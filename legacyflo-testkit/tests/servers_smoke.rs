//! Smoke tests against the real servers started by `bash scripts/test.sh`.
//! They fail (never skip) when the servers are not running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use legacyflo_testkit::servers::{
    ImapServer, S3Server, imap_server, reset_user, s3_server, seed_maildir,
};

#[test]
fn dovecot_greets() {
    let server = imap_server();
    let c = server.connect().unwrap();
    assert!(c.greeting().starts_with("* OK"), "{}", c.greeting());
    assert!(
        server.ca_file.is_file(),
        "CA file {}",
        server.ca_file.display()
    );
    assert!(
        server.maildir_root.is_dir(),
        "{}",
        server.maildir_root.display()
    );
    c.logout();
}

#[test]
fn login_and_list_shows_inbox() {
    let server = imap_server();
    let mut c = server.connect().unwrap();
    let r = c.login("alice", "alicepw").unwrap();
    assert!(r.is_ok(), "{r:?}");
    let r = c.command(r#"LIST "" "*""#).unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert!(
        r.untagged
            .iter()
            .any(|l| l.starts_with("* LIST") && l.ends_with("INBOX")),
        "{:?}",
        r.untagged
    );
    c.logout();
}

#[test]
fn master_user_login_works() {
    let server = imap_server();
    let mut c = server.connect().unwrap();
    let user = format!("alice*{}", server.master_user);
    let r = c.login(&user, &server.master_password).unwrap();
    assert!(r.is_ok(), "{r:?}");
    let r = c.command("SELECT INBOX").unwrap();
    assert!(r.is_ok(), "{r:?}");
    c.logout();
}

#[test]
fn wrong_password_gets_no() {
    let server = imap_server();
    let mut c = server.connect().unwrap();
    let r = c.login("alice", "not-the-password").unwrap();
    assert_eq!(r.status, "NO", "{r:?}");
    // no auth penalty: a good login right after works (and quickly)
    let t = std::time::Instant::now();
    let r = c.login("alice", "alicepw").unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert!(
        t.elapsed().as_secs() < 3,
        "login after a failure took {:?}",
        t.elapsed()
    );
    c.logout();
}

#[test]
fn seeded_nested_non_ascii_folder_has_3_messages() {
    let server = imap_server();
    let user = "bob";
    reset_user(&server, user);
    let folder = ["Ünïcødé", "日本語", "Ordner & Co"];
    let msgs: Vec<(Vec<u8>, &str, i64)> = vec![
        (
            b"From: a@example.test\r\nSubject: one\r\n\r\nbody 1\r\n".to_vec(),
            "S",
            1_600_000_000,
        ),
        (
            b"From: a@example.test\r\nSubject: two\r\n\r\nbody 2\r\n".to_vec(),
            "FS",
            1_650_000_000,
        ),
        (
            "Subject: drei Grüße\r\n\r\nFrom here\r\n"
                .as_bytes()
                .to_vec(),
            "",
            1_700_000_000,
        ),
    ];
    seed_maildir(&server, user, &folder, &msgs);
    let mut c = server.login(user, "bobpw").unwrap();
    let name = ImapServer::mailbox_name(&folder);
    assert_eq!(name, "&ANw-n&AO8-c&APg-d&AOk-/&ZeVnLIqe-/Ordner &- Co");
    let r = c.command(&format!("SELECT \"{name}\"")).unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert!(r.has_untagged("* 3 EXISTS"), "{:?}", r.untagged);
    let r = c
        .command("FETCH 1:3 (FLAGS INTERNALDATE RFC822.SIZE)")
        .unwrap();
    assert!(r.is_ok(), "{r:?}");
    let fetch: Vec<&String> = r.untagged.iter().filter(|l| l.contains("FETCH")).collect();
    assert_eq!(fetch.len(), 3, "{fetch:?}");
    assert!(
        fetch[0].contains(r"\Seen") && !fetch[0].contains(r"\Flagged"),
        "{}",
        fetch[0]
    );
    assert!(fetch[1].contains(r"\Flagged"), "{}", fetch[1]);
    assert!(
        fetch[0].contains("13-Sep-2020 12:26:40 +0000"),
        "{}",
        fetch[0]
    );
    assert!(
        fetch[2].contains(&format!("RFC822.SIZE {}", msgs[2].0.len())),
        "{}",
        fetch[2]
    );
    let r = c.command("FETCH 3 BODY.PEEK[]").unwrap();
    assert!(r.untagged.concat().contains("drei Grüße"), "{r:?}");
    c.logout();
    reset_user(&server, user);
}

#[test]
fn seeded_inbox_and_inbox_child_with_user_at_domain() {
    let server = imap_server();
    let user = "carol@example.test";
    reset_user(&server, user);
    let msg = |n: u32| {
        (
            format!("Subject: m{n}\r\n\r\nbody {n}\r\n").into_bytes(),
            "S",
            1_700_000_000 + i64::from(n),
        )
    };
    seed_maildir(&server, user, &["INBOX"], &[msg(1), msg(2)]);
    // a second call appends after the existing messages
    seed_maildir(&server, user, &[], &[msg(3)]);
    seed_maildir(&server, user, &["INBOX", "Rechnungen"], &[msg(4)]);
    let mut c = server.login(user, "carolpw").unwrap();
    let r = c.command("SELECT INBOX").unwrap();
    assert!(r.has_untagged("* 3 EXISTS"), "{:?}", r.untagged);
    let r = c
        .command("FETCH 3 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
        .unwrap();
    assert!(r.untagged.concat().contains("Subject: m3"), "{r:?}");
    let r = c.command("STATUS \"INBOX/Rechnungen\" (MESSAGES)").unwrap();
    assert!(r.has_untagged("MESSAGES 1"), "{r:?}");
    c.logout();
    reset_user(&server, user);
}

#[test]
fn seaweedfs_s3_answers_signed_requests() {
    let s3 = s3_server();
    let r = s3.http("GET", "/", b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("ListAllMyBucketsResult"), "{}", r.text());
}

/// The S3 server checks signatures: the right access key with a wrong secret, and no
/// signature at all, are refused with 403 (a mock that accepts anything would let the
/// product's signing go untested).
#[test]
fn a_wrong_secret_or_no_signature_is_refused() {
    let s3 = s3_server();
    let bucket = format!("legacyflo-sig-{}", std::process::id());
    let wrong = S3Server {
        secret_key: format!("{}-wrong", s3.secret_key),
        ..s3.clone()
    };
    let r = wrong.http("GET", "/", b"").unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("SignatureDoesNotMatch"), "{}", r.text());
    let r = wrong.http("PUT", &format!("/{bucket}"), b"").unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    // The refused CreateBucket created nothing.
    let r = s3.http("GET", "/", b"").unwrap();
    assert!(!r.text().contains(&bucket), "{}", r.text());
    let unknown = S3Server {
        access_key: "AKIANOSUCHKEY0000000".into(),
        ..s3.clone()
    };
    let r = unknown.http("GET", "/", b"").unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("InvalidAccessKeyId"), "{}", r.text());
    // Anonymous: no Authorization header.
    let (host, port) = s3.host_port().unwrap();
    let mut sock = std::net::TcpStream::connect((host.as_str(), port)).unwrap();
    use std::io::{Read as _, Write as _};
    write!(
        sock,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    sock.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 403"), "{raw}");
    let r = s3.http("GET", "/", b"").unwrap();
    assert!(!r.text().contains(&bucket), "{}", r.text());
}

#[test]
fn s3_bucket_create_and_list() {
    let s3 = s3_server();
    let bucket = format!("legacyflo-smoke-{}", std::process::id());
    let r = s3.http("PUT", &format!("/{bucket}"), b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s3
        .http("PUT", &format!("/{bucket}/hello.txt"), b"hello s3")
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s3.http("GET", "/", b"").unwrap();
    assert!(
        r.text().contains(&format!("<Name>{bucket}</Name>")),
        "{}",
        r.text()
    );
    let r = s3
        .http("GET", &format!("/{bucket}/hello.txt"), b"")
        .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello s3"[..]));
    let r = s3
        .http("DELETE", &format!("/{bucket}/hello.txt"), b"")
        .unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s3.http("DELETE", &format!("/{bucket}"), b"").unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
}
