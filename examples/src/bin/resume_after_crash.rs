//! Shows resumption: a run is stopped abruptly (its future dropped, as a crash would stop
//! it) after a few checkpoints, then the same request is run again with the same state
//! store. The second run continues from the last checkpoint: nothing is lost, nothing is
//! stored twice.
//!
//! `cargo run -p legacyflo-examples --bin resume_after_crash`
//!
//! It works in a temporary directory: a generated mbox tree of 10,000 small messages in,
//! a ZIP out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use legacyflo_core::{
    Engine, EngineOptions, Field, LocalStateStore, Params, ProgressEvent, ProgressListener, Request,
};
use legacyflo_corpus::{CorpusSpec, bench_corpus, write_mbox_tree};
use tokio::sync::Notify;

/// Counts commits and wakes `crash` after the third.
struct CrashAfterCommits {
    commits: AtomicU64,
    durable: AtomicU64,
    crash: Notify,
}

impl ProgressListener for CrashAfterCommits {
    fn event(&self, event: &ProgressEvent) {
        if let ProgressEvent::Committed { messages } = event {
            self.durable.store(*messages, Ordering::Relaxed);
            if self.commits.fetch_add(1, Ordering::Relaxed) + 1 == 3 {
                self.crash.notify_one();
            }
        }
    }
}

fn engine(request: &Request, state: &LocalStateStore) -> Result<Engine, legacyflo_core::Error> {
    let source = legacyflo_sources::open_source(request)?;
    let sink = legacyflo_sinks::open_sink(request)?;
    Ok(Engine::new(request.request_type.name, source, sink)
        .filter(request.filter.clone())
        .state(Arc::new(state.clone()))
        .options(EngineOptions {
            commit_every_messages: 1_000,
            ..EngineOptions::default()
        }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("mailbox");
    let spec = CorpusSpec {
        messages: 16_000,
        ..CorpusSpec::default()
    };
    let messages: Vec<_> = bench_corpus(&spec)
        .filter(|m| m.raw.len() <= 8 * 1024)
        .take(10_000)
        .collect();
    let total = messages.len();
    write_mbox_tree(&input, messages)?;
    println!("generated {total} messages in {}", input.display());

    let params = Params::new()
        .with(Field::Type, "MBOX-S3-ZIP")
        .with(Field::SourceUrl, input.display().to_string())
        .with(Field::DestUrl, format!("{}/out/", dir.path().display()));
    let request = Request::from_params(&params)?;
    let state = LocalStateStore::new(dir.path().join("state"), &request.state_key());

    // First run: dropped after its third checkpoint.
    let listener = Arc::new(CrashAfterCommits {
        commits: AtomicU64::new(0),
        durable: AtomicU64::new(0),
        crash: Notify::new(),
    });
    let first = engine(&request, &state)?.listener(listener.clone());
    tokio::select! {
        result = first.run() => {
            println!("the first run finished before the simulated crash:\n{}", result.report);
            return Ok(());
        }
        () = listener.crash.notified() => {
            println!(
                "simulated crash after {} checkpointed messages (state in {})",
                listener.durable.load(Ordering::Relaxed),
                state.path().display()
            );
        }
    }

    // Second run: same request, same state store.
    let result = engine(&request, &state)?.run().await;
    print!("{}", result.report);
    if let Some(e) = result.error {
        return Err(e.into());
    }
    let stored = result.report.totals().messages;
    println!(
        "resumed: {}; {stored} of {total} messages in the archive",
        result.report.resumed
    );
    if stored != total as u64 {
        return Err(format!("expected {total} messages, found {stored}").into());
    }
    Ok(())
}
