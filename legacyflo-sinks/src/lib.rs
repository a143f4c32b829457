//! # legacyflo-sinks
//!
//! Where legacyflo writes mail to. This build has the file sinks:
//!
//! - [`zip::ZipSink`]: a ZIP of `.eml` files with a content-list CSV beside it (ZIP64,
//!   resumable at every commit);
//! - [`maildir::MaildirSink`]: a Maildir++ tree;
//! - [`mbox::MboxSink`]: a tree of mboxrd files.
//!
//! [`open_sink`] builds the right one for a validated [`Request`]: ZIP, Maildir, mbox and
//! PST files on a local path, ZIP and PST files in S3 ([`s3::S3Sink`]), and IMAP vaults.
//!
//! Every sink honours the [`Sink`] contract: bytes kept exactly, writes durable at
//! [`commit`](Sink::commit), [`abort`](Sink::abort) and `open` with a state restoring the
//! output to the last commit, and a (folder, source id) stored once. The files they write
//! read back through the matching source of `legacyflo-sources` (eml-zip, Maildir, mbox)
//! byte for byte, with their folders; the escaping rules are documented per module. File
//! I/O runs through [`tokio::task::block_in_place`] on the engine's multi-thread runtime
//! (inline on a current-thread runtime; not from a `LocalSet`).
//!
//! ```no_run
//! # async fn demo() -> legacyflo_core::Result<()> {
//! use legacyflo_core::{FolderPath, Message, Sink};
//! let mut sink = legacyflo_sinks::zip::ZipSink::new("out/mailbox.zip");
//! sink.open(None).await?;
//! sink.begin_folder(&FolderPath::inbox()).await?;
//! sink.write(&Message::new(&b"Subject: hi\r\n\r\nhello\r\n"[..], FolderPath::inbox(), "1")).await?;
//! let outputs = sink.finish().await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod imap;
pub mod maildir;
pub mod mbox;
pub mod pst;
pub mod s3;
mod util;
pub mod zip;

use legacyflo_core::request::{DestSpec, FileFormat, SourceSpec};
use legacyflo_core::{Location, Request, Result, Sink};

pub use error::SinkError;

/// Builds the sink of a validated request.
///
/// `DestSpec::File` with a local path gives the ZIP sink (`EmlZip`; the location is the
/// archive), the Maildir sink or the mbox sink (the location is the tree's root);
/// `DestSpec::Imap` gives the [`imap::ImapSink`] (TLS from the request's `--dest-tls`,
/// `--dest-ca-file`, `--dest-insecure`). A local PST gives the [`pst::PstSink`]. A ZIP or
/// PST at an `s3://` location gives the [`s3::S3Sink`] (client from the request's S3
/// fields). Maildir and mbox trees in S3, and Microsoft 365, give an
/// [`ErrorKind::Unsupported`](legacyflo_core::ErrorKind::Unsupported) error saying they are
/// not implemented yet in this build. Nothing is written until [`Sink::open`].
pub fn open_sink(request: &Request) -> Result<Box<dyn Sink>> {
    let unsupported =
        |what: &str| -> legacyflo_core::Error { SinkError::Unsupported(what.to_string()).into() };
    match &request.dest {
        DestSpec::File {
            format,
            location: Location::Local(path),
        } => match format {
            FileFormat::EmlZip => Ok(Box::new(zip::ZipSink::new(path.clone()))),
            FileFormat::Maildir => Ok(Box::new(maildir::MaildirSink::new(path.clone()))),
            FileFormat::Mbox => Ok(Box::new(mbox::MboxSink::new(path.clone()))),
            FileFormat::Pst => Ok(Box::new(pst::PstSink::new(path.clone()))),
        },
        DestSpec::File {
            format: format @ (FileFormat::EmlZip | FileFormat::Pst),
            location: Location::S3 { bucket, key },
        } => {
            let sink = s3::S3Sink::new(request.s3.clone(), bucket, key, *format);
            Ok(Box::new(match &request.source {
                SourceSpec::File { location, .. } => sink.with_source(location.clone()),
                _ => sink,
            }))
        }
        DestSpec::File {
            location: Location::S3 { .. },
            ..
        } => Err(unsupported(
            "writing a Maildir or mbox tree to S3 is (ZIP and PST go to S3; use a local path)",
        )),
        DestSpec::Imap {
            preset,
            endpoint,
            folder,
        } => Ok(Box::new(imap::open_imap_sink(*preset, endpoint, folder)?)),
        DestSpec::Graph { .. } => Err(unsupported("the Microsoft 365 (Graph) destination is")),
        DestSpec::Other => Err(unsupported(&format!(
            "the destination of {} is",
            request.request_type.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use legacyflo_core::{ErrorKind, Field, Params};

    fn request(kind: &str, source: &str, dest: &str) -> Request {
        let p = Params::new()
            .with(Field::Type, kind)
            .with(Field::SourceUrl, source)
            .with(Field::DestUrl, dest);
        Request::from_params(&p).unwrap()
    }

    #[test]
    fn builds_file_sinks_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let zip = dir.path().join("in.zip");
        std::fs::write(&zip, b"").unwrap();
        let z = zip.display().to_string();
        assert_eq!(
            open_sink(&request("MBOX-S3-ZIP", &d, &format!("{d}/x.zip")))
                .unwrap()
                .kind(),
            "zip"
        );
        assert_eq!(
            open_sink(&request("MBOX-MAILDIR", &d, &format!("{d}/md")))
                .unwrap()
                .kind(),
            "maildir"
        );
        assert_eq!(
            open_sink(&request("EML-MBOX", &z, &format!("{d}/mb")))
                .unwrap()
                .kind(),
            "mbox"
        );
        assert_eq!(
            open_sink(&request("MBOX-S3-PST", &d, &format!("{d}/x.pst")))
                .unwrap()
                .kind(),
            "pst"
        );
        assert_eq!(
            open_sink(&request("MBOX-S3-ZIP", &d, "s3://bucket/out/x.zip"))
                .unwrap()
                .kind(),
            "s3"
        );
        assert_eq!(
            open_sink(&request("MBOX-S3-PST", &d, "s3://bucket/out/"))
                .unwrap()
                .kind(),
            "s3"
        );
        {
            let (kind, dest) = ("MBOX-MAILDIR", "s3://bucket/out/md".to_string());
            let err = open_sink(&request(kind, &d, &dest)).err().unwrap();
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{kind}");
            assert!(
                err.to_string()
                    .contains("not implemented yet in this build"),
                "{err}"
            );
        }
        let p = Params::new()
            .with(Field::Type, "EML-VAULTASTIC4")
            .with(Field::SourceUrl, z.as_str())
            .with(Field::DestServer, "vault.example.test")
            .with(Field::DestUser, "u")
            .with(Field::DestPasswordEnv, "PATH");
        // The vault sink is built (it connects on `open`).
        let sink = open_sink(&Request::from_params(&p).unwrap()).unwrap();
        assert_eq!(sink.kind(), "imap");
    }
}
