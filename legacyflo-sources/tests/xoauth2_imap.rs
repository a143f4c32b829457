//! XOAUTH2 against the real Dovecot (`scripts/test-infra.sh up`), which validates bearer
//! tokens as HS256 JWTs: the token comes from the local Google token endpoint through the
//! service-account JWT grant, exactly as a GMAILOAUTH request gets it. Fails when the
//! server is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::atomic::Ordering;
use std::time::Duration;

use legacyflo_core::request::{AuthMethod, CloudAuth, parse_credentials};
use legacyflo_core::{Engine, Field, Params, Request, Source};
use legacyflo_sources::imap::{
    ConnectOptions, Credentials, ImapPreset, ImapSource, ImapSourceOptions, TlsMode,
};
use legacyflo_sources::oauth;
use legacyflo_testkit::cloud::token::{TokenConfig, google_key_file, token_server};
use legacyflo_testkit::memory::MemorySink;
use legacyflo_testkit::servers::{imap_server, reset_user, seed_maildir};

/// The tests share the Dovecot user `oauthuser`: one at a time.
static OAUTHUSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xoauth2_login_with_service_account_tokens_refreshed_mid_run() {
    let _one = OAUTHUSER.lock().await;
    let server = imap_server();
    let user = "oauthuser";
    reset_user(&server, user);
    let seed: Vec<(Vec<u8>, &str, i64)> = (0..40)
        .map(|i| {
            (
                format!("Subject: m{i}\r\nMessage-ID: <{i}@x>\r\n\r\nbody {i}\r\n").into_bytes(),
                "S",
                1_700_000_000 + i,
            )
        })
        .collect();
    seed_maildir(&server, user, &["Archiv"], &seed);
    let tok = token_server(TokenConfig {
        delegated: vec![user.into()],
        ..TokenConfig::default()
    })
    .await;
    let text = std::fs::read_to_string(google_key_file()).unwrap();
    let auth = CloudAuth {
        credentials: parse_credentials(AuthMethod::GoogleServiceAccountImap, &text).unwrap(),
        file: google_key_file(),
        api_url: None,
        token_url: Some(tok.google_url()),
    };
    let cache = oauth::token_cache(
        &auth,
        user,
        oauth::SCOPE_GMAIL_IMAP,
        oauth::http_client().unwrap(),
    )
    .unwrap();
    let mut connect = ConnectOptions::new(
        server.host.clone(),
        server.port,
        Credentials::XOAuth2 {
            user: user.into(),
            provider: cache.clone(),
        },
    );
    connect.tls = TlsMode::None;
    let source = ImapSource::new(ImapSourceOptions::new(connect.clone(), ImapPreset::Generic));
    let folders = source.list_folders().await.unwrap();
    assert!(
        folders.iter().any(|f| f.path.join("/") == "Archiv"),
        "{folders:?}"
    );
    let sink = MemorySink::new();
    let res = Engine::new(
        "GMAILOAUTH-S3-ZIP",
        std::sync::Arc::new(source),
        Box::new(sink.clone()),
    )
    .run()
    .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    assert_eq!(sink.committed().len(), 40);

    // Tokens of 1 s: a later login gets a new one, and Dovecot accepts it.
    tok.state.lifetime_secs.store(1, Ordering::SeqCst);
    let before = tok.issued();
    let (_, generation) = cache.token_with_generation().await.unwrap();
    cache.invalidate(generation).await;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let s = ImapSource::new(ImapSourceOptions::new(connect.clone(), ImapPreset::Generic));
        assert!(!s.list_folders().await.unwrap().is_empty());
    }
    // One for each login: the first after the invalidation, the second after expiry.
    assert!(
        tok.issued() >= before + 2,
        "tokens were not renewed: {} then {}",
        before,
        tok.issued()
    );

    // A token for another mailbox is refused by Dovecot with a clear error.
    let other = oauth::token_cache(
        &auth,
        "someoneelse",
        oauth::SCOPE_GMAIL_IMAP,
        oauth::http_client().unwrap(),
    );
    // `someoneelse` is not delegated: the token endpoint refuses, naming the reason.
    let mut c2 = connect.clone();
    c2.credentials = Credentials::XOAuth2 {
        user: user.into(),
        provider: other.unwrap(),
    };
    let err = ImapSource::new(ImapSourceOptions::new(c2, ImapPreset::Generic))
        .list_folders()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unauthorized_client"), "{err}");
}

