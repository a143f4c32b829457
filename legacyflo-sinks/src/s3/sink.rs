//! [`S3Sink`]: the [`Sink`] implementation.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use legacyflo_core::request::{FileFormat, S3Settings};
use legacyflo_core::{
    Error, ErrorKind, FolderPath, Location, Message, Output, Result, Sink, SinkState, WriteOutcome,
};
use legacyflo_s3::{Access, Client, UploadOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::BACKEND;
use super::spool::{free_bytes, local_size, spool_need};
use super::state::{STREAM_VERSION, StreamState, Target};
use super::stream::StreamZip;

/// Default free space the spool must have before a run starts.
pub const DEFAULT_MIN_FREE: u64 = 1 << 30;
/// Parts of a streamed ZIP in flight by default: with 8 MiB parts the ZIP's upload holds
/// at most 5 part buffers (in flight and the one filling), reused for every part.
pub const STREAM_IN_FLIGHT: usize = 4;
/// Default cap of a streamed ZIP volume: 48 GiB of messages (uncompressed), the
/// service's limit for a ZIP of `.eml`.
pub const DEFAULT_ZIP_VOLUME_CAP: u64 = 48 << 30;
/// Version of [`S3SinkState`].
const STATE_VERSION: u32 = 1;
/// Marker left in the spool once every object is uploaded.
const UPLOADED: &str = "uploaded.json";

/// The resume state: the local sink's state plus this run's id.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct S3SinkState {
    version: u32,
    run: String,
    inner: Option<SinkState>,
}

/// Writes a ZIP or PST archive (and content lists) to `s3://bucket/key`.
///
/// See the [module documentation](super) for the spool, names, resume and preflight.
pub struct S3Sink {
    settings: S3Settings,
    bucket: String,
    key: String,
    format: FileFormat,
    spool: PathBuf,
    min_free: u64,
    upload: UploadOptions,
    /// Upload options of the streamed ZIP.
    stream_upload: UploadOptions,
    client: Option<Client>,
    inner: Option<Box<dyn Sink>>,
    run: String,
    finished: Option<Vec<Output>>,
    /// The source file or tree, when it is one: its size estimates the spool's need.
    source: Option<Location>,
    /// The streamed ZIP, when the output is a ZIP resumed or started by this build.
    stream: Option<StreamZip>,
    volume_cap: u64,
}

impl std::fmt::Debug for S3Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Sink")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("format", &self.format)
            .field("spool", &self.spool)
            .finish_non_exhaustive()
    }
}

impl S3Sink {
    /// A sink writing `format` (ZIP or PST) to `s3://bucket/key`, spooling under the
    /// default spool root. Nothing is touched until [`Sink::open`].
    pub fn new(settings: S3Settings, bucket: &str, key: &str, format: FileFormat) -> Self {
        let root = std::env::var_os("LEGACYFLO_SPOOL_DIR")
            .map_or_else(|| PathBuf::from(".legacyflo/spool"), PathBuf::from);
        let mut h = Sha256::new();
        h.update(format!("s3://{bucket}/{key}").as_bytes());
        let dir = hex::encode(h.finalize());
        S3Sink {
            settings,
            bucket: bucket.to_string(),
            key: key.to_string(),
            format,
            spool: root.join(&dir[..16]),
            min_free: DEFAULT_MIN_FREE,
            upload: UploadOptions::default(),
            stream_upload: UploadOptions {
                in_flight: STREAM_IN_FLIGHT,
                ..UploadOptions::default()
            },
            client: None,
            inner: None,
            run: String::new(),
            finished: None,
            source: None,
            stream: None,
            volume_cap: DEFAULT_ZIP_VOLUME_CAP,
        }
    }

    /// The same sink cutting streamed ZIP volumes at `bytes` of messages (uncompressed;
    /// default [`DEFAULT_ZIP_VOLUME_CAP`]). A volume is sealed at the first commit after
    /// it reached the cap, so it may pass it by the messages of one commit.
    pub fn with_volume_cap(mut self, bytes: u64) -> Self {
        self.volume_cap = bytes.max(1);
        self
    }

    /// The same sink knowing that the messages come from the file or tree at `source`
    /// (a local path or an S3 object): before a fresh start, `open` then requires room
    /// for the output estimated from the source's size (see [`spool_need`]), not only
    /// the [`with_min_free`](Self::with_min_free) floor.
    pub fn with_source(mut self, source: Location) -> Self {
        self.source = Some(source);
        self
    }

