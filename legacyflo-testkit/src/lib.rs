//! # legacyflo-testkit
//!
//! What every backend's tests share:
//! - [`conformance`]: the suite every [`Source`](legacyflo_core::Source) and
//!   [`Sink`](legacyflo_core::Sink) runs (byte-exact round trips, odd messages, non-ASCII
//!   folders, flags and dates, idempotent re-delivery, abort, resume);
//! - [`memory`]: an in-memory source and sink, the reference implementations;
//! - [`corpus`]: test messages (edge cases, the sample mailbox, generated corpora);
//! - [`servers`]: the real Dovecot and S3 (SeaweedFS) servers the test command starts, and
//!   [`sigv4`], which signs the plain HTTP requests sent to the S3 server;
//! - [`fakeimap`]: a scripted IMAP server answering as Gmail or Microsoft 365 do;
//! - [`hostile_imap`]: an IMAP server that misbehaves as a compromised or buggy one would
//!   (huge literals, endless lines, trickling, silence, omissions, garbage, colliding names);
//! - [`faultproxy`]: a TCP proxy that cuts connections;
//! - [`readpst`]: readpst as an external judge of written PST files;
//! - [`s3refuse`] and [`s3mem`]: local S3 servers that refuse as AWS does, and that check
//!   part checksums, inject failures and discard part bytes (benchmarks).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cloud;
pub mod conformance;
pub mod corpus;
pub mod fakeimap;
pub mod faultproxy;
pub mod hostile_imap;
mod http1;
pub mod memory;
pub mod readpst;
pub mod s3mem;
pub mod s3refuse;
pub mod servers;
pub mod sigv4;
