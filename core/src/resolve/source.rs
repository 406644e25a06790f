//! Where the solver gets files and metadata: the [`PackageSource`] trait, an in-memory source
//! for tests, and [`IndexSource`] over an [`IndexClient`].
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use pep508_rs::PackageName;

use crate::index::{IndexClient, IndexError, IndexFile, Listing};
use crate::wheel::WheelMetadata;

/// A failure to list a package's files or read a file's metadata. Cheap to clone: sources keep
/// failures in their caches so that a second request gets the same answer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SourceError {
    /// The index failed (unknown package, network, HTTP status, hash mismatch, …); its message
    /// names the URL or the locations searched.
    #[error(transparent)]
    Index(Arc<IndexError>),
    /// A source distribution could not be built for its metadata.
    #[error(transparent)]
    Build(Arc<crate::build::BuildError>),
    /// The in-memory source has no metadata for a file (a mistake in a test's data).
    #[error("No metadata for `{0}`")]
    NoMetadata(String),
}

impl From<IndexError> for SourceError {
    fn from(e: IndexError) -> Self {
        Self::Index(Arc::new(e))
    }
}

/// What the solver asks of the world. Implementations must answer the same question the same
/// way within one solve (the solver relies on it), and may be asked from several threads at once
/// (metadata prefetching).
pub trait PackageSource: Sync {
    /// Every distribution file of `name` (wheels and source distributions). An unknown package
    /// is [`SourceError::Index`] with [`IndexError::NotFound`].
    fn files(&self, name: &PackageName) -> Result<Arc<Listing>, SourceError>;

    /// The core metadata of `file`, a wheel of `name`.
    fn metadata(
        &self,
        name: &PackageName,
        file: &IndexFile,
    ) -> Result<Arc<WheelMetadata>, SourceError>;
}

/// A source held in memory: files per package, metadata per file URL. For tests and benches.
#[derive(Clone, Debug, Default)]
pub struct InMemorySource {
    files: BTreeMap<PackageName, Vec<IndexFile>>,
    metadata: BTreeMap<String, Arc<WheelMetadata>>,
}

impl InMemorySource {
    /// An empty source: every package is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `file` to `name`'s files, with the metadata a wheel has (`None` for an sdist).
    pub fn add(&mut self, name: PackageName, file: IndexFile, metadata: Option<WheelMetadata>) {
        if let Some(m) = metadata {
            self.metadata.insert(file.url.clone(), Arc::new(m));
        }
        self.files.entry(name).or_default().push(file);
    }
}

impl PackageSource for InMemorySource {
    fn files(&self, name: &PackageName) -> Result<Arc<Listing>, SourceError> {
        match self.files.get(name) {
            Some(files) => Ok(Arc::new(files.clone().into())),
            None => Err(IndexError::NotFound {
                name: name.to_string(),
                searched: vec!["memory".to_string()],
            }
            .into()),
        }
    }

    fn metadata(
        &self,
        _name: &PackageName,
        file: &IndexFile,
    ) -> Result<Arc<WheelMetadata>, SourceError> {
        self.metadata
            .get(&file.url)
            .cloned()
            .ok_or_else(|| SourceError::NoMetadata(file.filename.clone()))
    }
}

/// [`PackageSource`] over an [`IndexClient`]: project pages and metadata are fetched once per
/// process and kept in memory; concurrent requests for the same page or file wait for the one
/// in flight instead of fetching again.
#[derive(Debug)]
pub struct IndexSource<'a> {
    client: &'a IndexClient,
    pages: DashMap<PackageName, Shared<Arc<Listing>>>,
    metadata: DashMap<String, Shared<Arc<WheelMetadata>>>,
}

impl<'a> IndexSource<'a> {
    /// A source asking `client`.
    pub fn new(client: &'a IndexClient) -> Self {
        Self {
            client,
            pages: DashMap::new(),
            metadata: DashMap::new(),
        }
    }

    /// Fetches a file's metadata: the PEP 658 file, range requests or the whole wheel, through
    /// the client's metadata cache (see `IndexClient::metadata`).
    fn fetch_metadata(&self, file: &IndexFile) -> Result<WheelMetadata, SourceError> {
        Ok(self.client.metadata(file)?)
    }
}

/// One answer, computed once even when asked for from several threads at the same time.
pub(super) type Shared<T, E = SourceError> = Arc<OnceLock<Result<T, E>>>;

/// Shares `compute`'s answer for `key` between every caller, running it once.
pub(super) fn once<K, T, E>(
    map: &DashMap<K, Shared<T, E>>,
    key: K,
    compute: impl FnOnce() -> Result<T, E>,
) -> Result<T, E>
where
    K: std::hash::Hash + Eq,
    T: Clone,
    E: Clone,
{
    // The map's shard lock is released before computing: only the cell is waited on.
    let cell = map.entry(key).or_default().clone();
    cell.get_or_init(compute).clone()
}

impl PackageSource for IndexSource<'_> {
    fn files(&self, name: &PackageName) -> Result<Arc<Listing>, SourceError> {
        once(&self.pages, name.clone(), || {
            Ok(self.client.listing(name.as_ref())?)
        })
    }

    fn metadata(
        &self,
        _name: &PackageName,
        file: &IndexFile,
    ) -> Result<Arc<WheelMetadata>, SourceError> {
        once(&self.metadata, file.url.clone(), || {
            self.fetch_metadata(file).map(Arc::new)
        })
    }
}
