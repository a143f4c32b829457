//! The IMAP source against the real Dovecot (`scripts/test-infra.sh up`); these tests fail
//! when the server is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::StreamExt;
use legacyflo_core::request::Secret;
use legacyflo_core::{Engine, ErrorKind, Filter, FolderPath, Message, Source, SourceEvent};
use legacyflo_sources::imap::{
    ConnectOptions, Credentials, ImapPreset, ImapSource, ImapSourceOptions, TlsMode,
};
use legacyflo_testkit::conformance::{self, SourceCaps, SourceHarness};
use legacyflo_testkit::memory::MemorySink;
use legacyflo_testkit::servers::{ImapServer, imap_server, reset_user, seed_maildir};

fn login(server: &ImapServer, user: &str) -> ConnectOptions {
    let mut o = ConnectOptions::new(
        server.host.clone(),
        server.port,
        Credentials::Login {
            user: user.into(),
            password: Secret::new(format!("{}pw", user.split('@').next().unwrap_or(user))),
        },
    );
    o.tls = TlsMode::None;
    o
}

/// IMAP carries CRLF text: Dovecot serves bare LFs as CRLF and NULs as 0x80. Messages are
/// compared in that form (a property of the protocol, not of the source).
pub fn imap_canonical(raw: &[u8]) -> Vec<u8> {
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

fn letters(m: &Message) -> String {
    m.flags.iter().filter_map(|f| f.maildir_letter()).collect()
}

/// Seeds each `source_with` into a fresh sub-tree `c<N>` of one user; the source's root is
/// that sub-tree.
struct Harness {
    server: ImapServer,
    user: &'static str,
    n: AtomicUsize,
}

impl Harness {
    fn new(user: &'static str) -> Harness {
        let server = imap_server();
        reset_user(&server, user);
        Harness {
            server,
            user,
            n: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl SourceHarness for Harness {
    async fn source_with(&self, messages: &[Message]) -> Arc<dyn Source> {
        let root = format!("c{}", self.n.fetch_add(1, Ordering::SeqCst));
        let mut by_folder: std::collections::BTreeMap<FolderPath, Vec<&Message>> =
            Default::default();
        for m in messages {
            by_folder.entry(m.folder.clone()).or_default().push(m);
        }
        for (folder, msgs) in by_folder {
            let mut path: Vec<&str> = vec![root.as_str()];
            path.extend(folder.segments().iter().map(String::as_str));
            let l: Vec<String> = msgs.iter().map(|m| letters(m)).collect();
            let seed: Vec<(Vec<u8>, &str, i64)> = msgs
                .iter()
                .zip(&l)
                .map(|(m, l)| {
                    (
                        m.raw.to_vec(),
                        l.as_str(),
                        m.internal_date.map(|d| d.timestamp()).unwrap_or(0),
                    )
                })
                .collect();
            seed_maildir(&self.server, self.user, &path, &seed);
        }
        let mut o = ImapSourceOptions::new(login(&self.server, self.user), ImapPreset::Generic);
        o.root = Some(root);
        Arc::new(ImapSource::new(o))
    }

    fn caps(&self) -> SourceCaps {
        SourceCaps {
            flags: true,
            internal_date: true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    let h = Harness::new("src");
    let mut all = canonical(legacyflo_testkit::corpus::edge_cases());
    all.extend(canonical(legacyflo_testkit::corpus::generated(300, 21)));
    conformance::source_round_trip(&h, "edge + generated", &all).await;
    conformance::source_round_trip(
        &h,
        "sample mailbox",
        &canonical(legacyflo_testkit::corpus::sample()),
    )
    .await;
    conformance::source_resume_from_position(
        &h,
        &canonical(legacyflo_testkit::corpus::generated(120, 22)),
    )
    .await;
    conformance::source_filters(
        &h,
        &canonical(legacyflo_testkit::corpus::generated(200, 23)),
    )
    .await;
    conformance::source_survives_temporary_errors(
        &h,
        &canonical(legacyflo_testkit::corpus::generated(150, 24)),
    )
    .await;
}

async fn collect(source: &dyn Source, folder: &FolderPath) -> Vec<Message> {
    let mut s = source
        .stream(folder, &Filter::default(), None)
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(ev) = s.next().await {
        if let SourceEvent::Message(i) = ev.unwrap() {
            out.push(i.message);
        }
    }
    out
}

#[tokio::test]
async fn nested_non_ascii_folders_and_master_user() {
    let server = imap_server();
    reset_user(&server, "alice");
    let raw = b"Message-ID: <n@x>\r\nSubject: nested\r\n\r\nhi\r\n".to_vec();
    seed_maildir(
        &server,
        "alice",
        &["Ünïcødé", "日本語", "Ordner & Co"],
        &[(raw.clone(), "S", 1_700_000_000)],
    );
    seed_maildir(
        &server,
        "alice",
        &["INBOX"],
        &[(b"Subject: inbox\r\n\r\nx\r\n".to_vec(), "", 1_700_000_100)],
    );
    // Master user: AUTHENTICATE PLAIN with authzid = alice, authcid = admin.
    let mut o = login(&server, "alice");
    o.credentials = Credentials::Plain {
        authzid: Some("alice".into()),
        user: server.master_user.clone(),
        password: Secret::new(server.master_password.clone()),
    };
    let src = ImapSource::new(ImapSourceOptions::new(o, ImapPreset::Generic));
    let folders = src.list_folders().await.unwrap();
    let paths: Vec<String> = folders.iter().map(|f| f.path.to_string()).collect();
    assert!(
        paths.contains(&"Ünïcødé/日本語/Ordner & Co".to_string()),
        "{paths:?}"
    );
    assert!(paths.contains(&"INBOX".to_string()), "{paths:?}");
    let parent = folders
        .iter()
        .find(|f| f.path.to_string() == "Ünïcødé")
        .unwrap();
    assert!(!parent.selectable || parent.messages.is_none());
    let got = collect(&src, &FolderPath::new(["Ünïcødé", "日本語", "Ordner & Co"])).await;
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].raw[..], &raw[..]);
    assert_eq!(
        got[0].internal_date.map(|d| d.timestamp()),
        Some(1_700_000_000)
    );
    // Master user via LOGIN "alice*admin".
    let mut o = login(&server, "alice");
    o.credentials = Credentials::Login {
        user: format!("alice*{}", server.master_user),
        password: Secret::new(server.master_password.clone()),
    };
    let src = ImapSource::new(ImapSourceOptions::new(o, ImapPreset::Generic));
    assert_eq!(collect(&src, &FolderPath::inbox()).await.len(), 1);
    // Master user from the request (`--source-admin-user`): AUTHENTICATE PLAIN as the
    // admin on behalf of the source login.
    let endpoint = legacyflo_core::request::ImapEndpoint {
        server: server.host.clone(),
        port: server.port,
        user: "alice".into(),
        domain: None,
        password: Some(Secret::new(server.master_password.clone())),
        tls: Some(legacyflo_core::request::ImapTls::None),
        ca_file: None,
        insecure: false,
        admin: Some(server.master_user.clone()),
        limits: Default::default(),
    };
    let src = legacyflo_sources::imap::open_imap_source(ImapPreset::Generic, &endpoint).unwrap();
    assert_eq!(collect(&src, &FolderPath::inbox()).await.len(), 1);
    // A wrong password is Unauthenticated and the message does not leak it.
    let mut o = login(&server, "alice");
    o.credentials = Credentials::Login {
        user: "alice".into(),
        password: Secret::new("wrong-secret"),
    };
    let err = ImapSource::new(ImapSourceOptions::new(o, ImapPreset::Generic))
        .list_folders()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(!err.to_string().contains("wrong-secret"));
    assert!(err.to_string().contains("LOGIN alice"), "{err}");
}

#[tokio::test]
async fn tls_with_the_test_ca_and_refused_without() {
    let server = imap_server();
    reset_user(&server, "bob");
    seed_maildir(
        &server,
        "bob",
        &["INBOX"],
        &[(b"Subject: tls\r\n\r\nx\r\n".to_vec(), "", 1_700_000_000)],
    );
    for (port, mode) in [
        (server.tls_port, TlsMode::Implicit),
        (server.port, TlsMode::StartTls),
    ] {
        let mut o = login(&server, "bob");
        o.port = port;
        o.tls = mode;
        o.ca_file = Some(server.ca_file.clone());
        let src = ImapSource::new(ImapSourceOptions::new(o.clone(), ImapPreset::Generic));
        assert_eq!(
            collect(&src, &FolderPath::inbox()).await.len(),
            1,
            "{mode:?}"
        );
        // Without the CA: the built-in roots do not trust the test CA.
        o.ca_file = None;
        let err = ImapSource::new(ImapSourceOptions::new(o.clone(), ImapPreset::Generic))
            .list_folders()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{mode:?}: {err}");
        assert!(err.to_string().contains("TLS"), "{err}");
        // Explicitly insecure works.
        o.insecure = true;
        let src = ImapSource::new(ImapSourceOptions::new(o, ImapPreset::Generic));
        assert_eq!(collect(&src, &FolderPath::inbox()).await.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_stream_completely() {
    let server = imap_server();
    reset_user(&server, "big");
    let msgs = legacyflo_testkit::corpus::generated(10_000, 99);
    let seed: Vec<(Vec<u8>, &str, i64)> = msgs
        .iter()
        .map(|m| {
            (
                imap_canonical(&m.raw),
                "",
                m.internal_date.map(|d| d.timestamp()).unwrap_or(0),
            )
        })
        .collect();
    seed_maildir(&server, "big", &["INBOX"], &seed);
    let src = Arc::new(ImapSource::new(ImapSourceOptions::new(
        login(&server, "big"),
        ImapPreset::Generic,
    )));
    let sink = MemorySink::new();
    let t = std::time::Instant::now();
    let res = Engine::new("IMAP-TEST", src, Box::new(sink.clone()))
        .run()
        .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    let got = sink.committed();
    assert_eq!(got.len(), 10_000, "{:?}", res.report.totals());
    let mut a: Vec<Vec<u8>> = seed.into_iter().map(|s| s.0).collect();
    let mut b: Vec<Vec<u8>> = got.iter().map(|m| m.raw.to_vec()).collect();
    a.sort();
    b.sort();
    assert!(a == b, "bytes differ");
    eprintln!("10,000 messages streamed in {:?}", t.elapsed());
}

#[tokio::test]
async fn presets_select_folders() {
    let server = imap_server();
    reset_user(&server, "empty");
    for f in [
        &["Calendar"][..],
        &["Deleted Items"],
        &["Sent Items"],
        &["Files"],
    ] {
        seed_maildir(
            &server,
            "empty",
            f,
            &[(b"Subject: p\r\n\r\nx\r\n".to_vec(), "", 1_700_000_000)],
        );
    }
    let src = ImapSource::new(ImapSourceOptions::new(
        login(&server, "empty"),
        ImapPreset::O365,
    ));
    let paths: Vec<String> = src
        .list_folders()
        .await
        .unwrap()
        .iter()
        .map(|f| f.path.to_string())
        .collect();
    assert!(paths.contains(&"Sent Items".to_string()), "{paths:?}");
    for skip in ["Calendar", "Deleted Items", "Files"] {
        assert!(!paths.contains(&skip.to_string()), "{paths:?}");
    }
}

/// Makes HS256 JWTs signed with `TEST_JWT_HS256_SECRET`, as the test Dovecot validates.
struct JwtProvider(Vec<u8>);

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::digest([&ipad[..], msg].concat());
    Sha256::digest([&opad[..], &inner[..]].concat()).to_vec()
}

#[async_trait]
impl legacyflo_sources::imap::TokenProvider for JwtProvider {
    async fn token(&self, user: &str) -> Result<Secret, legacyflo_sources::imap::ImapError> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let exp = chrono::Utc::now().timestamp() + 3600;
        let head = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = b64.encode(format!(r#"{{"sub":"{user}","exp":{exp}}}"#));
        let input = format!("{head}.{body}");
        let sig = b64.encode(hmac_sha256(&self.0, input.as_bytes()));
        Ok(Secret::new(format!("{input}.{sig}")))
    }
}

#[tokio::test]
async fn xoauth2_with_a_token_provider() {
    let server = imap_server();
    let secret = std::env::var("TEST_JWT_HS256_SECRET").expect("TEST_JWT_HS256_SECRET");
    let mut o = login(&server, "carol@example.test");
    o.credentials = Credentials::XOAuth2 {
        user: "carol@example.test".into(),
        provider: Arc::new(JwtProvider(secret.into_bytes())),
    };
    let src = ImapSource::new(ImapSourceOptions::new(o.clone(), ImapPreset::Generic));
    assert!(src.list_folders().await.is_ok());
    o.credentials = Credentials::XOAuth2 {
        user: "carol@example.test".into(),
        provider: Arc::new(JwtProvider(b"wrong".to_vec())),
    };
    let err = ImapSource::new(ImapSourceOptions::new(o, ImapPreset::Generic))
        .list_folders()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
}

/// UIDVALIDITY changes (the server rebuilt the folder): resuming from an old position
/// finds the last migrated message by identity and yields exactly the ones after it.
#[tokio::test]
async fn resume_after_uidvalidity_change_uses_identity() {
    let server = imap_server();
    reset_user(&server, "dst");
    let raws: Vec<Vec<u8>> = (0..20)
        .map(|i| {
            format!("Message-ID: <renum{i}@x>\r\nSubject: {i}\r\n\r\nbody {i}\r\n").into_bytes()
        })
        .collect();
    let seed: Vec<(Vec<u8>, &str, i64)> = raws
        .iter()
        .enumerate()
        .map(|(i, r)| (r.clone(), "", 1_700_000_000 + i as i64))
        .collect();
    seed_maildir(&server, "dst", &["Renum"], &seed);
    let folder = FolderPath::new(["Renum"]);
    let (pos8, v1) = {
        let src = ImapSource::new(ImapSourceOptions::new(
            login(&server, "dst"),
            ImapPreset::Generic,
        ));
        let mut s = src.stream(&folder, &Filter::default(), None).await.unwrap();
        let mut positions = Vec::new();
        while let Some(ev) = s.next().await {
            positions.push(ev.unwrap().position().clone());
        }
        assert_eq!(positions.len(), 20);
        let v1 = positions[7].split(':').next().unwrap().to_string();
        (positions[7].clone(), v1)
    }; // the source and its connections are dropped here
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Make Dovecot forget the folder's UIDs: it renumbers with a new UIDVALIDITY.
    let dir = server.folder_dir("dst", &["Renum"]);
    for f in std::fs::read_dir(&dir).unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("dovecot") {
            std::fs::remove_file(&p).unwrap();
        }
    }
    for f in std::fs::read_dir(server.user_maildir("dst")).unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("dovecot.list.index") {
            std::fs::remove_file(&p).unwrap();
        }
    }
    let src = ImapSource::new(ImapSourceOptions::new(
        login(&server, "dst"),
        ImapPreset::Generic,
    ));
    let mut s = src
        .stream(&folder, &Filter::default(), Some(&pos8))
        .await
        .unwrap();
    let mut rest = Vec::new();
    while let Some(ev) = s.next().await {
        if let SourceEvent::Message(i) = ev.unwrap() {
            assert_ne!(
                i.message.source_id.split(':').next().unwrap(),
                v1,
                "UIDVALIDITY did not change"
            );
            rest.push(i.message.raw.to_vec());
        }
    }
    assert_eq!(rest, raws[8..].to_vec());
}
