//! # legacyflo-s3
//!
//! The S3 plumbing shared by the S3 sinks, the S3 sources and the command:
//!
//! - [`client`]: a client from a request's [`S3Settings`](legacyflo_core::request::S3Settings)
//!   on top of the standard AWS credential chain;
//! - [`check_bucket`]: preflight that fails fast naming the bucket and the refused action;
//! - [`MultipartUpload`] and [`upload_file`]: checksummed (CRC32C) multipart uploads with
//!   several parts in flight, bounded memory, completion only when every part is
//!   acknowledged, and abort on failure or drop; [`abort_stale`] cleans up after a killed
//!   process; a [`retain`](MultipartUpload::retain)ed upload stays open across commits and
//!   is taken up again after a crash with [`MultipartUpload::resume`] (checked against the
//!   checkpoint's [`PartRecord`]s with `ListParts`);
//! - [`download_to_file`], [`get_bytes`], [`head`]: reading objects;
//! - [`S3StateStore`]: checkpoints in S3.
//!
//! Errors are [`S3Error`]; each names the bucket and the S3 action, and converts into the
//! shared [`legacyflo_core::Error`] with a kind (`NotFound`, `Unauthenticated`,
//! `PermissionDenied`, `Temporary`, …).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod download;
mod error;
mod objects;
mod parts;
mod pool;
mod preflight;
mod state;
mod upload;

pub use aws_sdk_s3::Client;
pub use client::{FALLBACK_REGION, client};
pub use download::{download_to_file, get_bytes, head};
pub use error::{HttpStatus, S3Error, S3Result};
pub use objects::{delete_object, delete_prefix, list_keys};
pub use parts::{ListedPart, PartRecord, list_parts, upload_exists, verify_parts};
pub use pool::BufferPool;
pub use preflight::{Access, check_bucket};
pub use state::S3StateStore;
pub use upload::{
    MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, MultipartUpload, UploadOptions, Uploaded, abort_stale,
    abort_stale_except, composite_crc32c, crc32c_b64, put_bytes, upload_file,
};