    /// The same sink spooling in `dir` (used as is, not hashed).
    pub fn with_spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool = dir.into();
        self
    }

    /// The same sink requiring `bytes` free in the spool before starting.
    pub fn with_min_free(mut self, bytes: u64) -> Self {
        self.min_free = bytes;
        self
    }

    /// The same sink uploading with `options` (part size, parts in flight), for the
    /// streamed ZIP and for spooled files alike.
    pub fn with_upload_options(mut self, options: UploadOptions) -> Self {
        self.stream_upload = options.clone();
        self.upload = options;
        self
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> &Path {
        &self.spool
    }

    fn file_name(&self) -> String {
        self.key.rsplit('/').next().unwrap_or(&self.key).to_string()
    }

    /// Key prefix of the output's siblings (`dir/`, or empty).
    fn key_dir(&self) -> String {
        match self.key.rsplit_once('/') {
            Some((d, _)) => format!("{d}/"),
            None => String::new(),
        }
    }

    fn local_dest(&self) -> PathBuf {
        self.spool.join(self.file_name())
    }

    fn new_inner(&self) -> Result<Box<dyn Sink>> {
        let dest = self.local_dest();
        match self.format {
            FileFormat::EmlZip => Ok(Box::new(crate::zip::ZipSink::new(dest))),
            FileFormat::Pst => Ok(Box::new(crate::pst::PstSink::new(dest))),
            other => Err(crate::SinkError::Unsupported(format!(
                "writing {other:?} to S3 is (only ZIP and PST are files; use a local path)"
            ))
            .into()),
        }
    }

    fn inner(&mut self) -> Result<&mut Box<dyn Sink>> {
        self.inner.as_mut().ok_or_else(|| {
            Error::backend(
                BACKEND,
                ErrorKind::Other,
                "the sink is not open (or already finished)",
            )
        })
    }

    fn client(&self) -> Result<&Client> {
        self.client
            .as_ref()
            .ok_or_else(|| Error::backend(BACKEND, ErrorKind::Other, "the sink is not open"))
    }

    fn state(&self, inner: Option<SinkState>) -> Result<SinkState> {
        serde_json::to_value(S3SinkState {
            version: STATE_VERSION,
            run: self.run.clone(),
            inner,
        })
        .map_err(|e| Error::State(format!("s3 sink state: {e}")))
    }

    /// Whether a key in the output's directory belongs to this output: the name, its
    /// content list, or a volume of either.
    fn is_output_key(&self, key: &str) -> bool {
        let dir = self.key_dir();
        let Some(name) = key.strip_prefix(&dir) else {
            return false;
        };
        let file = self.file_name();
        let stem = file.rsplit_once('.').map_or(file.as_str(), |(s, _)| s);
        let Some(rest) = name.strip_prefix(stem) else {
            return false;
        };
        let rest = rest
            .strip_prefix('-')
            .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()))
            .unwrap_or(rest);
        matches!(rest, ".zip" | ".pst" | ".csv")
    }

    async fn abort_stale_uploads(&mut self, keep: &[String]) -> Result<()> {
        let client = self.client()?;
        let dir = self.key_dir();
        let file = self.file_name();
        let stem = file.rsplit_once('.').map_or(file.as_str(), |(s, _)| s);
        let prefix = format!("{dir}{stem}");
        let out = client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .send()
            .await
            .map_err(|e| {
                legacyflo_s3::S3Error::from_sdk(
                    e,
                    "ListMultipartUploads",
                    &self.bucket,
                    Some(&prefix),
                )
            })?;
        let mut keys: Vec<String> = out
            .uploads()
            .iter()
            .filter_map(|u| u.key())
            .filter(|k| self.is_output_key(k))
            .map(str::to_string)
            .collect();
        keys.sort();
        keys.dedup();
        let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
        for k in keys {
            legacyflo_s3::abort_stale_except(client, &self.bucket, &k, &keep).await?;
        }
        Ok(())
    }

    /// Size of the source in bytes, when it is a file or tree whose size can be read
    /// (`None` for IMAP and API sources, or when the size cannot be read).
    async fn source_size(&mut self) -> Option<u64> {
        let (client, source) = (self.client.as_ref(), self.source.as_ref());
        match source? {
            Location::Local(path) => local_size(path),
            Location::S3 { bucket, key } if !key.is_empty() && !key.ends_with('/') => {
                let client = client?;
                match legacyflo_s3::head(client, bucket, key).await {
                    Ok(found) => found.map(|(size, _)| size),
                    Err(e) => {
                        warn!(message = "cannot read the source size to estimate the spool", bucket = %bucket, error = %e);
                        None
                    }
                }
            }
            Location::S3 { .. } => None,
        }
    }

    /// Fails when the spool has less free space than [`spool_need`] for a source of
    /// `source` bytes.
    fn check_free_space(&self, source: Option<u64>) -> Result<()> {
        let free = free_bytes(&self.spool)
            .map_err(|e| Error::io(format!("check free space in {}", self.spool.display()), e))?;
        let need = spool_need(self.format, source, self.min_free);
        if free < need {
            let basis = match source {
                Some(s) => format!(
                    "estimated from the source's {} MiB: a ZIP needs about the source's size, a PST about twice",
                    s >> 20
                ),
                None => "the minimum; a ZIP needs about the output's size, a PST about twice"
                    .to_string(),
            };
            return Err(Error::backend(
                BACKEND,
                ErrorKind::InvalidInput,
                format!(
                    "the spool {} has {} MiB free, {} MiB needed to start ({basis}); set LEGACYFLO_SPOOL_DIR to a larger disk",
                    self.spool.display(),
                    free >> 20,
                    need >> 20
                ),
            ));
        }
        info!(message = "spool has room", spool = %self.spool.display(), free_mib = free >> 20, need_mib = need >> 20);
        Ok(())
    }

    fn read_marker(&self) -> Option<Vec<Output>> {
        let bytes = std::fs::read(self.spool.join(UPLOADED)).ok()?;
        let (run, outputs): (String, Vec<Output>) = serde_json::from_slice(&bytes).ok()?;
        (run == self.run).then_some(outputs)
    }

    /// Opens the streamed ZIP: a fresh output, or the resume of a streamed checkpoint.
    async fn open_stream(&mut self, resume: Option<SinkState>) -> Result<()> {
        let client = self.client()?.clone();
        let mut target = Target {
            client,
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            upload: self.stream_upload.clone(),
            run: String::new(),
        };
        let stream = match resume {
            None => {
                self.abort_stale_uploads(&[]).await?;
                target.run = new_run_id();
                StreamZip::fresh(target, self.volume_cap).await?
            }
            Some(v) => {
                let st: StreamState = serde_json::from_value(v)
                    .map_err(|e| Error::State(format!("not an s3 sink state: {e}")))?;
                if st.version != STREAM_VERSION || st.mode != "stream" {
                    return Err(Error::State(format!(
                        "s3 sink state version {} ({}) is not {STREAM_VERSION} (stream)",
                        st.version, st.mode
                    )));
                }
                self.abort_stale_uploads(&StreamZip::referenced_uploads(&st))
                    .await?;
                target.run = st.run.clone();
                StreamZip::resume(target, st, self.volume_cap).await?
            }
        };
        self.stream = Some(stream);
        Ok(())
    }

    async fn upload_outputs(&mut self, local: Vec<Output>) -> Result<Vec<Output>> {
        let client = self.client()?;
        let dir = self.key_dir();
        let mut uploaded = Vec::with_capacity(local.len());
        for o in local {
            let path = PathBuf::from(&o.location);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    Error::backend(
                        BACKEND,
                        ErrorKind::Other,
                        format!("output {} has no file name", o.location),
                    )
                })?;
            let key = format!("{dir}{name}");
            let mut options = self.upload.clone();
            options.content_type = Some(content_type(&name).to_string());
            options.metadata = vec![
                ("legacyflo-run".to_string(), self.run.clone()),
                ("legacyflo-messages".to_string(), o.messages.to_string()),
            ];
            let done =
                legacyflo_s3::upload_file(client, &self.bucket, &key, &path, &options).await?;
            info!(message = "output uploaded", bucket = %self.bucket, key = %key, bytes = done.bytes, parts = done.parts);
            uploaded.push((
                path,
                Output {
                    location: format!("s3://{}/{key}", self.bucket),
                    kind: o.kind,
                    bytes: Some(done.bytes),
                    messages: o.messages,
                },
            ));
        }
        let outputs: Vec<Output> = uploaded.iter().map(|(_, o)| o.clone()).collect();
        let marker = serde_json::to_vec(&(&self.run, &outputs))
            .map_err(|e| Error::State(format!("s3 sink marker: {e}")))?;
        legacyflo_core::fsutil::write_atomic(&self.spool.join(UPLOADED), &marker)?;
        for (path, _) in &uploaded {
            if let Err(e) = std::fs::remove_file(path) {
                warn!(message = "cannot remove a spooled file", path = %path.display(), error = %e);
            }
        }
        Ok(outputs)
    }
}