#[test]
fn oauth_request_types_build_xoauth2_imap_sources() {
    for (kind, file) in [
        ("GMAILOAUTH-S3-ZIP", google_key_file()),
        (
            "O365-S3-PST",
            legacyflo_testkit::cloud::token::microsoft_app_file(),
        ),
    ] {
        let p = Params::new()
            .with(Field::Type, kind)
            .with(Field::SourceServer, "127.0.0.1")
            .with(Field::SourceUser, "alice")
            .with(Field::SourceDomain, "example.test")
            .with(Field::SourceCredentials, file.display().to_string())
            .with(Field::SourceTokenUrl, "http://127.0.0.1:9/token")
            .with(Field::DestUrl, "/tmp/legacyflo-xoauth2-test/");
        let r = Request::from_params(&p).unwrap();
        let s = legacyflo_sources::open_source(&r).unwrap();
        assert_eq!(s.kind(), "imap", "{kind}");
    }
    // Without credentials the field is named.
    let p = Params::new()
        .with(Field::Type, "O365-S3-ZIP")
        .with(Field::SourceUser, "alice")
        .with(Field::DestUrl, "/tmp/legacyflo-xoauth2-test/");
    let e = Request::from_params(&p).unwrap_err().to_string();
    assert!(
        e.contains("Source Credentials File (--source-credentials): missing"),
        "{e}"
    );
}

/// Hands out `bad` tokens first, then valid ones, each "valid" for an hour: without
/// dropping a refused token the cache would keep the bad one all run.
struct FlakyFetcher {
    user: String,
    bad: u64,
    calls: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl oauth::TokenFetcher for FlakyFetcher {
    async fn fetch(&self) -> Result<oauth::FreshToken, oauth::OAuthError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let token = if n < self.bad {
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.revoked-or-expired".to_string()
        } else {
            legacyflo_testkit::cloud::mint_access_token(
                &self.user,
                oauth::SCOPE_GMAIL_IMAP,
                Duration::from_secs(3600),
            )
        };
        Ok(oauth::FreshToken {
            access_token: legacyflo_core::request::Secret::new(token),
            expires_in: Duration::from_secs(3600),
        })
    }
    fn describe(&self) -> String {
        format!("flaky tokens for {}", self.user)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_xoauth2_token_is_dropped_and_retried_once() {
    let _one = OAUTHUSER.lock().await;
    let server = imap_server();
    let user = "oauthuser";
    reset_user(&server, user);
    seed_maildir(
        &server,
        user,
        &["Refused"],
        &[(b"Subject: r\r\n\r\nbody\r\n".to_vec(), "S", 1_700_000_000)],
    );
    let source_with = |bad: u64| {
        let fetcher = std::sync::Arc::new(FlakyFetcher {
            user: user.into(),
            bad,
            calls: 0.into(),
        });
        let cache = std::sync::Arc::new(oauth::TokenCache::new(fetcher.clone()));
        let mut connect = ConnectOptions::new(
            server.host.clone(),
            server.port,
            Credentials::XOAuth2 {
                user: user.into(),
                provider: cache,
            },
        );
        connect.tls = TlsMode::None;
        (
            ImapSource::new(ImapSourceOptions::new(connect, ImapPreset::Generic)),
            fetcher,
        )
    };
    // The first token is refused: dropped, a fresh one fetched, the login succeeds.
    let (source, fetcher) = source_with(1);
    let folders = source.list_folders().await.unwrap();
    assert!(
        folders.iter().any(|f| f.path.join("/") == "Refused"),
        "{folders:?}"
    );
    assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
    // Always refused: exactly one retry, then a clear error (no loop).
    let (source, fetcher) = source_with(u64::MAX);
    let err = source.list_folders().await.unwrap_err().to_string();
    assert!(err.contains("XOAUTH2"), "{err}");
    assert!(!err.contains("revoked-or-expired"), "token in {err}");
    assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
}
