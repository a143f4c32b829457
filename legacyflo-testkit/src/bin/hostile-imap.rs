//! `hostile-imap SCENARIO [PORT]`: serves one of the testkit's hostile IMAP scenarios
//! ([`legacyflo_testkit::hostile_imap::scenario`]) on 127.0.0.1 until killed, printing
//! `port N` once it listens. `hostile-imap --list` prints the scenario names.

use legacyflo_testkit::hostile_imap::{HostileImapServer, SCENARIOS, scenario};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        eprintln!("usage: hostile-imap SCENARIO [PORT] | --list");
        std::process::exit(2);
    };
    if name == "--list" {
        for s in SCENARIOS {
            println!("{s}");
        }
        return;
    }
    let Some(config) = scenario(name) else {
        eprintln!(
            "unknown scenario `{name}`; one of: {}",
            SCENARIOS.join(", ")
        );
        std::process::exit(2);
    };
    let port = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    let server = match HostileImapServer::start_on(config, port).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    println!("port {}", server.port());
    std::future::pending::<()>().await;
}
