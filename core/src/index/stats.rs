//! What an [`IndexClient`](super::IndexClient) fetched and what it took from its caches, for
//! `-v` reports: counted where each request is decided, so that parallel work is counted once.
use std::ops::AddAssign;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of one client's work so far (see [`super::IndexClient::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Project pages fetched with a full answer (or read from a `file://` index).
    pub pages_fetched: u64,
    /// Cached project pages revalidated by the server (`304 Not Modified`).
    pub pages_revalidated: u64,
    /// Project pages served from the cache without a request (fresh, or `--offline`).
    pub pages_cached: u64,
    /// Core metadata fetched (`.metadata` file, range requests or the whole file).
    pub metadata_fetched: u64,
    /// Core metadata read from the metadata cache.
    pub metadata_cached: u64,
    /// Files downloaded over HTTP(S).
    pub downloads: u64,
    /// Bytes of those downloads.
    pub download_bytes: u64,
    /// Files read from the download cache, or from local paths, instead of downloaded.
    pub downloads_cached: u64,
}

impl AddAssign for ClientStats {
    fn add_assign(&mut self, other: Self) {
        self.pages_fetched += other.pages_fetched;
        self.pages_revalidated += other.pages_revalidated;
        self.pages_cached += other.pages_cached;
        self.metadata_fetched += other.metadata_fetched;
        self.metadata_cached += other.metadata_cached;
        self.downloads += other.downloads;
        self.download_bytes += other.download_bytes;
        self.downloads_cached += other.downloads_cached;
    }
}

/// The counters behind [`ClientStats`], bumped from any thread.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) pages_fetched: AtomicU64,
    pub(super) pages_revalidated: AtomicU64,
    pub(super) pages_cached: AtomicU64,
    pub(super) metadata_fetched: AtomicU64,
    pub(super) metadata_cached: AtomicU64,
    pub(super) downloads: AtomicU64,
    pub(super) download_bytes: AtomicU64,
    pub(super) downloads_cached: AtomicU64,
}

impl Counters {
    /// Adds one to `counter`.
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A downloaded file of `bytes`.
    pub(super) fn downloaded(&self, bytes: usize) {
        Self::bump(&self.downloads);
        self.download_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> ClientStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClientStats {
            pages_fetched: get(&self.pages_fetched),
            pages_revalidated: get(&self.pages_revalidated),
            pages_cached: get(&self.pages_cached),
            metadata_fetched: get(&self.metadata_fetched),
            metadata_cached: get(&self.metadata_cached),
            downloads: get(&self.downloads),
            download_bytes: get(&self.download_bytes),
            downloads_cached: get(&self.downloads_cached),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClientStats;
    use crate::index::fixture::Fixture;
    use crate::wheel::testing::WheelBuilder;

    const WHEEL: &str = "foo-1.0-py3-none-any.whl";

    /// One run: list `foo`, read its metadata, download it; the client's counts.
    fn run(fx: &Fixture) -> ClientStats {
        let c = fx.client();
        let file = c.wheels("foo").unwrap()[0].clone();
        // Asked again in the same run: the client's memo, not another page.
        c.wheels("foo").unwrap();
        c.metadata(&file).unwrap();
        c.download(&file.url, file.sha256.as_deref()).unwrap();
        c.stats()
    }

    #[test]
    fn each_request_is_counted_once_as_fetched_revalidated_or_cached() {
        let wheel = WheelBuilder::new("foo", "1.0").build();
        let fx = Fixture::serving(&[(WHEEL, &wheel)]);
        let cold = run(&fx);
        assert_eq!(
            cold,
            ClientStats {
                pages_fetched: 1,
                metadata_fetched: 1,
                downloads: 1,
                download_bytes: wheel.len() as u64,
                ..ClientStats::default()
            }
        );
        let warm = run(&fx);
        assert_eq!(
            warm,
            ClientStats {
                pages_revalidated: 1,
                metadata_cached: 1,
                downloads_cached: 1,
                ..ClientStats::default()
            }
        );
        let fx = Fixture::serving(&[(WHEEL, &wheel)]);
        fx.server.set_cache_control(Some("max-age=600"));
        run(&fx);
        let fresh = run(&fx);
        assert_eq!(fresh.pages_cached, 1, "{fresh:?}");
        assert_eq!(fresh.pages_fetched + fresh.pages_revalidated, 0);

        let mut sum = cold;
        sum += warm;
        assert_eq!(sum.pages_fetched + sum.pages_revalidated, 2);
        assert_eq!(sum.downloads + sum.downloads_cached, 2);
    }
}
