//! The Gmail API and Graph sources against the local servers in `legacyflo-testkit::cloud`:
//! the conformance suite, paging, throttling, quota, token expiry and bad credentials.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use legacyflo_core::request::{AuthMethod, CloudAuth, parse_credentials};
use legacyflo_core::{Engine, ErrorKind, Field, Message, Params, Request, Source};
use legacyflo_sources::cloud::{ApiClient, RetryPolicy};
use legacyflo_sources::gmail::{GmailOptions, GmailSource};
use legacyflo_sources::graph::{GraphOptions, GraphSource};
use legacyflo_sources::oauth;
use legacyflo_testkit::cloud::Counters;
use legacyflo_testkit::cloud::gmail::{GmailConfig, GmailServer, gmail_server};
use legacyflo_testkit::cloud::graph::{GraphConfig, GraphServer, graph_server};
use legacyflo_testkit::cloud::token::{
    TokenConfig, TokenServer, google_key_file, google_wrong_key_file, microsoft_app_file,
    token_server,
};
use legacyflo_testkit::conformance::{self, SourceCaps, SourceHarness};
use legacyflo_testkit::memory::MemorySink;
use tokio::sync::Mutex;

const GMAIL_USER: &str = "alice@example.test";
const GRAPH_USER: &str = "bob@contoso.test";

fn auth(method: AuthMethod, file: std::path::PathBuf, api: &str, token: &str) -> CloudAuth {
    let text = std::fs::read_to_string(&file).unwrap();
    CloudAuth {
        credentials: parse_credentials(method, &text).unwrap(),
        file,
        api_url: Some(api.to_string()),
        token_url: Some(token.to_string()),
    }
}

async fn tokens() -> TokenServer {
    token_server(TokenConfig {
        delegated: vec![GMAIL_USER.into(), "alice".into()],
        ..TokenConfig::default()
    })
    .await
}

