//! A test index over a temporary directory, with a cache directory for clients: shared by the
//! tests of the metadata paths and of the page cache.
use std::time::Duration;

use super::{ClientOptions, IndexClient, PackageSources};
use crate::testing::TestIndex;

pub(super) struct Fixture {
    /// The directory the index serves.
    pub(super) dir: tempfile::TempDir,
    /// The cache root of the clients.
    pub(super) cache: tempfile::TempDir,
    pub(super) server: TestIndex,
}

impl Fixture {
    /// An index serving `files` (name, bytes).
    pub(super) fn serving(files: &[(&str, &[u8])]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            fs_err::write(dir.path().join(name), bytes).unwrap();
        }
        let server = TestIndex::serve(dir.path()).unwrap();
        Self {
            dir,
            cache: tempfile::tempdir().unwrap(),
            server,
        }
    }

    /// Options keeping downloads, metadata and pages in the fixture's cache.
    pub(super) fn options(&self) -> ClientOptions {
        ClientOptions {
            cache_dir: Some(self.cache.path().join("wheels")),
            metadata_dir: Some(self.cache.path().join("metadata")),
            pages_dir: Some(self.cache.path().join("pages")),
            backoff: Duration::from_millis(1),
            ..ClientOptions::default()
        }
    }

    /// A new client (as a new run would make: its per-run memo is empty) over the index.
    pub(super) fn client_with(&self, options: ClientOptions) -> IndexClient {
        let sources = PackageSources::with_index(&self.server.index_url()).unwrap();
        IndexClient::new(sources, options).unwrap()
    }

    /// [`Self::client_with`] the fixture's [`Self::options`].
    pub(super) fn client(&self) -> IndexClient {
        self.client_with(self.options())
    }
}
