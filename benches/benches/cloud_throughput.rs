//! The Gmail API, Graph and EWS sources against quota-enforcing local servers
//! (`legacyflo-testkit::cloud`), through the engine into a memory sink.
//!
//! The providers' limits are scaled down to short windows with the same meaning: Gmail
//! `LEGACYFLO_BENCH_GMAIL_UNITS` quota units per `LEGACYFLO_BENCH_WINDOW_MS` (default
//! 1,250 per 5,000 ms, i.e. Gmail's 15,000 per minute per user), Graph
//! `LEGACYFLO_BENCH_GRAPH_REQUESTS` per window (default 84 per 5,000 ms, i.e. 10,000 per
//! 10 minutes per mailbox). Both sides use the same limit; the bench prints the rate the
//! source sustained over the run as a share of the limit rate, the share of what the
//! sliding window admitted in that time (a full window at the start plus the rate: the
//! stricter figure), msg/s, MB/s, and the throttling answers the servers gave and that
//! the run surfaced (both should be 0). Message counts: `LEGACYFLO_BENCH_GMAIL_MSGS`
//! (3,000), `LEGACYFLO_BENCH_GRAPH_MSGS` (1,000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code

use std::sync::Arc;
use std::time::{Duration, Instant};

use legacyflo_core::request::{AuthMethod, CloudAuth, parse_credentials};
use legacyflo_core::{Engine, Message};
use legacyflo_sources::cloud::{ApiClient, RetryPolicy};
use legacyflo_sources::ews::{EwsAuth, EwsOptions, EwsSource};
use legacyflo_sources::gmail::{GmailOptions, GmailSource};
use legacyflo_sources::graph::{GraphOptions, GraphSource};
use legacyflo_sources::oauth;
use legacyflo_testkit::cloud::Counters;
use legacyflo_testkit::cloud::ews::{EwsConfig, ews_server};
use legacyflo_testkit::cloud::gmail::{GmailConfig, gmail_server};
use legacyflo_testkit::cloud::graph::{GraphConfig, graph_server};
use legacyflo_testkit::cloud::token::{
    TokenConfig, google_key_file, microsoft_app_file, token_server,
};
use legacyflo_testkit::memory::MemorySink;

fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn auth(method: AuthMethod, file: std::path::PathBuf, api: String, token: String) -> CloudAuth {
    let text = std::fs::read_to_string(&file).unwrap();
    CloudAuth {
        credentials: parse_credentials(method, &text).unwrap(),
        file,
        api_url: Some(api),
        token_url: Some(token),
    }
}

struct Outcome {
    msgs: usize,
    bytes: u64,
    secs: f64,
    surfaced: usize,
}

async fn run(source: Arc<dyn legacyflo_core::Source>) -> Outcome {
    let sink = MemorySink::new();
    let t = Instant::now();
    let res = Engine::new("BENCH", source, Box::new(sink.clone()))
        .run()
        .await;
    let secs = t.elapsed().as_secs_f64();
    let got = sink.committed();
    let surfaced = usize::from(res.error.is_some()) + res.report.retries as usize;
    if let Some(e) = res.error {
        eprintln!("run failed: {e}");
    }
    Outcome {
        msgs: got.len(),
        bytes: got.iter().map(Message::size).sum(),
        secs,
        surfaced,
    }
}

/// The share of the limit used: in `secs` a sliding window of `limit` per `window` admits
/// at most `limit * (secs / window + 1)` (a full window at the start, then the rate).
fn allowed_share(spent: u64, limit: u64, window: Duration, secs: f64) -> f64 {
    spent as f64 / (limit as f64 * (secs / window.as_secs_f64() + 1.0))
}

