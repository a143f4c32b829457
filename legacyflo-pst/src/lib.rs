//! # legacyflo-pst
//!
//! A synchronous Unicode PST writer ([`PstWriter`]) that strict readers accept, and a PST
//! reader ([`PstReader`]) for Unicode and ANSI files. Layers follow [MS-PST]: [`ndb`]
//! (header, pages, B-trees, blocks), [`ltp`] (heap, BTH, PC, TC), [`messaging`] (store,
//! folders, messages), plus [`mime`] (RFC 5322 ⇄ properties).
//!
//! Writing is one pass: blocks stream to the file as messages arrive; the B-trees,
//! folder tables and header are written by [`PstWriter::finish`].
// `unsafe` is denied everywhere but in `ndb::simd` (AVX2 intrinsics, behind runtime
// feature detection, with the scalar path as fallback).
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod error;
pub mod ltp;
pub mod messaging;
pub mod mime;
pub mod ndb;
pub mod reader;
pub mod writer;

pub use error::{Error, Result};
pub use messaging::message::MessageMeta;
pub use ndb::Encoding;
pub use reader::{PstFolder, PstMessage, PstReader, ReadOptions};
pub use writer::{AddOutcome, FolderId, PstWriter, VolumeSummary, WriterOptions, volume_path};
