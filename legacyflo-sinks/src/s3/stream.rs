//! [`StreamZip`]: the ZIP written straight to S3 while the run goes on, in volumes, with
//! commits, rollbacks and resume (see the module documentation of [`crate::s3`]).

use std::collections::HashSet;

use legacyflo_core::{Message, Output, SinkState, WriteOutcome};
use legacyflo_s3::MultipartUpload;
use tracing::{info, warn};

use super::BACKEND;
use super::state::{STREAM_VERSION, StreamState, Target, UploadState, VolumeState};
use super::volume::{Volume, s3err};
use crate::error::{SinkError, SinkResult};
use crate::zip::pipeline::Pipeline;

/// The streamed ZIP output of an [`S3Sink`](super::S3Sink).
#[derive(Debug)]
pub(super) struct StreamZip {
    target: Target,
    volume: Option<Volume>,
    pipeline: Pipeline,
    /// Outputs of the completed volumes.
    done: Vec<Output>,
    /// Commits made (names the tail objects).
    seq: u64,
    /// Bytes of messages (uncompressed) after which a volume is sealed at a commit.
    volume_cap: u64,
    /// The current volume reached the cap at the last commit.
    sealed: bool,
    /// A completion failed after taking the volume (see `not_lost`).
    lost: bool,
    finished: Option<Vec<Output>>,
}

impl StreamZip {
    /// A new output: the state objects of an earlier run are deleted, volume 1 starts.
    pub(super) async fn fresh(target: Target, volume_cap: u64) -> SinkResult<StreamZip> {
        let prefix = target.state_prefix();
        let n = legacyflo_s3::delete_prefix(&target.client, &target.bucket, &prefix)
            .await
            .map_err(s3err)?;
        if n > 0 {
            info!(message = "deleted the state objects of an earlier run", bucket = %target.bucket, prefix = %prefix, count = n);
        }
        Ok(StreamZip {
            volume: Some(Volume::create(target.clone(), 1, HashSet::new())),
            target,
            pipeline: Pipeline::default(),
            done: Vec::new(),
            seq: 0,
            volume_cap,
            sealed: false,
            lost: false,
            finished: None,
        })
    }

    /// The upload ids a checkpoint refers to (kept when stale uploads are aborted).
    pub(super) fn referenced_uploads(state: &StreamState) -> Vec<String> {
        state
            .current
            .iter()
            .flat_map(|v| [&v.zip, &v.csv])
            .flatten()
            .map(|u| u.upload_id.clone())
            .collect()
    }

    /// Restores the output to what the commit of `state` made durable. A volume whose
    /// upload is gone counts as complete only when its object is there, written by this
    /// run, with the committed size; otherwise the committed messages cannot be restored
    /// and this fails, saying so.
    pub(super) async fn resume(
        target: Target,
        state: StreamState,
        volume_cap: u64,
    ) -> SinkResult<StreamZip> {
        let mut z = StreamZip {
            target,
            volume: None,
            pipeline: Pipeline::default(),
            done: state.done.clone(),
            seq: state.seq,
            volume_cap,
            sealed: false,
            lost: false,
            finished: None,
        };
        let Some(vs) = state.current else {
            return Ok(z);
        };
        let (Some(zip_up), Some(csv_up)) = (vs.zip.clone(), vs.csv.clone()) else {
            // Nothing of this volume was committed.
            z.volume = Some(Volume::create(z.target.clone(), vs.number, HashSet::new()));
            return Ok(z);
        };
        let t = &z.target;
        let zkey = t.volume_key(vs.number, "zip");
        let open = legacyflo_s3::upload_exists(&t.client, &t.bucket, &zkey, &zip_up.upload_id)
            .await
            .map_err(s3err)?;
        if open {
            z.sealed = vs.sealed;
            z.volume =
                Some(Volume::resume(z.target.clone(), vs, HashSet::new(), zip_up, csv_up).await?);
        } else {
            let outputs = z.completed_volume(&vs, &csv_up).await?;
            z.done.extend(outputs);
            if !vs.sealed {
                info!(message = "the output was already completed", bucket = %z.target.bucket, key = %zkey);
                z.finished = Some(z.done.clone());
            }
        }
        Ok(z)
    }

