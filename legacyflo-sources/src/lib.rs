//! # legacyflo-sources
//!
//! Where legacyflo reads mail from. This build has the file sources:
//!
//! - [`mbox::MboxSource`]: an mbox file, a tree of them (Thunderbird, Apple Mail, plain
//!   directories) or a `.zip` of either (mboxo and mboxrd);
//! - [`maildir::MaildirSource`]: a Maildir, a Maildir++ tree or a Dovecot `LAYOUT=fs` tree;
//! - [`emlzip::EmlZipSource`]: a ZIP of `.eml` files.
//!
//! and the network sources:
//!
//! - [`imap::ImapSource`]: IMAP with LOGIN, AUTHENTICATE PLAIN or XOAUTH2 (tokens from
//!   [`oauth`]);
//! - [`gmail::GmailSource`]: the Gmail API with a Google service account;
//! - [`graph::GraphSource`]: Microsoft Graph with an app registration;
//! - [`ews::EwsSource`]: Exchange Web Services with Basic auth or an app registration.
//!
//! [`open_source`] builds the right one for a validated [`Request`]. S3 inputs are
//! answered with [`ErrorKind::Unsupported`](legacyflo_core::ErrorKind::Unsupported).
//!
//! Every source honours the [`Source`] contract: a stable order, resume after a position
//! with no gap and no repeat, files opened read-only, and no message dropped silently (what
//! cannot be read is yielded as [`SourceEvent::Unreadable`](legacyflo_core::SourceEvent)
//! with the reason). File I/O runs on tokio's blocking pool, one message in memory at a
//! time per folder stream.
//!
//! ```no_run
//! # async fn demo() -> legacyflo_core::Result<()> {
//! use legacyflo_core::Source;
//! let source = legacyflo_sources::mbox::MboxSource::new("./Thunderbird/Mail/Local Folders");
//! for folder in source.list_folders().await? {
//!     println!("{}", folder.path);
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cloud;
pub mod emlzip;
mod error;
pub mod ews;
pub mod gmail;
pub mod graph;
pub mod imap;
pub mod maildir;
pub mod mbox;
pub mod oauth;
pub mod pst;
pub mod s3;
mod util;

use std::sync::Arc;

use legacyflo_core::request::{FileFormat, SourceKind, SourceSpec};
use legacyflo_core::{Location, Request, Result, Source};

pub use error::SourceError;

/// Builds the source of a validated request.
///
/// `SourceSpec::File` with a local path gives the file source of its format (mbox,
/// Maildir, eml-zip, PST); with an `s3://` location the [`s3::S3Source`] (eml-zip, PST,
/// mbox; a Maildir is refused when listed); `SourceSpec::Imap` the IMAP source (XOAUTH2
/// when the request carries OAuth credentials); `SourceSpec::Api` the Gmail API, Graph or
/// EWS source. A request whose backend this build lacks (validation lets no other
/// through) gives an [`ErrorKind::Unsupported`](legacyflo_core::ErrorKind::Unsupported)
/// error saying it is not implemented yet in this build.
/// Nothing is read here; a missing input is reported by the first
/// [`Source::list_folders`].
pub fn open_source(request: &Request) -> Result<Arc<dyn Source>> {
    let unsupported =
        |what: &str| -> legacyflo_core::Error { SourceError::Unsupported(what.to_string()).into() };
    match &request.source {
        SourceSpec::File {
            format,
            location: Location::Local(path),
        } => match format {
            FileFormat::Mbox => Ok(Arc::new(mbox::MboxSource::new(path.clone()))),
            FileFormat::Maildir => Ok(Arc::new(maildir::MaildirSource::new(path.clone()))),
            FileFormat::EmlZip => Ok(Arc::new(emlzip::EmlZipSource::new(path.clone()))),
            FileFormat::Pst => Ok(Arc::new(pst::PstSource::new(path.clone()))),
        },
        SourceSpec::File {
            format,
            location: Location::S3 { bucket, key },
        } => Ok(Arc::new(s3::S3Source::new(
            request.s3.clone(),
            bucket,
            key,
            *format,
        ))),
        SourceSpec::Imap {
            preset,
            endpoint,
            oauth: Some(auth),
        } => Ok(Arc::new(oauth::open_xoauth2_imap_source(
            *preset, endpoint, auth,
        )?)),
        SourceSpec::Imap {
            preset, endpoint, ..
        } => Ok(Arc::new(imap::open_imap_source(*preset, endpoint)?)),
        SourceSpec::Api {
            kind: SourceKind::GmailApi,
            auth: Some(auth),
            ..
        } => Ok(Arc::new(gmail::open_gmail_source(
            auth,
            &api_mailbox(&request.source),
        )?)),
        SourceSpec::Api {
            kind: SourceKind::Graph,
            auth: Some(auth),
            ..
        } => Ok(Arc::new(graph::open_graph_source(
            auth,
            &api_mailbox(&request.source),
        )?)),
        SourceSpec::Api {
            kind: SourceKind::Ews,
            auth,
            password,
            ews_url: Some(url),
            ..
        } => Ok(Arc::new(ews::open_ews_source(
            url,
            &api_mailbox(&request.source),
            auth.as_ref(),
            password.as_ref(),
        )?)),
        SourceSpec::Api { kind, .. } => Err(unsupported(&format!("the {kind:?} source is"))),
        SourceSpec::Other => Err(unsupported(&format!(
            "the source of {} is",
            request.request_type.name
        ))),
    }
}