fn content_type(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("zip") => "application/zip",
        Some("csv") => "text/csv",
        Some("pst") => "application/vnd.ms-outlook",
        _ => "application/octet-stream",
    }
}

fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{nanos:x}", std::process::id())
}

#[async_trait]
impl Sink for S3Sink {
    fn kind(&self) -> &str {
        BACKEND
    }

    async fn open(&mut self, resume: Option<SinkState>) -> Result<()> {
        self.inner = None;
        self.finished = None;
        self.stream = None;
        let client = legacyflo_s3::client(&self.settings).await;
        legacyflo_s3::check_bucket(&client, &self.bucket, &self.key, Access::Write).await?;
        self.client = Some(client);
        let spooled = resume.as_ref().is_some_and(|v| {
            v.get("version").and_then(serde_json::Value::as_u64) == Some(u64::from(STATE_VERSION))
        });
        if self.format == FileFormat::EmlZip && !spooled {
            return self.open_stream(resume).await;
        }
        self.abort_stale_uploads(&[]).await?;
        let mut inner = self.new_inner()?;
        match resume {
            None => {
                if self.spool.exists() {
                    std::fs::remove_dir_all(&self.spool).map_err(|e| {
                        Error::io(format!("clear spool {}", self.spool.display()), e)
                    })?;
                }
                std::fs::create_dir_all(&self.spool)
                    .map_err(|e| Error::io(format!("create spool {}", self.spool.display()), e))?;
                let source = self.source_size().await;
                self.check_free_space(source)?;
                self.run = new_run_id();
                inner.open(None).await?;
            }
            Some(v) => {
                let st: S3SinkState = serde_json::from_value(v)
                    .map_err(|e| Error::State(format!("not an s3 sink state: {e}")))?;
                if st.version != STATE_VERSION {
                    return Err(Error::State(format!(
                        "s3 sink state version {} is not {STATE_VERSION}",
                        st.version
                    )));
                }
                self.run = st.run;
                if let Some(outputs) = self.read_marker() {
                    info!(message = "the outputs were already uploaded", bucket = %self.bucket, key = %self.key);
                    self.finished = Some(outputs);
                    return Ok(());
                }
                if !self.spool.is_dir() {
                    return Err(Error::backend(
                        BACKEND,
                        ErrorKind::InvalidInput,
                        format!(
                            "cannot resume s3://{}/{}: its spool {} is not on this machine (the unfinished archive is only uploaded when it is complete); run on the machine that has the spool, or delete the checkpoint to start over",
                            self.bucket,
                            self.key,
                            self.spool.display()
                        ),
                    ));
                }
                inner.open(st.inner).await?;
            }
        }
        self.inner = Some(inner);
        Ok(())
    }

