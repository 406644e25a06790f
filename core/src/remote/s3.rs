//! The S3 tier (`s3://bucket/prefix`), through `object_store`, whose client is async: the tier
//! owns a current-thread tokio runtime and each call blocks on it, so any thread (an install's
//! workers, later a FUSE thread) can ask. Concurrent callers each drive their own request; the
//! runtime's I/O driver is shared. Credentials, region and endpoint come from the `AWS_*`
//! variables (`AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP=true` for a local server); requests are
//! path-style unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST` says otherwise. A put is atomic on S3.
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, PutPayload, RetryConfig};

use super::RemoteError;

pub(super) struct S3Tier {
    bucket: String,
    prefix: String,
    store: Box<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
}

impl S3Tier {
    /// `rest` is the URL after `s3://`: `bucket[/prefix]`.
    pub(super) fn open(url: &str, rest: &str) -> Result<Self, RemoteError> {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(RemoteError::InvalidUrl {
                url: url.to_string(),
                reason: "no bucket".to_string(),
            });
        }
        let setup = |source| RemoteError::S3Setup {
            url: url.to_string(),
            source: Box::new(source),
        };
        // Fewer and shorter retries than the crate's (10 over up to 3 minutes): a store that is
        // down should be reported within seconds.
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
        };
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry)
            .build()
            .map_err(setup)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RemoteError::Io {
                url: url.to_string(),
                source: e,
            })?;
        Ok(Self {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            store: Box::new(store),
            runtime,
        })
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    pub(super) fn location(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.path(key))
    }

    fn error(&self, key: &str, source: object_store::Error) -> RemoteError {
        RemoteError::S3 {
            url: self.location(key),
            source: Box::new(source),
        }
    }

    pub(super) fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        let path = self.path(key);
        let got = self.runtime.block_on(async {
            let result = self.store.get(&path).await?;
            result.bytes().await
        });
        match got {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(key, e)),
        }
    }

    pub(super) fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        let path = self.path(key);
        match self
            .runtime
            .block_on(self.store.get_range(&path, range.clone()))
        {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(key, e)),
        }
    }

    pub(super) fn exists(&self, key: &str) -> Result<bool, RemoteError> {
        match self.runtime.block_on(self.store.head(&self.path(key))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error(key, e)),
        }
    }

    pub(super) fn put(&self, key: &str, bytes: &[u8]) -> Result<(), RemoteError> {
        let payload = PutPayload::from(bytes.to_vec());
        self.runtime
            .block_on(self.store.put(&self.path(key), payload))
            .map(drop)
            .map_err(|e| self.error(key, e))
    }
}
