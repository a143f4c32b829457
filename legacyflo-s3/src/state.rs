//! [`S3StateStore`]: checkpoints kept as an S3 object, so a request resumes from any
//! machine that can reach the bucket.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use bytes::Bytes;
use legacyflo_core::request::S3Settings;
use legacyflo_core::{Result, StateStore};
use tokio::sync::OnceCell;

use crate::download::get_bytes;
use crate::upload::{UploadOptions, put_bytes};

/// State of request `key` in the object `s3://bucket/<prefix>/<key>.json`.
///
/// `save` is one `PutObject` with a CRC32C checksum: S3 replaces an object atomically
/// (readers see the old or the new bytes, never a mix) and answers only once it is
/// stored durably, which is the [`StateStore`] contract. The client is built on first use.
#[derive(Debug)]
pub struct S3StateStore {
    settings: S3Settings,
    client: OnceCell<Client>,
    bucket: String,
    object: String,
}

impl S3StateStore {
    /// State for request `key` under `s3://bucket/prefix` (prefix may be empty).
    pub fn new(settings: S3Settings, bucket: &str, prefix: &str, key: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        let object = if prefix.is_empty() {
            format!("{key}.json")
        } else {
            format!("{prefix}/{key}.json")
        };
        S3StateStore {
            settings,
            client: OnceCell::new(),
            bucket: bucket.to_string(),
            object,
        }
    }

    /// The same store with an existing client.
    pub fn with_client(mut self, client: Client) -> Self {
        self.client = OnceCell::new_with(Some(client));
        self
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key of the state.
    pub fn object_key(&self) -> &str {
        &self.object
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| crate::client::client(&self.settings))
            .await
    }
}

#[async_trait]
impl StateStore for S3StateStore {
    async fn load(&self) -> Result<Option<Vec<u8>>> {
        let client = self.client().await;
        Ok(get_bytes(client, &self.bucket, &self.object).await?)
    }

    async fn save(&self, bytes: &[u8]) -> Result<()> {
        let client = self.client().await;
        let options = UploadOptions {
            content_type: Some("application/json".to_string()),
            ..UploadOptions::default()
        };
        put_bytes(
            client,
            &self.bucket,
            &self.object,
            Bytes::copy_from_slice(bytes),
            &options,
        )
        .await?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.object)
    }
}