    async fn begin_folder(&mut self, folder: &FolderPath) -> Result<()> {
        if self.stream.is_some() {
            // Directories are implied by entry names.
            return Ok(());
        }
        self.inner()?.begin_folder(folder).await
    }

    async fn write(&mut self, message: &Message) -> Result<WriteOutcome> {
        if let Some(s) = self.stream.as_mut() {
            return Ok(s.write(message).await?);
        }
        self.inner()?.write(message).await
    }

    async fn commit(&mut self) -> Result<SinkState> {
        if let Some(s) = self.stream.as_mut() {
            return Ok(s.commit().await?);
        }
        if self.finished.is_some() {
            return self.state(None);
        }
        let inner = self.inner()?.commit().await?;
        self.state(Some(inner))
    }

    async fn abort(&mut self) -> Result<()> {
        if let Some(s) = self.stream.as_mut() {
            s.abort().await;
            return Ok(());
        }
        match self.inner.as_mut() {
            Some(i) => i.abort().await,
            None => Ok(()),
        }
    }

    async fn finish(&mut self) -> Result<Vec<Output>> {
        if let Some(s) = self.stream.as_mut() {
            return Ok(s.finish().await?);
        }
        if let Some(o) = &self.finished {
            return Ok(o.clone());
        }
        let local = self.inner()?.finish().await?;
        let outputs = self.upload_outputs(local).await?;
        self.inner = None;
        self.finished = Some(outputs.clone());
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_output_keys() {
        let s = S3Sink::new(
            S3Settings::default(),
            "b",
            "arch/alice.zip",
            FileFormat::EmlZip,
        );
        assert!(s.is_output_key("arch/alice.zip"));
        assert!(s.is_output_key("arch/alice.csv"));
        assert!(s.is_output_key("arch/alice-002.pst"));
        assert!(!s.is_output_key("arch/alice2.zip"));
        assert!(!s.is_output_key("other/alice.zip"));
        assert!(!s.is_output_key("arch/alice.zip.bak"));
    }

    #[test]
    fn spool_is_per_destination() {
        let a = S3Sink::new(S3Settings::default(), "b", "x.zip", FileFormat::EmlZip);
        let b = S3Sink::new(S3Settings::default(), "b", "y.zip", FileFormat::EmlZip);
        assert_ne!(a.spool_dir(), b.spool_dir());
        assert_eq!(
            a.local_dest().file_name().and_then(|n| n.to_str()),
            Some("x.zip")
        );
    }
}
