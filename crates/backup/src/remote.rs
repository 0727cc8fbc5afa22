//! The bucket: snapshots put, listed, fetched and deleted through `object_store`'s S3 client
//! (its requests are retried with exponential backoff on errors and timeouts).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, MultipartUpload, ObjectStore, PutPayload, RetryConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::BackupConfig;
use crate::error::BackupError;
use crate::key::{log_dir, tenant_dir, tenants_dir, LogChunkKey, SnapshotKey};

/// How long one request may take before it is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries per request (with backoff from 100 ms doubling to 2 s) and their overall limit: a
/// store that is down fails a tenant within seconds, and the tenant waits for the next round
/// instead of holding a round's slot for minutes.
const MAX_RETRIES: usize = 4;
const RETRY_TIMEOUT: Duration = Duration::from_secs(10);
/// A snapshot file up to this size goes up in one PUT; a bigger one in parts of this size
/// (S3's parts are at least 5 MiB), read from the file one at a time, so memory per upload
/// stays at one part whatever the tenant's size.
pub const PART_BYTES: usize = 8 << 20;

/// A bucket and the key prefix of this node's backups.
#[derive(Clone)]
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl Remote {
    /// The client for `cfg`'s bucket (nothing is sent yet). Errors: an invalid configuration.
    pub fn new(cfg: &BackupConfig) -> Result<Self, BackupError> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_access_key_id(&cfg.credentials.access_key_id)
            .with_secret_access_key(cfg.credentials.secret())
            .with_client_options(ClientOptions::new().with_timeout(REQUEST_TIMEOUT))
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: MAX_RETRIES,
                retry_timeout: RETRY_TIMEOUT,
            });
        if let Some(token) = cfg.credentials.token() {
            b = b.with_token(token);
        }
        if let Some(endpoint) = &cfg.endpoint {
            b = b
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = b.build()?;
        Ok(Remote {
            store: Arc::new(store),
            prefix: cfg.prefix.clone(),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Stores `body` as snapshot `snap` (one PUT: the object is whole or absent).
    pub async fn put(&self, snap: &SnapshotKey, body: Bytes) -> Result<(), BackupError> {
        let path = ObjectPath::from(snap.key(&self.prefix));
        self.store.put(&path, PutPayload::from(body)).await?;
        Ok(())
    }

    /// Stores the file at `file` as snapshot `snap`: one PUT up to [`PART_BYTES`], else a
    /// multipart upload (S3 shows the object only once it is complete, so it is whole or
    /// absent either way; a failed upload is aborted). Errors: reading the file, the store.
    pub async fn put_file(
        &self,
        snap: &SnapshotKey,
        file: &std::path::Path,
    ) -> Result<(), BackupError> {
        let mut f = tokio::fs::File::open(file).await?;
        let len = f.metadata().await?.len();
        if len <= PART_BYTES as u64 {
            let mut body = Vec::with_capacity(len as usize);
            f.read_to_end(&mut body).await?;
            return self.put(snap, Bytes::from(body)).await;
        }
        let path = ObjectPath::from(snap.key(&self.prefix));
        let mut up = self.store.put_multipart(&path).await?;
        match send_parts(&mut f, up.as_mut()).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if let Err(abort) = up.abort().await {
                    tracing::debug!(error = %abort, "backup: aborting a multipart upload failed");
                }
                Err(e)
            }
        }
    }

    /// Downloads snapshot `snap` into the file `to` (created or truncated), streamed: a large
    /// tenant is never held in memory.
    pub async fn get_to_file(
        &self,
        snap: &SnapshotKey,
        to: &std::path::Path,
    ) -> Result<(), BackupError> {
        let path = ObjectPath::from(snap.key(&self.prefix));
        let mut body = self.store.get(&path).await?.into_stream();
        let mut f = tokio::fs::File::create(to).await?;
        while let Some(piece) = body.try_next().await? {
            f.write_all(&piece).await?;
        }
        f.flush().await?;
        Ok(())
    }

    /// Deletes snapshot `snap` (absent is fine).
    pub async fn delete(&self, snap: &SnapshotKey) -> Result<(), BackupError> {
        let path = ObjectPath::from(snap.key(&self.prefix));
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every snapshot of `tenant`, oldest first (keys that are not snapshots are skipped).
    pub async fn snapshots(&self, tenant: &str) -> Result<Vec<SnapshotKey>, BackupError> {
        let dir = ObjectPath::from(tenant_dir(&self.prefix, tenant));
        let metas: Vec<_> = self.store.list(Some(&dir)).try_collect().await?;
        let mut snaps: Vec<SnapshotKey> = metas
            .iter()
            .filter_map(|m| SnapshotKey::parse(&self.prefix, m.location.as_ref()))
            .filter(|s| s.tenant == tenant)
            .collect();
        snaps.sort();
        Ok(snaps)
    }

    /// Every snapshot (and tombstone) of every tenant under the prefix, in one listing.
    pub async fn all_snapshots(&self) -> Result<Vec<SnapshotKey>, BackupError> {
        let dir = ObjectPath::from(tenants_dir(&self.prefix));
        let metas: Vec<_> = self.store.list(Some(&dir)).try_collect().await?;
        Ok(metas
            .iter()
            .filter_map(|m| SnapshotKey::parse(&self.prefix, m.location.as_ref()))
            .collect())
    }

    /// Stores a chunk of the ingest log.
    pub async fn put_log(&self, chunk: &LogChunkKey, body: Bytes) -> Result<(), BackupError> {
        let path = ObjectPath::from(chunk.key(&self.prefix));
        self.store.put(&path, PutPayload::from(body)).await?;
        Ok(())
    }

    /// The bytes of a log chunk.
    pub async fn get_log(&self, chunk: &LogChunkKey) -> Result<Bytes, BackupError> {
        let path = ObjectPath::from(chunk.key(&self.prefix));
        Ok(self.store.get(&path).await?.bytes().await?)
    }

    /// Deletes a log chunk (absent is fine).
    pub async fn delete_log(&self, chunk: &LogChunkKey) -> Result<(), BackupError> {
        let path = ObjectPath::from(chunk.key(&self.prefix));
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every log chunk with its upload time (Unix ms), in log order.
    pub async fn log_chunks(&self) -> Result<Vec<(LogChunkKey, u64)>, BackupError> {
        let dir = ObjectPath::from(log_dir(&self.prefix));
        let metas: Vec<_> = self.store.list(Some(&dir)).try_collect().await?;
        let mut chunks: Vec<(LogChunkKey, u64)> = metas
            .iter()
            .filter_map(|m| {
                let k = LogChunkKey::parse(&self.prefix, m.location.as_ref())?;
                Some((k, m.last_modified.timestamp_millis().max(0) as u64))
            })
            .collect();
        chunks.sort();
        Ok(chunks)
    }

    /// Every tenant with at least one object in the bucket, sorted.
    pub async fn tenants(&self) -> Result<Vec<String>, BackupError> {
        let dir = ObjectPath::from(tenants_dir(&self.prefix));
        let listed = self.store.list_with_delimiter(Some(&dir)).await?;
        let mut ids: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// Sends `f` as the parts of `up`, one [`PART_BYTES`] part at a time, and completes it.
async fn send_parts(
    f: &mut tokio::fs::File,
    up: &mut dyn MultipartUpload,
) -> Result<(), BackupError> {
    loop {
        let mut part = Vec::with_capacity(PART_BYTES);
        (&mut *f)
            .take(PART_BYTES as u64)
            .read_to_end(&mut part)
            .await?;
        if part.is_empty() {
            break;
        }
        up.put_part(PutPayload::from(part)).await?;
    }
    up.complete().await?;
    Ok(())
}
