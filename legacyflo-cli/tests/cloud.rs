//! The cloud request types end to end through the command, against the local token and
//! API servers of `legacyflo-testkit::cloud`.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use legacyflo_testkit::cloud::gmail::{GmailConfig, gmail_server};
use legacyflo_testkit::cloud::graph::{GraphConfig, graph_server};
use legacyflo_testkit::cloud::token::{
    TokenConfig, google_key_file, google_wrong_key_file, microsoft_app_file, token_server,
};

fn run(dir: &std::path::Path, args: Vec<String>) -> std::process::Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run_in(dir, &a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_api_and_graph_requests_run_and_bad_keys_exit_1_without_secrets() {
    let tok = token_server(TokenConfig {
        delegated: vec!["alice@example.test".into()],
        ..TokenConfig::default()
    })
    .await;
    let msgs = legacyflo_testkit::corpus::generated(60, 5);
    let gsrv = gmail_server(GmailConfig::new("alice@example.test"), &msgs, &[]).await;
    let msrv = graph_server(GraphConfig::new("bob@contoso.test"), &msgs, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();

    let gmail = |key: std::path::PathBuf| {
        vec![
            "run".to_string(),
            "GMAILAPI-S3-ZIP".into(),
            "--source-user".into(),
            "alice".into(),
            "--source-domain".into(),
            "example.test".into(),
            "--source-credentials".into(),
            key.display().to_string(),
            "--source-api-url".into(),
            gsrv.url(),
            "--source-token-url".into(),
            tok.google_url(),
            "--dest-url".into(),
            "out/".into(),
        ]
    };
    let p = path.clone();
    let args = gmail(google_key_file());
    let o = tokio::task::spawn_blocking(move || run(&p, args))
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        path.join("out/alice@example.test.zip").is_file(),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("60 messages"), "{}", text(&o));

    let p = path.clone();
    let args = gmail(google_wrong_key_file());
    let o = tokio::task::spawn_blocking(move || run(&p, args))
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("invalid_grant") && t.contains("Invalid JWT Signature"),
        "{t}"
    );
    assert!(!t.contains("PRIVATE KEY") && !t.contains("MII"), "{t}");
    assert_no_panic(&o);

    let graph = vec![
        "run".to_string(),
        "M365API-S3-ZIP".into(),
        "--source-user".into(),
        "bob@contoso.test".into(),
        "--source-credentials".into(),
        microsoft_app_file().display().to_string(),
        "--source-api-url".into(),
        msrv.url(),
        "--source-token-url".into(),
        tok.microsoft_authority(),
        "--dest-url".into(),
        "graph/".into(),
    ];
    let p = path.clone();
    let o = tokio::task::spawn_blocking(move || run(&p, graph))
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("60 messages"), "{}", text(&o));
    assert!(!text(&o).contains("test-client-secret-value"));
}

/// EXCHANGE-VAULTASTIC4: the local EWS server (Basic auth) into the test Dovecot vault;
/// a wrong password exits 1, named, with no secret in the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_ews_to_vault_and_a_wrong_password_exits_1() {
    use legacyflo_testkit::cloud::ews::{EwsConfig, ews_server};
    use legacyflo_testkit::servers::{imap_server, reset_user};
    let imap = imap_server();
    reset_user(&imap, "vault");
    let msgs = legacyflo_testkit::corpus::generated(25, 6);
    let srv = ews_server(EwsConfig::new("carol@exchange.test", "Ews-Pa55word"), &msgs).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    std::fs::write(path.join("ews.pw"), "Ews-Pa55word\n").unwrap();
    std::fs::write(path.join("bad.pw"), "Not-The-Pa55word\n").unwrap();
    std::fs::write(path.join("vault.pw"), "vaultpw\n").unwrap();
    let args = |pw: &str| {
        vec![
            "run".to_string(),
            "EXCHANGE-VAULTASTIC4".into(),
            "--source-user".into(),
            "carol".into(),
            "--source-domain".into(),
            "exchange.test".into(),
            "--source-api-url".into(),
            srv.url(),
            "--source-password-file".into(),
            pw.into(),
            "--dest-server".into(),
            imap.host.clone(),
            "--dest-port".into(),
            imap.port.to_string(),
            "--dest-tls".into(),
            "none".into(),
            "--dest-user".into(),
            "vault".into(),
            "--dest-password-file".into(),
            "vault.pw".into(),
        ]
    };
    let p = path.clone();
    let a = args("ews.pw");
    let o = tokio::task::spawn_blocking(move || run(&p, a))
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("25 messages"), "{}", text(&o));

    let p = path.clone();
    // Its own state: the finished request above would otherwise be a no-op re-run.
    let mut a = args("bad.pw");
    a.extend(["--state-dir".to_string(), "state-bad".into()]);
    let o = tokio::task::spawn_blocking(move || run(&p, a))
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("refused the credentials"), "{t}");
    assert!(
        !t.contains("Not-The-Pa55word") && !t.contains("Ews-Pa55word"),
        "{t}"
    );
    assert_no_panic(&o);
}
