//! Lists the folders of a mailbox and counts their messages without writing anything (a
//! dry run), for any implemented file request type.
//!
//! `cargo run -p legacyflo-examples --bin count_folders -- MAILDIR-S3-ZIP ~/Maildir`

use legacyflo_core::{Engine, EngineOptions, Field, Params, Request};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(request_type), Some(input)) = (args.next(), args.next()) else {
        eprintln!("usage: count_folders TYPE MAILBOX_PATH   (e.g. MBOX-S3-ZIP samples/mailbox)");
        std::process::exit(2);
    };
    let params = Params::new()
        .with(Field::Type, request_type)
        .with(Field::SourceUrl, input)
        // A destination is part of every request; a dry run never opens it.
        .with(Field::DestUrl, "dry-run-output/");
    let request = Request::from_params(&params)?;
    let source = legacyflo_sources::open_source(&request)?;
    let sink = legacyflo_sinks::open_sink(&request)?;
    let result = Engine::new(request.request_type.name, source, sink)
        .filter(request.filter.clone())
        .options(EngineOptions {
            dry_run: true,
            ..EngineOptions::default()
        })
        .run()
        .await;
    if let Some(e) = result.error {
        return Err(e.into());
    }
    for folder in &result.report.folders {
        println!("{:>8}  {}", folder.messages, folder.folder);
    }
    println!("{:>8}  messages in total", result.report.totals().messages);
    Ok(())
}