/// The mailbox of an API source: `user@domain` when a domain is given and the user has
/// no `@`, else the user as given.
fn api_mailbox(source: &SourceSpec) -> String {
    match source {
        SourceSpec::Api {
            user,
            domain: Some(d),
            ..
        } if !user.contains('@') => format!("{user}@{d}"),
        SourceSpec::Api { user, .. } => user.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use legacyflo_core::{Field, Params};

    fn request(kind: &str, source: &str, dest: &str) -> Request {
        let p = Params::new()
            .with(Field::Type, kind)
            .with(Field::SourceUrl, source)
            .with(Field::DestUrl, dest);
        Request::from_params(&p).unwrap()
    }

    #[test]
    fn builds_file_sources_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let zip = dir.path().join("in.zip");
        std::fs::write(&zip, b"").unwrap();
        let out = format!("{d}/out/x.zip");
        assert_eq!(
            open_source(&request("MBOX-S3-ZIP", &d, &out))
                .unwrap()
                .kind(),
            "mbox"
        );
        assert_eq!(
            open_source(&request("MAILDIR-S3-ZIP", &d, &out))
                .unwrap()
                .kind(),
            "maildir"
        );
        let z = zip.display().to_string();
        assert_eq!(
            open_source(&request("EML-S3-ZIP", &z, &out))
                .unwrap()
                .kind(),
            "eml-zip"
        );
        assert_eq!(
            open_source(&request("PST-S3-ZIP", z.as_str(), &out))
                .unwrap()
                .kind(),
            "pst"
        );
        assert_eq!(
            open_source(&request("MBOX-S3-ZIP", "s3://bucket/in.zip", &out))
                .unwrap()
                .kind(),
            "s3-mbox"
        );
        assert_eq!(
            open_source(&request("PST-S3-ZIP", "s3://bucket/in.pst", &out))
                .unwrap()
                .kind(),
            "s3-pst"
        );
        let p = Params::new()
            .with(Field::Type, "IMAP-S3-ZIP")
            .with(Field::SourceServer, "imap.example.test")
            .with(Field::SourceUser, "u")
            .with(Field::SourcePasswordEnv, "PATH")
            .with(Field::DestUrl, out.as_str());
        // The IMAP source is built (it connects lazily).
        let src = open_source(&Request::from_params(&p).unwrap()).unwrap();
        assert_eq!(src.kind(), "imap");
    }
}
