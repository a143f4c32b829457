//! The EWS source against the local EWS server in `legacyflo-testkit::cloud::ews`: the
//! conformance suite, skipped folders, paging, ErrorServerBusy back-off, impersonation,
//! Basic and bearer auth, a token expiring mid-run and bad credentials.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use legacyflo_core::request::{AuthMethod, CloudAuth, Secret, parse_credentials};
use legacyflo_core::{Engine, ErrorKind, Field, FolderPath, Message, Params, Request, Source};
use legacyflo_sources::cloud::{ApiClient, RetryPolicy};
use legacyflo_sources::ews::{EwsAuth, EwsOptions, EwsSource};
use legacyflo_sources::oauth;
use legacyflo_testkit::cloud::Counters;
use legacyflo_testkit::cloud::ews::{EwsConfig, EwsServer, ews_server};
use legacyflo_testkit::cloud::token::{TokenConfig, TokenServer, microsoft_app_file, token_server};
use legacyflo_testkit::conformance::{self, SourceCaps, SourceHarness};
use legacyflo_testkit::memory::MemorySink;
use tokio::sync::Mutex;

const MAILBOX: &str = "carol@exchange.test";
const PASSWORD: &str = "Secr3t-EWS-password!";

fn policy() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}

fn basic_source(srv: &EwsServer, password: &str, tune: impl FnOnce(&mut EwsOptions)) -> EwsSource {
    let http = oauth::http_client().unwrap();
    let mut o = EwsOptions::new(srv.url(), MAILBOX, false);
    tune(&mut o);
    EwsSource::new(
        ApiClient::without_tokens("ews", http, policy()),
        EwsAuth::Basic {
            user: MAILBOX.to_string(),
            password: Secret::new(password),
        },
        o,
    )
}

fn bearer_source(
    tok: &TokenServer,
    srv: &EwsServer,
    tune: impl FnOnce(&mut EwsOptions),
) -> EwsSource {
    let file = microsoft_app_file();
    let text = std::fs::read_to_string(&file).unwrap();
    let a = CloudAuth {
        credentials: parse_credentials(AuthMethod::MicrosoftAppGraph, &text).unwrap(),
        file,
        api_url: Some(srv.url()),
        token_url: Some(tok.microsoft_authority()),
    };
    let http = oauth::http_client().unwrap();
    let cache = oauth::token_cache(&a, MAILBOX, oauth::SCOPE_EWS, http.clone()).unwrap();
    let mut o = EwsOptions::new(srv.url(), MAILBOX, true);
    tune(&mut o);
    EwsSource::new(
        ApiClient::new("ews", http, cache, policy()),
        EwsAuth::Bearer,
        o,
    )
}

struct EwsHarness {
    servers: Mutex<Vec<EwsServer>>,
}

