//! [`S3Source`]: the [`Source`] implementation.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use legacyflo_core::request::{FileFormat, S3Settings};
use legacyflo_core::{
    Filter, FolderInfo, FolderPath, MessageStream, Position, Result, Source, SourceCapabilities,
};
use tokio::sync::OnceCell;

use super::BACKEND;
use crate::error::SourceError;

/// Reads a mailbox file from `s3://bucket/key` through a local spool copy.
///
/// See the [module documentation](super).
pub struct S3Source {
    settings: S3Settings,
    bucket: String,
    key: String,
    format: FileFormat,
    kind: String,
    local: OnceCell<Local>,
}

/// The downloaded copy and the source reading it.
struct Local {
    // Dropped after `source` (field order): the spool outlives its reader.
    source: Arc<dyn Source>,
    _spool: tempfile::TempDir,
}

impl std::fmt::Debug for S3Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Source")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl S3Source {
    /// A source over `s3://bucket/key` in `format` (eml-zip, PST or mbox). Nothing is read
    /// until [`Source::list_folders`]; a Maildir is refused there.
    pub fn new(settings: S3Settings, bucket: &str, key: &str, format: FileFormat) -> Self {
        let kind = match format {
            FileFormat::EmlZip => "s3-eml-zip",
            FileFormat::Pst => "s3-pst",
            FileFormat::Mbox => "s3-mbox",
            FileFormat::Maildir => "s3-maildir",
        };
        S3Source {
            settings,
            bucket: bucket.to_string(),
            key: key.to_string(),
            format,
            kind: kind.to_string(),
            local: OnceCell::new(),
        }
    }

    async fn local(&self) -> Result<&Arc<dyn Source>> {
        let local = self.local.get_or_try_init(|| self.download()).await?;
        Ok(&local.source)
    }

    async fn download(&self) -> Result<Local> {
        if self.format == FileFormat::Maildir {
            return Err(SourceError::Invalid {
                backend: BACKEND,
                message: format!(
                    "s3://{}/{}: a Maildir is a directory tree and cannot be read from S3; zip it (EML) or use a local path",
                    self.bucket, self.key
                ),
            }
            .into());
        }
        if self.key.is_empty() || self.key.ends_with('/') {
            return Err(SourceError::Invalid {
                backend: BACKEND,
                message: format!(
                    "s3://{}/{}: name an object (a file), not a prefix",
                    self.bucket, self.key
                ),
            }
            .into());
        }
        let client = legacyflo_s3::client(&self.settings).await;
        legacyflo_s3::check_bucket(&client, &self.bucket, &self.key, legacyflo_s3::Access::Read)
            .await?;
        let root =
            std::env::var_os("LEGACYFLO_SPOOL_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
        std::fs::create_dir_all(&root)
            .map_err(|e| SourceError::io(BACKEND, format!("create {}", root.display()), e))?;
        let spool = tempfile::Builder::new()
            .prefix("legacyflo-s3-")
            .tempdir_in(&root)
            .map_err(|e| {
                SourceError::io(BACKEND, format!("create a spool in {}", root.display()), e)
            })?;
        let path = spool.path().join(spool_name(&self.key));
        legacyflo_s3::download_to_file(&client, &self.bucket, &self.key, &path).await?;
        let source: Arc<dyn Source> = match self.format {
            FileFormat::EmlZip => Arc::new(crate::emlzip::EmlZipSource::new(path)),
            FileFormat::Pst => Arc::new(crate::pst::PstSource::new(path)),
            FileFormat::Mbox | FileFormat::Maildir => Arc::new(crate::mbox::MboxSource::new(path)),
        };
        Ok(Local {
            source,
            _spool: spool,
        })
    }
}

/// The spool file name of an object: the last segment of its key, unless that is not a
/// plain file name (`.`, `..`, a name longer than 200 bytes, one with a NUL or `\\`): then
/// `input`, with the key's extension when it has a short one (the local sources tell a
/// `.zip` by its extension). Never a path outside the spool.
fn spool_name(key: &str) -> String {
    let last = key.rsplit('/').next().unwrap_or("");
    let plain =
        !matches!(last, "" | "." | "..") && last.len() <= 200 && !last.contains(['\0', '\\']);
    if plain {
        return last.to_string();
    }
    let ext = last
        .rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty() && e.len() <= 8 && e.bytes().all(|b| b.is_ascii_alphanumeric()));
    match ext {
        Some(e) => format!("input.{e}"),
        None => "input".to_string(),
    }
}

#[async_trait]
impl Source for S3Source {
    fn kind(&self) -> &str {
        &self.kind
    }

    fn capabilities(&self) -> SourceCapabilities {
        match self.local.get() {
            Some(l) => l.source.capabilities(),
            None => SourceCapabilities::default(),
        }
    }

    async fn list_folders(&self) -> Result<Vec<FolderInfo>> {
        self.local().await?.list_folders().await
    }

    async fn stream<'a>(
        &'a self,
        folder: &FolderPath,
        filter: &Filter,
        after: Option<&Position>,
    ) -> Result<MessageStream<'a>> {
        self.local().await?.stream(folder, filter, after).await
    }
}

#[cfg(test)]
mod tests {
    use super::spool_name;

    #[test]
    fn spool_names_stay_inside_the_spool() {
        assert_eq!(spool_name("exports/mail.zip"), "mail.zip");
        assert_eq!(spool_name("a/.."), "input");
        assert_eq!(spool_name("."), "input");
        assert_eq!(
            spool_name(&format!("{}.mbox", "x".repeat(300))),
            "input.mbox"
        );
        assert_eq!(spool_name("a\\..\\b.pst"), "input.pst");
    }
}