fn gmail_source(
    tok: &TokenServer,
    srv: &GmailServer,
    tune: impl FnOnce(&mut GmailOptions),
) -> GmailSource {
    let a = auth(
        AuthMethod::GoogleServiceAccountApi,
        google_key_file(),
        &srv.url(),
        &tok.google_url(),
    );
    let http = oauth::http_client().unwrap();
    let cache =
        oauth::token_cache(&a, GMAIL_USER, oauth::SCOPE_GMAIL_READONLY, http.clone()).unwrap();
    let policy = RetryPolicy {
        base_delay: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    let mut o = GmailOptions::new(GMAIL_USER, a.api_url.as_deref());
    tune(&mut o);
    GmailSource::new(ApiClient::new("gmail", http, cache, policy), o)
}

fn graph_source(
    tok: &TokenServer,
    srv: &GraphServer,
    tune: impl FnOnce(&mut GraphOptions),
) -> GraphSource {
    let policy = RetryPolicy {
        base_delay: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    graph_source_with(
        tok,
        srv,
        policy,
        legacyflo_sources::cloud::DEFAULT_MAX_ANSWER_BYTES,
        tune,
    )
}

fn graph_source_with(
    tok: &TokenServer,
    srv: &GraphServer,
    policy: RetryPolicy,
    max_answer: u64,
    tune: impl FnOnce(&mut GraphOptions),
) -> GraphSource {
    let a = auth(
        AuthMethod::MicrosoftAppGraph,
        microsoft_app_file(),
        &srv.url(),
        &tok.microsoft_authority(),
    );
    let http = oauth::http_client().unwrap();
    let cache = oauth::token_cache(&a, GRAPH_USER, oauth::SCOPE_GRAPH, http.clone()).unwrap();
    let mut o = GraphOptions::new(GRAPH_USER, a.api_url.as_deref());
    tune(&mut o);
    let client = ApiClient::new("graph", http, cache, policy).with_max_answer_bytes(max_answer);
    GraphSource::new(client, o)
}

struct GmailHarness {
    tok: TokenServer,
    servers: Mutex<Vec<GmailServer>>,
}

#[async_trait]
impl SourceHarness for GmailHarness {
    async fn source_with(&self, messages: &[Message]) -> Arc<dyn Source> {
        let mut cfg = GmailConfig::new(GMAIL_USER);
        cfg.max_page = 40; // the 300-message cases list over >= 3 pages
        cfg.throttle_every = 97;
        cfg.throttle_max = 1;
        let srv = gmail_server(cfg, messages, &[]).await;
        let src = gmail_source(&self.tok, &srv, |_| {});
        self.servers.lock().await.push(srv);
        Arc::new(src)
    }
    fn caps(&self) -> SourceCaps {
        SourceCaps {
            flags: false,
            internal_date: true,
        }
    }
}

struct GraphHarness {
    tok: TokenServer,
    servers: Mutex<Vec<GraphServer>>,
}

#[async_trait]
impl SourceHarness for GraphHarness {
    async fn source_with(&self, messages: &[Message]) -> Arc<dyn Source> {
        let mut cfg = GraphConfig::new(GRAPH_USER);
        cfg.max_page = 25;
        cfg.throttle_every = 101;
        cfg.unavailable_every = 151;
        cfg.inject_max = 2;
        let srv = graph_server(cfg, messages, &[]).await;
        let src = graph_source(&self.tok, &srv, |_| {});
        self.servers.lock().await.push(srv);
        Arc::new(src)
    }
    fn caps(&self) -> SourceCaps {
        SourceCaps {
            flags: false,
            internal_date: true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_api_conformance() {
    let h = GmailHarness {
        tok: tokens().await,
        servers: Mutex::new(Vec::new()),
    };
    conformance::run_source_suite(&h).await;
    let servers = h.servers.lock().await;
    let throttled: u64 = servers
        .iter()
        .map(|s| Counters::get(&s.counters().throttled))
        .sum();
    assert!(throttled > 0, "the suite met no throttling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_conformance() {
    let h = GraphHarness {
        tok: tokens().await,
        servers: Mutex::new(Vec::new()),
    };
    conformance::run_source_suite(&h).await;
    let servers = h.servers.lock().await;
    let throttled: u64 = servers
        .iter()
        .map(|s| Counters::get(&s.counters().throttled))
        .sum();
    let failed: u64 = servers
        .iter()
        .map(|s| Counters::get(&s.counters().failed))
        .sum();
    assert!(
        throttled > 0 && failed > 0,
        "the suite met no 429 ({throttled}) or 503 ({failed})"
    );
    for s in servers.iter() {
        assert!(
            Counters::get(&s.counters().max_in_flight) <= 4,
            "more than 4 requests in flight"
        );
    }
}

async fn run_all(source: Arc<dyn Source>) -> (legacyflo_core::RunResult, Vec<Message>) {
    let sink = MemorySink::new();
    let res = Engine::new("TEST", source, Box::new(sink.clone()))
        .run()
        .await;
    (res, sink.committed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_label_rule_quota_403_and_token_expiry() {
    let tok = tokens().await;
    tok.state.lifetime_secs.store(1, Ordering::SeqCst);
    let mut msgs = legacyflo_testkit::corpus::generated(200, 61);
    // Folder rule cases: an INBOX message also labelled, a message only in All Mail, one
    // in Spam (never read), one with two user labels.
    msgs[0].folder = legacyflo_core::FolderPath::inbox();
    msgs[1].folder = legacyflo_core::FolderPath::new(["All Mail"]);
    msgs[2].folder = legacyflo_core::FolderPath::new(["Spam"]);
    msgs[3].folder = legacyflo_core::FolderPath::new(["Zeta"]);
    let mut cfg = GmailConfig::new(GMAIL_USER);
    cfg.quota_units = 400;
    cfg.quota_window = Duration::from_secs(1);
    cfg.max_page = 30;
    let srv = gmail_server(cfg, &msgs, &[(0, "Projekte"), (3, "Alpha")]).await;
    // The client believes in a larger quota than the server grants: the server's 403
    // userRateLimitExceeded must be survived.
    let src = Arc::new(gmail_source(&tok, &srv, |o| {
        o.quota_units = 800;
        o.quota_window = Duration::from_secs(1);
    }));
    let (res, got) = run_all(src.clone()).await;
    assert!(res.error.is_none(), "{:?}", res.error);
    let want: Vec<&Message> = msgs
        .iter()
        .filter(|m| m.folder.join("/") != "Spam")
        .collect();
    assert_eq!(got.len(), want.len(), "each message once, Spam left out");
    let find = |raw: &[u8]| got.iter().find(|m| &m.raw[..] == raw).unwrap();
    assert_eq!(find(&msgs[0].raw).folder.join("/"), "INBOX");
    assert!(find(&msgs[0].raw).labels.contains(&"Projekte".to_string()));
    assert_eq!(find(&msgs[1].raw).folder.join("/"), "All Mail");
    assert_eq!(
        find(&msgs[3].raw).folder.join("/"),
        "Alpha",
        "first user label by name"
    );
    assert!(find(&msgs[3].raw).labels.contains(&"Zeta".to_string()));
    assert!(
        Counters::get(&srv.counters().throttled) > 0,
        "server quota never hit"
    );
    assert!(
        tok.issued() >= 2,
        "the 1 s token was never refreshed ({} issued)",
        tok.issued()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_skips_folders_pages_and_refreshes_expired_tokens() {
    let tok = tokens().await;
    tok.state.lifetime_secs.store(1, Ordering::SeqCst);
    let mut msgs = legacyflo_testkit::corpus::generated(120, 62);
    for m in msgs.iter_mut().take(10) {
        m.folder = legacyflo_core::FolderPath::new(["Deleted Items"]);
    }
    let mut cfg = GraphConfig::new(GRAPH_USER);
    cfg.max_page = 10;
    cfg.requests_per_window = 60;
    cfg.window = Duration::from_secs(1);
    let srv = graph_server(
        cfg,
        &msgs,
        &["Calendar", "Contacts", "Tasks", "Inbox/Sub/Deeper"],
    )
    .await;
    let src = Arc::new(graph_source(&tok, &srv, |o| o.page_size = 10));
    let folders: Vec<String> = src
        .list_folders()
        .await
        .unwrap()
        .iter()
        .map(|f| f.path.join("/"))
        .collect();
    for skipped in ["Calendar", "Contacts", "Tasks", "Deleted Items"] {
        assert!(
            !folders.contains(&skipped.to_string()),
            "{skipped} listed: {folders:?}"
        );
    }
    assert!(
        folders.contains(&"Inbox/Sub/Deeper".to_string()),
        "{folders:?}"
    );
    let (res, got) = run_all(src.clone()).await;
    assert!(res.error.is_none(), "{:?}", res.error);
    assert_eq!(got.len(), 110);
    // 110 messages at 60 requests a second take more than a second: tokens were replaced.
    assert!(tok.issued() >= 2, "tokens issued: {}", tok.issued());
    assert!(
        Counters::get(&srv.counters().throttled) > 0,
        "the mailbox limit was never met"
    );
}

fn request(
    kind: &str,
    creds: &std::path::Path,
    api: &str,
    token: &str,
    user: &str,
) -> Result<Request, String> {
    let p = Params::new()
        .with(Field::Type, kind)
        .with(Field::SourceUser, user)
        .with(Field::SourceCredentials, creds.display().to_string())
        .with(Field::SourceApiUrl, api)
        .with(Field::SourceTokenUrl, token)
        .with(Field::DestUrl, "/tmp/legacyflo-cloud-test-out/x.zip");
    Request::from_params(&p).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_named_and_never_printed() {
    let tok = tokens().await;
    let gsrv = gmail_server(
        GmailConfig::new(GMAIL_USER),
        &legacyflo_testkit::corpus::generated(5, 3),
        &[],
    )
    .await;
    let msrv = graph_server(
        GraphConfig::new(GRAPH_USER),
        &legacyflo_testkit::corpus::generated(5, 3),
        &[],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();

    // A malformed key file: the request names the field.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"type\": \"service_account\", \"private_key\": ").unwrap();
    let e = request(
        "GMAILAPI-S3-ZIP",
        &bad,
        &gsrv.url(),
        &tok.google_url(),
        GMAIL_USER,
    )
    .unwrap_err();
    assert!(
        e.contains("Source Credentials File") && e.contains("not a JSON"),
        "{e}"
    );
    let nokey = dir.path().join("nokey.json");
    std::fs::write(
        &nokey,
        "{\"type\": \"service_account\", \"client_email\": \"x@y\"}",
    )
    .unwrap();
    let e = request(
        "GMAILAPI-S3-ZIP",
        &nokey,
        &gsrv.url(),
        &tok.google_url(),
        GMAIL_USER,
    )
    .unwrap_err();
    assert!(e.contains("`private_key` is missing"), "{e}");
    let e = request(
        "GMAILAPI-S3-ZIP",
        &google_key_file(),
        "ftp://x",
        &tok.google_url(),
        GMAIL_USER,
    )
    .unwrap_err();
    assert!(e.contains("Source API URL"), "{e}");

    let secret_key = std::fs::read_to_string(google_key_file()).unwrap();
    let key_line = secret_key
        .lines()
        .find(|l| l.contains("MII"))
        .unwrap_or("MII")
        .to_string();
    let check = |e: &legacyflo_core::Error, want: &str| {
        let s = format!("{e} {e:?}");
        assert!(s.contains(want), "{s}");
        assert!(
            !s.contains(&key_line[..20.min(key_line.len())])
                && !s.contains("test-client-secret-value"),
            "secret in {s}"
        );
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{s}");
    };

    // A key that is not the service account's: Google refuses the signature.
    let r = request(
        "GMAILAPI-S3-ZIP",
        &google_wrong_key_file(),
        &gsrv.url(),
        &tok.google_url(),
        GMAIL_USER,
    )
    .unwrap();
    let src = legacyflo_sources::open_source(&r).unwrap();
    check(
        &src.list_folders().await.unwrap_err(),
        "Invalid JWT Signature",
    );

    // A mailbox outside the delegation.
    let r = request(
        "GMAILAPI-S3-ZIP",
        &google_key_file(),
        &gsrv.url(),
        &tok.google_url(),
        "mallory@example.test",
    )
    .unwrap();
    let src = legacyflo_sources::open_source(&r).unwrap();
    check(
        &src.list_folders().await.unwrap_err(),
        "unauthorized_client",
    );

    // A wrong tenant.
    let wrong = dir.path().join("wrong-tenant.json");
    std::fs::write(
        &wrong,
        std::fs::read_to_string(microsoft_app_file())
            .unwrap()
            .replace("11111111-2222", "99999999-2222"),
    )
    .unwrap();
    let r = request(
        "M365API-S3-ZIP",
        &wrong,
        &msrv.url(),
        &tok.microsoft_authority(),
        GRAPH_USER,
    )
    .unwrap();
    let src = legacyflo_sources::open_source(&r).unwrap();
    check(&src.list_folders().await.unwrap_err(), "AADSTS90002");

    // Revoked mid-run: the token in hand works until it expires, then the refresh fails.
    tok.state.lifetime_secs.store(1, Ordering::SeqCst);
    let r = request(
        "M365API-S3-ZIP",
        &microsoft_app_file(),
        &msrv.url(),
        &tok.microsoft_authority(),
        GRAPH_USER,
    )
    .unwrap();
    let src = legacyflo_sources::open_source(&r).unwrap();
    assert!(!src.list_folders().await.unwrap().is_empty());
    tok.state.revoked.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (res, _) = run_all(src).await;
    check(
        res.error.as_ref().expect("a revoked app must fail"),
        "invalid_client",
    );
}

/// The local Google endpoint checks signature, iss, sub, scope, aud and exp: an assertion
/// wrong in any one of them is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_token_endpoint_verifies_every_claim() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let tok = tokens().await;
    let key_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(google_key_file()).unwrap()).unwrap();
    let good_key = key_json["private_key"].as_str().unwrap().to_string();
    let other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(google_wrong_key_file()).unwrap()).unwrap();
    let bad_key = other["private_key"].as_str().unwrap().to_string();
    let now = chrono::Utc::now().timestamp();
    let claims = |iss: &str, sub: &str, scope: &str, aud: &str, exp: i64| serde_json::json!({"iss": iss, "sub": sub, "scope": scope, "aud": aud, "iat": now - 10, "exp": exp});
    let iss = legacyflo_testkit::cloud::token::ids::GOOGLE_CLIENT_EMAIL;
    let aud = tok.google_url();
    let cases = [
        (
            "good",
            good_key.as_str(),
            claims(
                iss,
                GMAIL_USER,
                oauth::SCOPE_GMAIL_READONLY,
                &aud,
                now + 3600,
            ),
            None,
        ),
        (
            "signature",
            bad_key.as_str(),
            claims(
                iss,
                GMAIL_USER,
                oauth::SCOPE_GMAIL_READONLY,
                &aud,
                now + 3600,
            ),
            Some("Invalid JWT Signature"),
        ),
        (
            "iss",
            good_key.as_str(),
            claims(
                "x@y.iam.gserviceaccount.com",
                GMAIL_USER,
                oauth::SCOPE_GMAIL_READONLY,
                &aud,
                now + 3600,
            ),
            Some("issuer"),
        ),
        (
            "sub",
            good_key.as_str(),
            claims(
                iss,
                "eve@example.test",
                oauth::SCOPE_GMAIL_READONLY,
                &aud,
                now + 3600,
            ),
            Some("unauthorized_client"),
        ),
        (
            "scope",
            good_key.as_str(),
            claims(
                iss,
                GMAIL_USER,
                "https://www.googleapis.com/auth/drive",
                &aud,
                now + 3600,
            ),
            Some("invalid_scope"),
        ),
        (
            "aud",
            good_key.as_str(),
            claims(
                iss,
                GMAIL_USER,
                oauth::SCOPE_GMAIL_READONLY,
                "https://oauth2.googleapis.com/token",
                now + 3600,
            ),
            Some("audience"),
        ),
        (
            "exp",
            good_key.as_str(),
            claims(iss, GMAIL_USER, oauth::SCOPE_GMAIL_READONLY, &aud, now - 5),
            Some("short-lived"),
        ),
    ];
    let http = reqwest::Client::new();
    for (case, key, c, want) in cases {
        let jwt = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &c,
            &EncodingKey::from_rsa_pem(key.as_bytes()).unwrap(),
        )
        .unwrap();
        let resp = http
            .post(tok.google_url())
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", jwt.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        match want {
            None => assert!(
                status.is_success() && body.contains("access_token"),
                "[{case}] {status} {body}"
            ),
            Some(w) => assert!(
                !status.is_success() && body.contains(w),
                "[{case}] {status} {body}"
            ),
        }
    }
    // The Microsoft endpoint: tenant, client, secret and scope.
    let form = |tenant: &str, client: &str, secret: &str, scope: &str| {
        let url = format!("{}/{tenant}/oauth2/v2.0/token", tok.microsoft_authority());
        let f = vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("client_id".to_string(), client.to_string()),
            ("client_secret".to_string(), secret.to_string()),
            ("scope".to_string(), scope.to_string()),
        ];
        (url, f)
    };
    use legacyflo_testkit::cloud::token::ids::*;
    for (case, (url, f), want) in [
        (
            "good",
            form(
                MS_TENANT,
                MS_CLIENT_ID,
                MS_CLIENT_SECRET,
                oauth::SCOPE_GRAPH,
            ),
            None,
        ),
        (
            "tenant",
            form(
                "contoso.test",
                MS_CLIENT_ID,
                MS_CLIENT_SECRET,
                oauth::SCOPE_GRAPH,
            ),
            Some("AADSTS90002"),
        ),
        (
            "client",
            form(MS_TENANT, "nope", MS_CLIENT_SECRET, oauth::SCOPE_GRAPH),
            Some("AADSTS700016"),
        ),
        (
            "secret",
            form(MS_TENANT, MS_CLIENT_ID, "wrong", oauth::SCOPE_GRAPH),
            Some("AADSTS7000215"),
        ),
        (
            "scope",
            form(MS_TENANT, MS_CLIENT_ID, MS_CLIENT_SECRET, "Mail.Read"),
            Some("AADSTS1002012"),
        ),
    ] {
        let resp = http.post(url).form(&f).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        match want {
            None => assert!(
                status.is_success() && body.contains("access_token"),
                "[{case}] {status} {body}"
            ),
            Some(w) => assert!(
                !status.is_success() && body.contains(w),
                "[{case}] {status} {body}"
            ),
        }
    }
}

/// Everything a folder stream yields after `after`, with the last position.
async fn drain(
    src: &dyn Source,
    folder: &legacyflo_core::FolderPath,
    after: Option<&String>,
) -> (Vec<Message>, Option<String>) {
    use futures::StreamExt;
    let mut s = src
        .stream(folder, &legacyflo_core::Filter::default(), after)
        .await
        .unwrap();
    let (mut got, mut last) = (Vec::new(), None);
    while let Some(ev) = s.next().await {
        match ev.unwrap() {
            legacyflo_core::SourceEvent::Message(item) => {
                last = Some(item.position);
                got.push(item.message);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    (got, last)
}

/// A later run started from the last position asks Graph only for the changes since
/// (the delta link it carries) and yields only the mail delivered in between; an expired
/// delta token falls back to listing the folder, with the same result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_delta_rerun_yields_only_new_mail() {
    let tok = tokens().await;
    let folder = legacyflo_core::FolderPath::new(["Inbox"]);
    let mut msgs = legacyflo_testkit::corpus::generated(30, 63);
    for m in msgs.iter_mut() {
        m.folder = folder.clone();
    }
    let mut cfg = GraphConfig::new(GRAPH_USER);
    cfg.max_page = 7;
    let srv = graph_server(cfg, &msgs, &[]).await;
    let src = graph_source(&tok, &srv, |o| o.page_size = 7);
    let (first, last) = drain(&src, &folder, None).await;
    assert_eq!(first.len(), 30);
    let last = last.unwrap();
    assert!(last.contains("|delta="), "{last}");

    // Mail delivered between the runs (received after everything else).
    let new: Vec<Message> = (0..3)
        .map(|i| {
            let raw = format!(
                "Date: Mon, 1 Jan 2035 10:0{i}:00 +0000\r\nSubject: new {i}\r\nMessage-ID: <new{i}@x>\r\n\r\nnew mail {i}\r\n"
            );
            Message::new(bytes::Bytes::from(raw), folder.clone(), format!("new{i}"))
        })
        .collect();
    for m in &new {
        srv.deliver(m);
    }
    let before = Counters::get(&srv.counters().requests);
    let (second, last2) = drain(&src, &folder, Some(&last)).await;
    let raws: Vec<_> = second.iter().map(|m| m.raw.clone()).collect();
    assert_eq!(raws, new.iter().map(|m| m.raw.clone()).collect::<Vec<_>>());
    // One delta call and three downloads: no full listing.
    assert_eq!(Counters::get(&srv.counters().requests) - before, 4);
    // Nothing new: nothing yielded.
    let (third, _) = drain(&src, &folder, last2.as_ref()).await;
    assert!(third.is_empty(), "{} repeated", third.len());

    // A delta token Graph no longer knows (410): the folder is listed again and still only
    // the new mail comes out.
    let (head, _) = last.split_once("$deltatoken=").unwrap();
    let expired = format!("{head}$deltatoken=dt-999999");
    let (again, _) = drain(&src, &folder, Some(&expired)).await;
    assert_eq!(again.len(), 3);
}

/// A later run started from the last position asks `history.list` for what was added
/// since (the history id it carries) and yields only the mail delivered in between, each in
/// its folder; an expired history (404) falls back to listing, with the same result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_history_rerun_yields_only_new_mail() {
    let tok = tokens().await;
    let inbox = legacyflo_core::FolderPath::inbox();
    let proj = legacyflo_core::FolderPath::new(["Projekte"]);
    let mut msgs = legacyflo_testkit::corpus::generated(40, 64);
    for (i, m) in msgs.iter_mut().enumerate() {
        m.folder = if i % 2 == 0 {
            inbox.clone()
        } else {
            proj.clone()
        };
    }
    let mut cfg = GmailConfig::new(GMAIL_USER);
    cfg.max_page = 9;
    let srv = gmail_server(cfg, &msgs, &[]).await;
    let src = gmail_source(&tok, &srv, |_| {});
    let (a, last_inbox) = drain(&src, &inbox, None).await;
    let (b, last_proj) = drain(&src, &proj, None).await;
    assert_eq!(a.len() + b.len(), 40);
    let (last_inbox, last_proj) = (last_inbox.unwrap(), last_proj.unwrap());
    assert!(last_inbox.contains("|history="), "{last_inbox}");

    let mk = |i: usize, f: &legacyflo_core::FolderPath| {
        let raw = format!("Subject: new {i}\r\nMessage-ID: <hnew{i}@x>\r\n\r\nnew {i}\r\n");
        Message::new(bytes::Bytes::from(raw), f.clone(), format!("n{i}"))
    };
    let new_inbox = [mk(0, &inbox), mk(1, &inbox)];
    let new_proj = [mk(2, &proj)];
    for m in new_inbox.iter().chain(new_proj.iter()) {
        srv.deliver(m);
    }
    // A new source, as a later run makes.
    let src = gmail_source(&tok, &srv, |_| {});
    let before = Counters::get(&srv.counters().requests);
    let (got, last2) = drain(&src, &inbox, Some(&last_inbox)).await;
    let raws: Vec<_> = got.iter().map(|m| m.raw.clone()).collect();
    assert_eq!(
        raws,
        new_inbox.iter().map(|m| m.raw.clone()).collect::<Vec<_>>()
    );
    // history.list and two gets: no labels.list beyond one, no messages.list.
    assert!(
        Counters::get(&srv.counters().requests) - before <= 4,
        "{} requests",
        Counters::get(&srv.counters().requests) - before
    );
    let (got, _) = drain(&src, &proj, Some(&last_proj)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].raw, new_proj[0].raw);
    let (none, _) = drain(&src, &inbox, last2.as_ref()).await;
    assert!(none.is_empty(), "{} repeated", none.len());

    // History expired: 404, the mailbox is listed again, still only the new mail.
    srv.state.history_floor.store(u64::MAX, Ordering::SeqCst);
    let src = gmail_source(&tok, &srv, |_| {});
    let (got, _) = drain(&src, &inbox, Some(&last_inbox)).await;
    assert_eq!(got.len(), 2);
}

use legacyflo_testkit::conformance::events_by_id;

/// The same `n` generated messages, all in INBOX.
fn inbox_messages(n: usize, seed: u64) -> Vec<Message> {
    let mut msgs = legacyflo_testkit::corpus::generated(n, seed);
    for m in &mut msgs {
        m.folder = legacyflo_core::FolderPath::inbox();
    }
    msgs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_accounts_for_every_listed_id() {
    use legacyflo_core::SourceEvent;
    let tok = tokens().await;
    let msgs = inbox_messages(30, 71);
    for engine in [false, true] {
        let srv = gmail_server(GmailConfig::new(GMAIL_USER), &msgs, &[]).await;
        let ids = srv.ids();
        {
            let mut f = srv.state.faults.lock().unwrap();
            f.omit.insert(ids[3].clone());
            f.fail.insert(ids[5].clone());
            f.not_found_once.insert(ids[7].clone());
            f.gone.insert(ids[9].clone());
        }
        let src = Arc::new(gmail_source(&tok, &srv, |o| o.max_attempts = 3));
        if engine {
            let (res, got) = run_all(src.clone()).await;
            assert!(res.error.is_none(), "{:?}", res.error);
            assert_eq!(res.report.status, legacyflo_core::RunStatus::DoneWithSkips);
            let t = res.report.totals();
            assert_eq!((t.messages, t.skipped, t.expunged), (27, 2, 1));
            assert_eq!(got.len(), 27);
            let text = res.report.to_string();
            assert!(text.contains("1 expunged at the source"), "{text}");
            continue;
        }
        let evs = events_by_id(src.as_ref(), &legacyflo_core::FolderPath::inbox()).await;
        let got: Vec<&str> = evs.iter().map(|(id, _)| id.as_str()).collect();
        let want: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(got, want, "every listed id once, in order");
        for (id, ev) in &evs {
            match ev {
                SourceEvent::Unreadable { reason, .. } if *id == ids[3] => {
                    assert!(
                        reason.contains("no part for it") && reason.contains("3 attempts"),
                        "{reason}"
                    )
                }
                SourceEvent::Unreadable { reason, .. } if *id == ids[5] => {
                    assert!(reason.contains("Backend Error"), "{reason}")
                }
                SourceEvent::Expunged { .. } if *id == ids[9] => {}
                SourceEvent::Message(_) if *id != ids[3] && *id != ids[5] && *id != ids[9] => {}
                other => panic!("{id}: {other:?}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_accounts_for_every_listed_id_and_keeps_same_named_folders_apart() {
    use legacyflo_core::{FolderPath, SourceEvent};
    let tok = tokens().await;
    let mut msgs = inbox_messages(23, 72);
    for m in msgs.iter_mut().skip(20) {
        m.folder = FolderPath::new(["Other"]);
    }
    for engine in [false, true] {
        let mut cfg = GraphConfig::new(GRAPH_USER);
        cfg.display_names = vec![("Other".into(), "INBOX".into())];
        let srv = graph_server(cfg, &msgs, &[]).await;
        let ids = srv.ids();
        {
            let mut f = srv.state.faults.lock().unwrap();
            f.gone.insert(ids[2].clone());
            f.fail.insert(ids[4].clone());
            f.not_found_once.insert(ids[6].clone());
        }
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        };
        let src = Arc::new(graph_source_with(
            &tok,
            &srv,
            policy,
            legacyflo_sources::cloud::DEFAULT_MAX_ANSWER_BYTES,
            |_| {},
        ));
        if engine {
            let (res, got) = run_all(src.clone()).await;
            assert!(res.error.is_none(), "{:?}", res.error);
            assert_eq!(res.report.status, legacyflo_core::RunStatus::DoneWithSkips);
            let t = res.report.totals();
            assert_eq!((t.messages, t.skipped, t.expunged), (21, 1, 1));
            assert_eq!(
                got.iter()
                    .filter(|m| m.folder == FolderPath::new(["INBOX (2)"]))
                    .count(),
                3
            );
            continue;
        }
        let list = src.list_folders().await.unwrap();
        let names: Vec<String> = list.iter().map(|f| f.path.to_string()).collect();
        assert_eq!(names, ["INBOX", "INBOX (2)"]);
        assert!(
            list[1].notes[0].contains("kept apart"),
            "{:?}",
            list[1].notes
        );
        let evs = events_by_id(src.as_ref(), &FolderPath::inbox()).await;
        assert_eq!(evs.len(), 20, "every listed id once");
        for (id, ev) in &evs {
            match ev {
                SourceEvent::Expunged { .. } if *id == ids[2] => {}
                SourceEvent::Unreadable { reason, .. } if *id == ids[4] => {
                    assert!(reason.contains("internal server error"), "{reason}")
                }
                SourceEvent::Message(_) if *id != ids[2] && *id != ids[4] => {}
                other => panic!("{id}: {other:?}"),
            }
        }
        assert_eq!(
            events_by_id(src.as_ref(), &FolderPath::new(["INBOX (2)"]))
                .await
                .len(),
            3
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_the_size_limit_is_not_read_and_its_message_is_reported() {
    use legacyflo_core::{FolderPath, SourceEvent};
    let tok = tokens().await;
    let mut msgs = inbox_messages(3, 74);
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 200_000));
    msgs[1].raw = big.into();
    let srv = graph_server(GraphConfig::new(GRAPH_USER), &msgs, &[]).await;
    let ids = srv.ids();
    let policy = RetryPolicy {
        base_delay: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    let src = graph_source_with(&tok, &srv, policy, 50_000, |_| {});
    let evs = events_by_id(&src, &FolderPath::inbox()).await;
    assert_eq!(evs.len(), 3);
    for (id, ev) in &evs {
        match ev {
            SourceEvent::Unreadable { reason, .. } if *id == ids[1] => {
                assert!(reason.contains("larger than 50000 bytes"), "{reason}")
            }
            SourceEvent::Message(m) => assert!(m.message.raw.len() < 50_000),
            other => panic!("{id}: {other:?}"),
        }
    }
}