fn corpus(n: usize) -> Vec<Message> {
    let mut m = legacyflo_testkit::corpus::generated(n, 77);
    for (i, x) in m.iter_mut().enumerate() {
        // A few folders, as a mailbox has.
        x.folder = legacyflo_core::FolderPath::new([["INBOX", "Work", "Sent", "Travel"][i % 4]]);
    }
    m
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let window = Duration::from_millis(env_u64("LEGACYFLO_BENCH_WINDOW_MS", 5000));
        let tok = token_server(TokenConfig {
            delegated: vec!["bench@example.test".into()],
            ..TokenConfig::default()
        })
        .await;

        // Gmail: 5 units a message (batch parts) plus list pages.
        let units = env_u64("LEGACYFLO_BENCH_GMAIL_UNITS", 1250);
        let n = env_u64("LEGACYFLO_BENCH_GMAIL_MSGS", 3000) as usize;
        let msgs = corpus(n);
        let mut cfg = GmailConfig::new("bench@example.test");
        cfg.quota_units = units;
        cfg.quota_window = window;
        let srv = gmail_server(cfg, &msgs, &[]).await;
        let a = auth(AuthMethod::GoogleServiceAccountApi, google_key_file(), srv.url(), tok.google_url());
        let http = oauth::http_client().unwrap();
        let cache = oauth::token_cache(&a, "bench@example.test", oauth::SCOPE_GMAIL_READONLY, http.clone()).unwrap();
        let mut o = GmailOptions::new("bench@example.test", a.api_url.as_deref());
        o.quota_units = units;
        o.quota_window = window;
        let src = Arc::new(GmailSource::new(ApiClient::new("gmail", http, cache, RetryPolicy::default()), o));
        let out = run(src).await;
        let served = Counters::get(&srv.counters().requests);
        let limit_rate = units as f64 / window.as_secs_f64();
        // Units spent: every served call, 5 each except labels.list and getProfile (1).
        let spent = (served.saturating_sub(2)) * 5 + 2;
        let rate = spent as f64 / out.secs;
        println!(
            "gmail-api: {} msgs in {:.1}s = {:.1} msg/s, {:.2} MB/s; {spent} units at {:.1} units/s = {:.1}% of the limit rate {:.1}/s; {:.1}% of what the sliding window allowed in that time; server throttled {}, run surfaced {}",
            out.msgs,
            out.secs,
            out.msgs as f64 / out.secs,
            out.bytes as f64 / 1e6 / out.secs,
            rate,
            100.0 * rate / limit_rate,
            limit_rate,
            100.0 * allowed_share(spent, units, window, out.secs),
            Counters::get(&srv.counters().throttled),
            out.surfaced,
        );

        // Graph: one request a message ($value) plus list pages.
        let reqs = env_u64("LEGACYFLO_BENCH_GRAPH_REQUESTS", 84);
        let n = env_u64("LEGACYFLO_BENCH_GRAPH_MSGS", 1000) as usize;
        let msgs = corpus(n);
        let mut cfg = GraphConfig::new("bench@contoso.test");
        cfg.requests_per_window = reqs;
        cfg.window = window;
        let srv = graph_server(cfg, &msgs, &[]).await;
        let a = auth(AuthMethod::MicrosoftAppGraph, microsoft_app_file(), srv.url(), tok.microsoft_authority());
        let http = oauth::http_client().unwrap();
        let cache = oauth::token_cache(&a, "bench@contoso.test", oauth::SCOPE_GRAPH, http.clone()).unwrap();
        let mut o = GraphOptions::new("bench@contoso.test", a.api_url.as_deref());
        o.requests_per_window = reqs;
        o.window = window;
        let src = Arc::new(GraphSource::new(ApiClient::new("graph", http, cache, RetryPolicy::default()), o));
        let out = run(src).await;
        let served = Counters::get(&srv.counters().requests);
        let limit_rate = reqs as f64 / window.as_secs_f64();
        let rate = served as f64 / out.secs;
        println!(
            "graph: {} msgs in {:.1}s = {:.1} msg/s, {:.2} MB/s; {served} requests at {:.2} req/s = {:.1}% of the limit rate {:.2}/s; {:.1}% of what the sliding window allowed in that time; max in flight {}; server throttled {}, run surfaced {}",
            out.msgs,
            out.secs,
            out.msgs as f64 / out.secs,
            out.bytes as f64 / 1e6 / out.secs,
            rate,
            100.0 * rate / limit_rate,
            limit_rate,
            100.0 * allowed_share(served, reqs, window, out.secs),
            Counters::get(&srv.counters().max_in_flight),
            Counters::get(&srv.counters().throttled),
            out.surfaced,
        );

        // EWS (no published per-mailbox rate): FindItem pages of 100, GetItem batches of
        // 20, 2 in flight; every `LEGACYFLO_BENCH_EWS_BUSY_EVERY`-th request (default 50)
        // answered ErrorServerBusy with a 100 ms back-off.
        let n = env_u64("LEGACYFLO_BENCH_EWS_MSGS", 2000) as usize;
        let msgs = corpus(n);
        let mut cfg = EwsConfig::new("bench@exchange.test", "bench-pw");
        cfg.busy_every = env_u64("LEGACYFLO_BENCH_EWS_BUSY_EVERY", 50);
        cfg.back_off_ms = 100;
        cfg.inject_max = u64::MAX;
        let srv = ews_server(cfg, &msgs).await;
        let http = oauth::http_client().unwrap();
        let src = Arc::new(EwsSource::new(
            ApiClient::without_tokens("ews", http, RetryPolicy::default()),
            EwsAuth::Basic {
                user: "bench@exchange.test".into(),
                password: legacyflo_core::request::Secret::new("bench-pw"),
            },
            EwsOptions::new(srv.url(), "bench@exchange.test", false),
        ));
        let out = run(src).await;
        println!(
            "ews: {} msgs in {:.1}s = {:.1} msg/s, {:.2} MB/s; {} requests; ErrorServerBusy answered {}, early requests {}, run surfaced {}",
            out.msgs,
            out.secs,
            out.msgs as f64 / out.secs,
            out.bytes as f64 / 1e6 / out.secs,
            Counters::get(&srv.counters().requests),
            Counters::get(&srv.counters().throttled),
            srv.state.early.load(std::sync::atomic::Ordering::SeqCst),
            out.surfaced,
        );
    });
}