    /// Checks that the volume of `vs`, whose ZIP upload is gone, was completed by this
    /// run, completes its content list if that is still open, and lists its outputs.
    async fn completed_volume(
        &self,
        vs: &VolumeState,
        csv_up: &UploadState,
    ) -> SinkResult<Vec<Output>> {
        let t = &self.target;
        let n = vs.number;
        let zkey = t.volume_key(n, "zip");
        let ckey = t.volume_key(n, "csv");
        let want = Volume::final_size(vs);
        let found = legacyflo_s3::head(&t.client, &t.bucket, &zkey)
            .await
            .map_err(s3err)?;
        let ours = |meta: &std::collections::HashMap<String, String>| {
            meta.get("legacyflo-run").is_some_and(|r| *r == t.run)
        };
        match &found {
            Some((size, meta)) if *size == want && ours(meta) => {}
            _ => {
                return Err(SinkError::state(
                    BACKEND,
                    format!(
                        "cannot resume {}: its multipart upload is gone (aborted, or expired by a lifecycle rule) and the object was not completed by this run, so the {} messages the checkpoint counts as stored in it cannot be restored; delete the request's checkpoint (in --state-dir) to run it again from the start",
                        t.url(&zkey),
                        vs.entries
                    ),
                ));
            }
        }
        let csv_open = legacyflo_s3::upload_exists(&t.client, &t.bucket, &ckey, &csv_up.upload_id)
            .await
            .map_err(s3err)?;
        let csv_bytes = if csv_open {
            {
                let tail_key = t.tail_key(n, vs.tail_seq);
                let tail = legacyflo_s3::get_bytes(&t.client, &t.bucket, &tail_key)
                    .await
                    .map_err(s3err)?
                    .ok_or_else(|| {
                        SinkError::state(
                            BACKEND,
                            format!(
                                "cannot complete {}: {} is missing",
                                t.url(&ckey),
                                t.url(&tail_key)
                            ),
                        )
                    })?;
                let from = usize::try_from(vs.tail_zip)
                    .unwrap_or(usize::MAX)
                    .min(tail.len());
                let up = MultipartUpload::resume(
                    &t.client,
                    &t.bucket,
                    &ckey,
                    &csv_up.upload_id,
                    csv_up.parts.clone(),
                    &tail[from..],
                    &t.upload,
                )
                .await
                .map_err(s3err)?;
                up.complete().await.map_err(s3err)?.bytes
            }
        } else {
            {
                match legacyflo_s3::head(&t.client, &t.bucket, &ckey)
                    .await
                    .map_err(s3err)?
                {
                    Some((size, meta)) if ours(&meta) => size,
                    _ => {
                        return Err(SinkError::state(
                            BACKEND,
                            format!(
                                "cannot resume: the content list {} is neither open nor written by this run; delete the request's checkpoint to start over",
                                t.url(&ckey)
                            ),
                        ));
                    }
                }
            }
        };
        let prefix = t.volume_prefix(n);
        if let Err(e) = legacyflo_s3::delete_prefix(&t.client, &t.bucket, &prefix).await {
            warn!(message = "cannot delete the state objects", prefix = %prefix, error = %e);
        }
        let v = Volume::create(t.clone(), n, HashSet::new());
        let mut outputs = v.outputs(want, csv_bytes);
        for o in &mut outputs {
            o.messages = vs.entries;
        }
        Ok(outputs)
    }

    /// The volume to write to: a sealed one is completed first (everything in it was
    /// committed, and the checkpoint saying so saved, before this call), then the next
    /// one starts.
    async fn volume(&mut self) -> SinkResult<&mut Volume> {
        if self.sealed {
            if let Some(v) = self.volume.take() {
                let next = v.number() + 1;
                let mut v = v;
                let keys = v.take_keys();
                let outputs = match v.complete().await {
                    Ok(o) => o,
                    Err(e) => {
                        self.lost = true;
                        return Err(e);
                    }
                };
                self.done.extend(outputs);
                self.volume = Some(Volume::create(self.target.clone(), next, keys));
            }
            self.sealed = false;
        }
        if self.volume.is_none() {
            let next = u32::try_from(self.done.len() / 2 + 1).unwrap_or(u32::MAX);
            self.volume = Some(Volume::create(self.target.clone(), next, HashSet::new()));
        }
        self.volume
            .as_mut()
            .ok_or_else(|| SinkError::misuse(BACKEND, "no volume"))
    }

