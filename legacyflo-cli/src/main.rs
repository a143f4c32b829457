//! `legacyflo`: the command of the legacyflo toolkit.
//!
//! `legacyflo types` lists the request types, `legacyflo run TYPE …` runs one request and
//! `legacyflo batch requests.csv` runs the rows of a CSV. See `--help` and the README.

mod cli;
mod commands;
mod exit;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::{CliError, Exit};
use crate::progress::Ui;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ui = Ui::init(cli.quiet, cli.verbose);
    let result = match cli.command {
        Command::Types(args) => commands::types::types(&args, &ui),
        Command::Run(args) => block_on(commands::run::run(args, &ui)),
        Command::Batch(args) => block_on(commands::batch::batch(args, &ui)),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            for line in &e.lines {
                ui.err_line(&format!("error: {line}"));
            }
            e.exit.into()
        }
    }
}

fn block_on<F: Future<Output = Result<Exit, CliError>>>(f: F) -> Result<Exit, CliError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))?;
    let result = rt.block_on(f);
    // Requests still running after an interrupt are not waited for.
    rt.shutdown_background();
    result
}
