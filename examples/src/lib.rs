//! Examples of embedding legacyflo: each program in `src/bin/` does one task with the
//! libraries directly (no command line in between).
//!
//! - `mbox_to_zip`: convert an mbox file or tree into a ZIP of `.eml` plus its content list.
//! - `resume_after_crash`: stop a run abruptly after a few checkpoints, then run it again
//!   and watch it resume.
//! - `count_folders`: a dry run that lists folders and counts messages.
//!
//! Run one with `cargo run -p legacyflo-examples --bin mbox_to_zip -- samples/mailbox out/`.