    fn not_finished(&self) -> SinkResult<()> {
        if self.finished.is_some() {
            return Err(SinkError::misuse(BACKEND, "the output is already complete"));
        }
        self.not_lost()
    }

    /// A failed completion consumed the volume: only a resume from the checkpoint (which
    /// still refers to its open uploads) can go on.
    fn not_lost(&self) -> SinkResult<()> {
        if self.lost {
            return Err(SinkError::state(
                BACKEND,
                format!(
                    "completing {} failed earlier; run the request again to resume from its checkpoint",
                    self.target.url(&self.target.key)
                ),
            ));
        }
        Ok(())
    }

    /// [`Sink::write`](legacyflo_core::Sink::write).
    pub(super) async fn write(&mut self, message: &Message) -> SinkResult<WriteOutcome> {
        self.not_finished()?;
        let result = match self.volume().await {
            Ok(_) => {
                let v = self
                    .volume
                    .as_mut()
                    .ok_or_else(|| SinkError::misuse(BACKEND, "no volume"))?;
                self.pipeline.write(v, message).await
            }
            Err(e) => Err(e),
        };
        if result.is_err()
            && let Some(v) = self.volume.as_mut()
        {
            v.clean_up_after_error().await;
        }
        result
    }

    /// [`Sink::commit`](legacyflo_core::Sink::commit).
    pub(super) async fn commit(&mut self) -> SinkResult<SinkState> {
        self.not_lost()?;
        if self.finished.is_none() {
            let result = self.commit_inner().await;
            if result.is_err()
                && let Some(v) = self.volume.as_mut()
            {
                v.clean_up_after_error().await;
            }
            result?;
        }
        self.state()
    }

    async fn commit_inner(&mut self) -> SinkResult<()> {
        let Some(v) = self.volume.as_mut() else {
            return Ok(());
        };
        self.pipeline.drain_all(v).await?;
        let state = v.commit(self.seq + 1).await?;
        self.seq = self.seq.max(state.tail_seq);
        if v.raw_bytes() >= self.volume_cap {
            self.sealed = true;
        }
        Ok(())
    }

    fn state(&self) -> SinkResult<SinkState> {
        let current = match (&self.volume, &self.finished) {
            (Some(v), None) => Some(v.committed_state(self.sealed)),
            _ => None,
        };
        let done = match &self.finished {
            Some(f) => f.clone(),
            None => self.done.clone(),
        };
        let s = StreamState {
            version: STREAM_VERSION,
            mode: "stream".to_string(),
            run: self.target.run.clone(),
            seq: self.seq,
            done,
            current,
        };
        serde_json::to_value(s).map_err(|e| SinkError::misuse(BACKEND, format!("state: {e}")))
    }

    /// [`Sink::abort`](legacyflo_core::Sink::abort).
    pub(super) async fn abort(&mut self) {
        self.pipeline.forget();
        if self.finished.is_none()
            && let Some(v) = self.volume.as_mut()
        {
            v.rollback().await;
        }
    }

    /// [`Sink::finish`](legacyflo_core::Sink::finish).
    pub(super) async fn finish(&mut self) -> SinkResult<Vec<Output>> {
        if let Some(f) = &self.finished {
            return Ok(f.clone());
        }
        self.not_lost()?;
        self.commit_inner().await?;
        if let Some(v) = self.volume.take()
            && let Err(e) = self.finish_volume(v).await
        {
            self.lost = true;
            return Err(e);
        }
        let outputs = self.done.clone();
        self.finished = Some(outputs.clone());
        Ok(outputs)
    }

    async fn finish_volume(&mut self, v: Volume) -> SinkResult<()> {
        let outputs = v.complete().await?;
        self.done.extend(outputs);
        self.sealed = false;
        Ok(())
    }
}