#[async_trait]
impl SourceHarness for EwsHarness {
    async fn source_with(&self, messages: &[Message]) -> Arc<dyn Source> {
        let mut cfg = EwsConfig::new(MAILBOX, PASSWORD);
        cfg.max_page = 25; // the 300-message cases list over >= 3 pages
        cfg.busy_every = 41;
        // long enough that, on a loaded machine, requests already in flight when a back-off
        // starts land in its first half (the server's grace), not counted as early
        cfg.back_off_ms = 400;
        cfg.inject_max = 3;
        let srv = ews_server(cfg, messages).await;
        let src = basic_source(&srv, PASSWORD, |o| o.batch = 7);
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
async fn ews_conformance() {
    let h = EwsHarness {
        servers: Mutex::new(Vec::new()),
    };
    conformance::run_source_suite(&h).await;
    let servers = h.servers.lock().await;
    let busy: u64 = servers
        .iter()
        .map(|s| Counters::get(&s.counters().throttled))
        .sum();
    assert!(busy > 0, "the suite met no ErrorServerBusy");
    let early: u64 = servers
        .iter()
        .map(|s| s.state.early.load(Ordering::SeqCst))
        .sum();
    assert_eq!(
        early, 0,
        "requests sent before BackOffMilliseconds had passed"
    );
}

async fn run_all(source: Arc<dyn Source>) -> (legacyflo_core::RunResult, Vec<Message>) {
    let sink = MemorySink::new();
    let res = Engine::new("TEST", source, Box::new(sink.clone()))
        .run()
        .await;
    (res, sink.committed())
}

async fn tokens() -> TokenServer {
    token_server(TokenConfig::default()).await
}

/// Bearer auth with impersonation: skipped folders, deep folders, pages of 10, batches,
/// ErrorServerBusy honoured and a 1 s token replaced mid-run; nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_bearer_skips_folders_survives_busy_and_refreshes_tokens() {
    let tok = tokens().await;
    tok.state.lifetime_secs.store(1, Ordering::SeqCst);
    let mut msgs = legacyflo_testkit::corpus::generated(130, 71);
    for m in msgs.iter_mut().take(10) {
        m.folder = FolderPath::new(["Deleted Items"]);
    }
    for m in msgs.iter_mut().skip(10).take(15) {
        m.folder = FolderPath::new(["Inbox", "Sub", "Deeper"]);
    }
    let mut cfg = EwsConfig::new(MAILBOX, PASSWORD);
    cfg.basic = None;
    cfg.max_page = 10;
    cfg.busy_every = 9;
    cfg.back_off_ms = 400;
    cfg.inject_max = 4;
    let srv = ews_server(cfg, &msgs).await;
    let src = Arc::new(bearer_source(&tok, &srv, |o| {
        o.page_size = 10;
        o.batch = 5;
    }));
    let folders: Vec<String> = src
        .list_folders()
        .await
        .unwrap()
        .iter()
        .map(|f| f.path.join("/"))
        .collect();
    for skipped in [
        "Calendar",
        "Contacts",
        "Tasks",
        "Deleted Items",
        "Deleted Items/Old",
    ] {
        assert!(
            !folders.contains(&skipped.to_string()),
            "{skipped} listed: {folders:?}"
        );
    }
    assert!(
        folders.contains(&"Inbox/Sub/Deeper".to_string()),
        "{folders:?}"
    );
    // The token the listing used has expired before the messages are read, whatever the
    // machine's speed: the same source must get a new one and lose nothing.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (res, got) = run_all(src.clone()).await;
    assert!(res.error.is_none(), "{:?}", res.error);
    let want: Vec<&Message> = msgs
        .iter()
        .filter(|m| m.folder.join("/") != "Deleted Items")
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "each message once, Deleted Items left out"
    );
    for w in &want {
        let g = got.iter().find(|g| g.raw == w.raw).expect("message lost");
        assert_eq!(g.folder, w.folder);
    }
    assert!(
        Counters::get(&srv.counters().throttled) >= 4,
        "ErrorServerBusy never sent"
    );
    assert_eq!(
        srv.state.early.load(Ordering::SeqCst),
        0,
        "back-off not honoured"
    );
    assert!(
        tok.issued() >= 2,
        "the 1 s token was never replaced ({})",
        tok.issued()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_date_window_is_a_restriction() {
    let msgs = legacyflo_testkit::corpus::generated(60, 72);
    let srv = ews_server(EwsConfig::new(MAILBOX, PASSWORD), &msgs).await;
    let src = basic_source(&srv, PASSWORD, |o| o.page_size = 7);
    let mut dates: Vec<_> = msgs
        .iter()
        .map(legacyflo_testkit::cloud::received_of)
        .collect();
    dates.sort();
    let (since, before) = (dates[15], dates[45]);
    let filter = legacyflo_core::Filter {
        since: Some(since.date_naive()),
        before: Some(before.date_naive()),
        ..legacyflo_core::Filter::default()
    };
    let mut got = 0usize;
    for f in src.list_folders().await.unwrap() {
        use futures::StreamExt;
        let mut s = src.stream(&f.path, &filter, None).await.unwrap();
        while let Some(ev) = s.next().await {
            if let legacyflo_core::SourceEvent::Message(item) = ev.unwrap() {
                let t = item.message.internal_date.unwrap();
                assert!(
                    t >= filter.since_instant().unwrap() && t < filter.before_instant().unwrap()
                );
                got += 1;
            }
        }
    }
    let expect = dates
        .iter()
        .filter(|d| {
            **d >= filter.since_instant().unwrap() && **d < filter.before_instant().unwrap()
        })
        .count();
    assert_eq!(got, expect);
    assert!(
        got > 0 && got < msgs.len(),
        "the window selects nothing or everything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_app_tokens_need_impersonation_of_the_mailbox() {
    let tok = tokens().await;
    let mut cfg = EwsConfig::new(MAILBOX, PASSWORD);
    cfg.basic = None;
    let srv = ews_server(cfg, &legacyflo_testkit::corpus::generated(5, 73)).await;
    let without = bearer_source(&tok, &srv, |o| o.impersonate = false);
    let e = without.list_folders().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(
        e.to_string()
            .contains("ErrorInvalidExchangeImpersonationHeaderData"),
        "{e}"
    );
    let other = bearer_source(&tok, &srv, |o| o.mailbox = "nobody@exchange.test".into());
    let e = other.list_folders().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("ErrorNonExistentMailbox"), "{e}");
    let with = bearer_source(&tok, &srv, |_| {});
    assert!(!with.list_folders().await.unwrap().is_empty());
    // Basic is not accepted by this server: 401 with the reason named.
    let basic = basic_source(&srv, PASSWORD, |_| {});
    assert_eq!(
        basic.list_folders().await.unwrap_err().kind(),
        ErrorKind::Unauthenticated
    );
}

fn request(params: Params) -> Result<Request, String> {
    Request::from_params(
        &params
            .with(Field::Type, "EXCHANGE-VAULTASTIC4")
            .with(Field::SourceUser, MAILBOX)
            .with(Field::DestServer, "vault.example.test")
            .with(Field::DestUser, "carol")
            .with(Field::DestPasswordEnv, "PATH"),
    )
    .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_requests_basic_auth_and_bad_credentials() {
    let msgs = legacyflo_testkit::corpus::generated(12, 74);
    let srv = ews_server(EwsConfig::new(MAILBOX, PASSWORD), &msgs).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.txt");
    std::fs::write(&good, format!("{PASSWORD}\n")).unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "Wrong-Passw0rd-xyz\n").unwrap();

    // No server and no URL: the field is named.
    let e = request(Params::new().with(Field::SourcePasswordFile, good.display().to_string()))
        .unwrap_err();
    assert!(e.contains("Source Server"), "{e}");
    // No password and no credentials file.
    let e = request(Params::new().with(Field::SourceApiUrl, srv.url())).unwrap_err();
    assert!(e.contains("password"), "{e}");
    // The server name gives the standard endpoint.
    let r = request(
        Params::new()
            .with(Field::SourceServer, "mail.exchange.test")
            .with(Field::SourcePasswordFile, good.display().to_string()),
    )
    .unwrap();
    let legacyflo_core::request::SourceSpec::Api { ews_url, .. } = &r.source else {
        panic!("not an API source")
    };
    assert_eq!(
        ews_url.as_deref(),
        Some("https://mail.exchange.test/EWS/Exchange.asmx")
    );

    // Basic with the right password: every message.
    let r = request(
        Params::new()
            .with(Field::SourceApiUrl, srv.url())
            .with(Field::SourcePasswordFile, good.display().to_string()),
    )
    .unwrap();
    let src = legacyflo_sources::open_source(&r).unwrap();
    assert_eq!(src.kind(), "ews");
    let (res, got) = run_all(src).await;
    assert!(res.error.is_none(), "{:?}", res.error);
    assert_eq!(got.len(), msgs.len());

    // A wrong password: 401, named, never printed.
    let r = request(
        Params::new()
            .with(Field::SourceApiUrl, srv.url())
            .with(Field::SourcePasswordFile, bad.display().to_string()),
    )
    .unwrap();
    let src = legacyflo_sources::open_source(&r).unwrap();
    let e = src.list_folders().await.unwrap_err();
    let s = format!("{e} {e:?}");
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{s}");
    assert!(s.contains("refused the credentials"), "{s}");
    assert!(
        !s.contains("Wrong-Passw0rd") && !s.contains(PASSWORD),
        "secret in {s}"
    );
    assert!(Counters::get(&srv.counters().unauthorized) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_accounts_for_every_listed_item_and_keeps_same_named_folders_apart() {
    use legacyflo_core::SourceEvent;
    use legacyflo_testkit::conformance::events_by_id;
    let mut msgs = legacyflo_testkit::corpus::generated(23, 73);
    for (i, m) in msgs.iter_mut().enumerate() {
        m.folder = FolderPath::new([if i < 20 { "Inbox" } else { "Other" }]);
    }
    for engine in [false, true] {
        let mut cfg = EwsConfig::new(MAILBOX, PASSWORD);
        cfg.display_names = vec![("Other".into(), "Inbox".into())];
        let srv = ews_server(cfg, &msgs).await;
        let ids = srv.ids();
        {
            let mut f = srv.state.faults.lock().unwrap();
            f.gone.insert(ids[2].clone());
            f.omit.insert(ids[4].clone());
            f.fail.insert(ids[6].clone());
            f.not_found_once.insert(ids[8].clone());
        }
        let src = Arc::new(basic_source(&srv, PASSWORD, |o| o.batch = 5));
        if engine {
            let (res, got) = run_all(src.clone()).await;
            assert!(res.error.is_none(), "{:?}", res.error);
            assert_eq!(res.report.status, legacyflo_core::RunStatus::DoneWithSkips);
            let t = res.report.totals();
            assert_eq!((t.messages, t.skipped, t.expunged), (20, 2, 1));
            assert_eq!(
                got.iter()
                    .filter(|m| m.folder == FolderPath::new(["Inbox (2)"]))
                    .count(),
                3
            );
            continue;
        }
        let list = src.list_folders().await.unwrap();
        let names: Vec<String> = list.iter().map(|f| f.path.to_string()).collect();
        assert_eq!(names, ["Inbox", "Inbox (2)"]);
        assert!(
            list[1].notes[0].contains("kept apart"),
            "{:?}",
            list[1].notes
        );
        let evs = events_by_id(src.as_ref(), &FolderPath::new(["Inbox"])).await;
        let mut got: Vec<&str> = evs.iter().map(|(id, _)| id.as_str()).collect();
        got.sort();
        let mut want: Vec<&str> = ids[..20].iter().map(String::as_str).collect();
        want.sort();
        assert_eq!(got, want, "every listed item once");
        for (id, ev) in &evs {
            match ev {
                SourceEvent::Expunged { .. } if *id == ids[2] => {}
                SourceEvent::Unreadable { reason, .. } if *id == ids[4] => {
                    assert!(
                        reason.contains("not delivered") && reason.contains("0 answers"),
                        "{reason}"
                    )
                }
                SourceEvent::Unreadable { reason, .. } if *id == ids[6] => {
                    assert!(
                        reason.contains("ErrorMimeContentConversionFailed"),
                        "{reason}"
                    )
                }
                SourceEvent::Message(_) if ![&ids[2], &ids[4], &ids[6]].contains(&id) => {}
                other => panic!("{id}: {other:?}"),
            }
        }
    }
}
