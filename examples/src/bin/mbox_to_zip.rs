//! Converts an mbox file or tree into a ZIP of `.eml` files with a content-list CSV.
//!
//! `cargo run -p legacyflo-examples --bin mbox_to_zip -- samples/mailbox out/`
//!
//! Re-running the same command resumes from the checkpoint in `.legacyflo/state` (a finished
//! run is reported again without work).

use std::sync::Arc;

use legacyflo_core::{Engine, Field, LocalStateStore, Params, Request};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        eprintln!("usage: mbox_to_zip MBOX_FILE_OR_DIR OUT_DIR/");
        std::process::exit(2);
    };
    // A request is a type plus fields, exactly as on the command line or in a CSV row.
    let params = Params::new()
        .with(Field::Type, "MBOX-S3-ZIP")
        .with(Field::SourceUrl, input)
        .with(Field::DestUrl, format!("{}/", output.trim_end_matches('/')));
    let request = Request::from_params(&params)?;

    let source = legacyflo_sources::open_source(&request)?;
    let sink = legacyflo_sinks::open_sink(&request)?;
    let state = LocalStateStore::new(".legacyflo/state", &request.state_key());
    let result = Engine::new(request.request_type.name, source, sink)
        .filter(request.filter.clone())
        .state(Arc::new(state))
        .run()
        .await;

    print!("{}", result.report);
    match result.error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
