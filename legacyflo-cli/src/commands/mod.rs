//! The subcommands.

pub mod batch;
pub mod run;
pub mod types;
