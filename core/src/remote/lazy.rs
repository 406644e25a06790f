//! A mount served from the remote tier before its objects are here: the tree is built from
//! each object's index, read by ranges and checked against the object's name, and an object is
//! fetched whole on the first read of one of its files.
//!
//! ```text
//! object  ab/cd/{h}.dxpkg   [header | buckets | entries | strings][ data ………………………… ]
//!                            └──── ranges 1–2: the index ────┘    ▲ range 3: scripts, links,
//! sidecar ab/cd/{h}.dxcv     CV of every 16 KiB group              entry_points.txt (if any)
//! ```
//!
//! Nothing the remote says is taken on trust: the sidecar's group CVs must merge to the
//! object's name (so each is the true CV of its group, see docs/formats/dxcv.md), and every
//! group a range brings must hash to its CV, before its bytes are parsed. The index and the few
//! files the tree copies (launchers, scripts, link targets) are thus as verified as the whole
//! object would be. An object without a sidecar (one group or less, or pushed before sidecars
//! were) is fetched whole instead.
//!
//! A read that needs an absent object fetches it ([`RemoteTier::fetch_for_read`]); a failure is
//! remembered, so the reads of that package fail at once until a backoff has passed (2 s, then
//! doubling up to 60 s); the front end logs one line per attempt, naming the package, object
//! and URL.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::dxpkg::{DxpkgReader, EntryKind, PackageLayout, PlannedEntry, Scheme};
use crate::hash::ContentHash;
use crate::store::{PackageStore, groups, sidecar};

use super::{RemoteError, RemoteTier, lock, object_key};

/// The largest sidecar accepted: 32 bytes per 16 KiB of an object of at most `MAX_OBJECT`.
const MAX_SIDECAR: u64 = 32 + (super::MAX_OBJECT >> groups::GROUP_SHIFT) * 32;
/// The index is read in one range when it fits in this many groups (one round trip for most
/// packages); a larger one takes a second range.
const FIRST_GROUPS: u64 = 4;
/// Groups the tree needs that lie at most this many groups apart are read in one range.
const GAP_GROUPS: u64 = 4;
/// The wait before a failed object is asked again; it doubles per failure, up to the maximum.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What the tree needs of an object it does not have: its entries and where their bytes lie,
/// with the bytes of scripts and links, and its launchers. Every byte of it was checked
/// against the object's name.
#[derive(Debug, Clone)]
pub struct RemoteIndex {
    /// The object.
    pub hash: ContentHash,
    /// Its `.dist-info` directory.
    pub dist_info: String,
    /// Its entries, as [`crate::tree::TreeSpec::build_with`] takes them.
    pub layout: PackageLayout,
    /// Its console and GUI script launchers, as `(file name in bin/, bytes)`.
    pub launchers: Vec<(String, Vec<u8>)>,
    /// Bytes fetched to learn all this (sidecar and ranges).
    pub fetched: u64,
}

/// An object a read needed and could not get: reads of its package fail (`EIO`) until
/// `retry_in` has passed.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "Cannot fetch package {label} (object `{hash}`) from `{url}`: {why}; its files give EIO, \
     asked again on a read after {}s",
    retry_in.as_secs()
)]
pub struct FetchFailed {
    /// The package's name and version, or what the object is when unknown.
    pub label: String,
    /// The object.
    pub hash: ContentHash,
    /// Where it was asked for.
    pub url: String,
    /// Why it failed.
    pub why: String,
    /// How long reads fail without asking again.
    pub retry_in: Duration,
    /// False for the read that asked (and logged), true for the reads failed from memory.
    pub repeated: bool,
}

/// The last failed fetch of an object, for the backoff.
#[derive(Debug)]
pub(super) struct Failure {
    at: Instant,
    wait: Duration,
    why: String,
}

/// An object's bytes as far as fetched: the groups not fetched are zero pages never touched.
struct Image {
    bytes: Vec<u8>,
    cvs: Vec<blake3::hazmat::ChainingValue>,
    have: Vec<bool>,
}

impl RemoteTier {
    /// The object the wheel whose sha256 is `sha256` became, by the remote's record (not
    /// fetched, not checked: see [`RemoteTier::object_index`]).
    pub fn wheel_record(&self, sha256: &str) -> Result<Option<ContentHash>, RemoteError> {
        self.record(&super::wheel_key(sha256))
    }

    /// The bytecode pack of object `package` for the interpreter `tag`, by the remote's record.
    pub fn pack_record(
        &self,
        package: &ContentHash,
        tag: &str,
    ) -> Result<Option<ContentHash>, RemoteError> {
        if !super::is_safe_component(tag) {
            return Ok(None);
        }
        self.record(&super::pack_key(package, tag))
    }

    /// Fetches `package` and `pack` (its bytecode pack) together whenever a read needs one of
    /// them.
    /// The pack is named after its package in the log (name the package first).
    pub fn pair_objects(&self, package: ContentHash, pack: ContentHash) {
        self.siblings.insert(package, pack);
        self.siblings.insert(pack, package);
        if let Some(label) = self.labels.get(&package).map(|l| l.clone()) {
            self.labels
                .entry(pack)
                .or_insert_with(|| format!("{label} (its bytecode pack)"));
        }
    }

    /// Names object `hash` for the log lines of [`RemoteTier::fetch_for_read`].
    pub fn name_object(&self, hash: ContentHash, label: String) {
        self.labels.insert(hash, label);
    }

    /// Brings object `hash` into `store` for a read that needs it. Concurrent reads of one
    /// object wait for one fetch; after a failure, reads fail at once (`repeated`) until the
    /// backoff has passed, then the next read asks again. The caller logs the error of an
    /// attempt (`repeated` false): one line per attempt, not per read.
    pub fn fetch_for_read(
        &self,
        store: &PackageStore,
        hash: &ContentHash,
    ) -> Result<(), Box<FetchFailed>> {
        let slot = self.reads.entry(*hash).or_default().clone();
        let mut last = lock(&slot);
        let failed = |why: String, retry_in: Duration, repeated: bool| FetchFailed {
            label: self.labels.get(hash).map_or_else(
                || "(a bytecode pack or unnamed package)".to_string(),
                |l| l.clone(),
            ),
            hash: *hash,
            url: self.location(&object_key(hash)),
            why,
            retry_in,
            repeated,
        };
        if let Some(f) = &*last
            && f.at.elapsed() < f.wait
        {
            return Err(Box::new(failed(
                f.why.clone(),
                f.wait - f.at.elapsed(),
                true,
            )));
        }
        // A package's object and its bytecode pack are fetched together: an import reads the
        // pack's `.pyc` first and the object's `.so` next, and would otherwise wait for two
        // fetches one after the other.
        let sibling = self
            .siblings
            .get(hash)
            .map(|s| *s)
            .filter(|s| !store.contains(s));
        let fetched = std::thread::scope(|scope| {
            if let Some(sibling) = sibling {
                // Its failure is found (and logged) by a read of its own.
                scope.spawn(move || self.fetch_object(store, &sibling).ok());
            }
            self.fetch_object(store, hash)
        });
        let why = match fetched {
            Ok(true) => {
                *last = None;
                return Ok(());
            }
            Ok(false) => "the remote store does not have it".to_string(),
            Err(e) => crate::mount::reason_of(&e),
        };
        let wait = last
            .as_ref()
            .map_or(RETRY_FIRST, |f| (f.wait * 2).min(RETRY_MAX));
        let error = failed(why.clone(), wait, false);
        *last = Some(Failure {
            at: Instant::now(),
            wait,
            why,
        });
        Err(Box::new(error))
    }

    /// The index of object `hash`, read by ranges and verified (see the module docs); `None`
    /// when the remote has no sidecar for it (fetch it whole instead).
    pub fn object_index(&self, hash: &ContentHash) -> Result<Option<RemoteIndex>, RemoteError> {
        let key = sidecar_key(hash);
        let Some(side) = self.get(&key, MAX_SIDECAR)? else {
            return Ok(None);
        };
        let bad = |why: String| RemoteError::BadSidecar {
            hash: *hash,
            url: self.location(&key),
            why,
        };
        let len = side
            .get(16..24)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
            .ok_or_else(|| bad(format!("{} bytes, shorter than its header", side.len())))?;
        if len > super::MAX_OBJECT {
            return Err(bad(format!("an object of {len} bytes is too large")));
        }
        let cvs = sidecar::decode(&side, hash, len).map_err(|e| bad(e.to_string()))?;
        let mut fetched = side.len() as u64;
        let groups = groups::group_count(len);
        let mut image = Image {
            bytes: vec![0; usize::try_from(len).map_err(|_| bad("too large".into()))?],
            cvs,
            have: vec![false; usize::try_from(groups).unwrap_or(usize::MAX)],
        };
        fetched += self.fill(hash, &mut image, 0..FIRST_GROUPS.min(groups))?;
        let corrupt = |e: crate::dxpkg::DxpkgError| RemoteError::BadIndex {
            hash: *hash,
            url: self.location(&object_key(hash)),
            why: e.to_string(),
        };
        let data_off = DxpkgReader::new(image.bytes.as_slice())
            .map_err(corrupt)?
            .data_offset();
        let index_groups = data_off.div_ceil(groups::GROUP_LEN).min(groups);
        if index_groups > FIRST_GROUPS {
            fetched += self.fill(hash, &mut image, FIRST_GROUPS..index_groups)?;
        }
        // The files the tree copies: scripts and link targets (inline in the tree) and the
        // entry points (the launchers).
        let wanted: Vec<std::ops::Range<u64>> = {
            let reader = DxpkgReader::new(image.bytes.as_slice()).map_err(corrupt)?;
            let entry_points = format!("{}/entry_points.txt", reader.dist_info());
            let mut wanted = Vec::new();
            for e in reader.entries() {
                let e = e.map_err(corrupt)?;
                if e.kind == EntryKind::Symlink
                    || e.scheme == Scheme::Scripts
                    || (e.scheme == Scheme::SitePackages && e.path == entry_points)
                {
                    wanted.push(e.data_offset..e.data_offset + e.data.len() as u64);
                }
            }
            wanted
        };
        for groups in group_runs(&wanted) {
            fetched += self.fill(hash, &mut image, groups)?;
        }
        let reader = DxpkgReader::new(image.bytes.as_slice()).map_err(corrupt)?;
        let entry_points = format!("{}/entry_points.txt", reader.dist_info());
        let mut entries = Vec::new();
        let mut launchers = Vec::new();
        for e in reader.entries() {
            let e = e.map_err(corrupt)?;
            let copied = e.kind == EntryKind::Symlink || e.scheme == Scheme::Scripts;
            if e.scheme == Scheme::SitePackages && e.path == entry_points {
                launchers = crate::scripts::launchers_from(e.data);
            }
            entries.push((
                PlannedEntry {
                    scheme: e.scheme,
                    path: e.path.to_string(),
                    kind: e.kind,
                    mode: e.mode,
                    data_offset: e.data_offset,
                    len: e.data.len() as u64,
                },
                copied.then(|| e.data.to_vec()),
            ));
        }
        Ok(Some(RemoteIndex {
            hash: *hash,
            dist_info: reader.dist_info().to_string(),
            layout: PackageLayout { len, entries },
            launchers,
            fetched,
        }))
    }

    /// Fetches the groups `range` of object `hash` not fetched yet (one ranged GET) and checks
    /// each against its CV; the bytes fetched.
    fn fill(
        &self,
        hash: &ContentHash,
        image: &mut Image,
        range: std::ops::Range<u64>,
    ) -> Result<u64, RemoteError> {
        let start = (range.start..range.end).find(|&g| !image.have[g as usize]);
        let Some(start) = start else {
            return Ok(0);
        };
        let len = image.bytes.len() as u64;
        let bytes_range = start * groups::GROUP_LEN..(range.end * groups::GROUP_LEN).min(len);
        let key = object_key(hash);
        let got =
            self.get_range(&key, bytes_range.clone())?
                .ok_or_else(|| RemoteError::BadIndex {
                    hash: *hash,
                    url: self.location(&key),
                    why: "the object is not there, although its sidecar is".to_string(),
                })?;
        let want = bytes_range.end - bytes_range.start;
        if got.len() as u64 != want {
            return Err(RemoteError::BadIndex {
                hash: *hash,
                url: self.location(&key),
                why: format!(
                    "asked for {want} bytes at {}, got {}",
                    bytes_range.start,
                    got.len()
                ),
            });
        }
        let at = bytes_range.start as usize;
        for g in start..range.end {
            let span = groups::group_range(g, len);
            let part = &got[span.start - at..span.end - at];
            if groups::group_cv(g, part) != image.cvs[g as usize] {
                return Err(RemoteError::Corrupt {
                    hash: *hash,
                    url: self.location(&key),
                    actual: ContentHash::of(part),
                });
            }
            image.bytes[span].copy_from_slice(part);
            image.have[g as usize] = true;
        }
        Ok(want)
    }
}

/// `ab/cd/{h}.dxcv`: the object's group CVs, beside it as in the local store.
pub(super) fn sidecar_key(hash: &ContentHash) -> String {
    let key = object_key(hash);
    format!("{}.dxcv", key.trim_end_matches(".dxpkg"))
}

/// The groups holding the byte ranges `wanted`, as runs of groups to fetch in one range each:
/// runs closer than [`GAP_GROUPS`] are merged (a few unneeded groups cost less than a request).
fn group_runs(wanted: &[std::ops::Range<u64>]) -> Vec<std::ops::Range<u64>> {
    let mut spans: Vec<std::ops::Range<u64>> = wanted
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.start / groups::GROUP_LEN..r.end.div_ceil(groups::GROUP_LEN))
        .collect();
    spans.sort_by_key(|r| r.start);
    let mut runs: Vec<std::ops::Range<u64>> = Vec::new();
    for span in spans {
        match runs.last_mut() {
            Some(last) if span.start <= last.end + GAP_GROUPS => last.end = last.end.max(span.end),
            _ => runs.push(span),
        }
    }
    runs
}

/// The state of reads of one object, shared by the reads that wait for its fetch.
pub(super) type ReadSlot = Arc<Mutex<Option<Failure>>>;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::dxpkg::DxpkgWriter;
    use crate::index::ClientOptions;

    // One range alone is a list of one range here, not a range to collect.
    #[allow(clippy::single_range_in_vec_init)]
    #[test]
    fn nearby_files_share_a_range_and_far_ones_do_not() {
        let g = groups::GROUP_LEN;
        assert_eq!(group_runs(&[]), Vec::<std::ops::Range<u64>>::new());
        assert_eq!(group_runs(&[5..5]), Vec::<std::ops::Range<u64>>::new());
        assert_eq!(group_runs(&[0..1, g + 1..g + 2]), vec![0..2]);
        assert_eq!(
            group_runs(&[100 * g..100 * g + 1, 0..1]),
            vec![0..1, 100..101]
        );
        assert_eq!(group_runs(&[0..1, 5 * g..5 * g + 1]), vec![0..6]);
        assert_eq!(group_runs(&[0..3 * g]), vec![0..3]);
    }

    /// One file of a generated package: (scheme, size, fill byte).
    type GenFile = (Scheme, usize, u8);

    /// The bytes of a package of `files` (an entry points file when `scripts`).
    fn package(files: &[GenFile], scripts: bool) -> Vec<u8> {
        let mut w = DxpkgWriter::new("demo", "1", "demo-1.dist-info");
        for (i, (scheme, size, fill)) in files.iter().enumerate() {
            let path = format!("demo/f{i}.bin");
            w.add(*scheme, &path, EntryKind::File, 0o644, vec![*fill; *size]);
        }
        w.add(
            Scheme::SitePackages,
            "demo/link",
            EntryKind::Symlink,
            0o777,
            b"f0.bin".to_vec(),
        );
        if scripts {
            w.add(
                Scheme::SitePackages,
                "demo-1.dist-info/entry_points.txt",
                EntryKind::File,
                0o644,
                b"[console_scripts]\ndemo = demo:main\n".to_vec(),
            );
        }
        w.finish().unwrap()
    }

    /// A directory tier holding `bytes` as an object (and its sidecar, when it has one).
    fn served(dir: &std::path::Path, bytes: &[u8]) -> (RemoteTier, ContentHash) {
        let tier = RemoteTier::open(dir.to_str().unwrap(), &ClientOptions::default()).unwrap();
        let (hash, cvs) = groups::hash_groups(bytes);
        tier.put(&object_key(&hash), bytes).unwrap();
        if cvs.len() >= 2 {
            let side = sidecar::encode(bytes.len() as u64, &cvs);
            tier.put(&sidecar_key(&hash), &side).unwrap();
        }
        (tier, hash)
    }

    fn file_strategy() -> impl Strategy<Value = GenFile> {
        (
            prop_oneof![
                Just(Scheme::SitePackages),
                Just(Scheme::Scripts),
                Just(Scheme::Data)
            ],
            0usize..60_000,
            any::<u8>(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The index read by ranges is the object's own: the same entries at the same offsets,
        /// the bytes of scripts and links, the launchers, the length; and fewer bytes than the
        /// object were fetched once it is large.
        #[test]
        fn an_index_read_by_ranges_is_the_objects_own(
            files in proptest::collection::vec(file_strategy(), 1..24),
            scripts in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let bytes = package(&files, scripts);
            let (tier, hash) = served(&dir.path().join("remote"), &bytes);
            let Some(index) = tier.object_index(&hash).unwrap() else {
                // Only an object of one group has no sidecar.
                prop_assert!(bytes.len() as u64 <= groups::GROUP_LEN);
                return Ok(());
            };
            let store = PackageStore::open(dir.path().join("store"));
            store.store(&bytes).unwrap();
            let stored = store.get(&hash).unwrap();
            prop_assert_eq!(index.layout.len, bytes.len() as u64);
            prop_assert_eq!(&index.dist_info, "demo-1.dist-info");
            prop_assert_eq!(&index.launchers, &stored.launchers().unwrap());
            let reader = stored.reader();
            let want: Vec<_> = reader.entries().map(|e| e.unwrap()).collect();
            prop_assert_eq!(index.layout.entries.len(), want.len());
            for ((got, data), e) in index.layout.entries.iter().zip(&want) {
                prop_assert_eq!(got.scheme, e.scheme);
                prop_assert_eq!(&got.path, e.path);
                prop_assert_eq!(got.kind, e.kind);
                prop_assert_eq!(got.mode, e.mode);
                prop_assert_eq!(got.data_offset, e.data_offset);
                prop_assert_eq!(got.len, e.data.len() as u64);
                let copied = e.kind == EntryKind::Symlink || e.scheme == Scheme::Scripts;
                prop_assert_eq!(data.as_deref(), copied.then_some(e.data));
            }
            prop_assert!(index.fetched > 0);
        }
    }

    /// A changed byte in the groups the index is read from is refused; one in a file's data
    /// is never read (the object is fetched, and checked whole, on a read).
    #[test]
    fn a_changed_index_byte_is_refused_and_data_is_not_read() {
        let files = [
            (Scheme::SitePackages, 200_000, 5u8),
            (Scheme::SitePackages, 10, 6),
        ];
        let bytes = package(&files, true);
        for (at, refused) in [(70, true), (bytes.len() / 2, false)] {
            let dir = tempfile::tempdir().unwrap();
            let (tier, hash) = served(&dir.path().join("remote"), &bytes);
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            let path = dir.path().join("remote").join(object_key(&hash));
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&path, &changed).unwrap();
            let got = tier.object_index(&hash);
            if refused {
                assert!(matches!(got, Err(RemoteError::Corrupt { .. })), "{got:?}");
            } else {
                let index = got.unwrap().unwrap();
                assert!(index.fetched < bytes.len() as u64 / 2, "{}", index.fetched);
            }
        }
    }

    /// A sidecar that is not the object's is refused; an object without one is not read by
    /// ranges.
    #[test]
    fn a_wrong_or_missing_sidecar_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = package(&[(Scheme::SitePackages, 100_000, 1)], false);
        let (tier, hash) = served(&dir.path().join("remote"), &bytes);
        let side = dir.path().join("remote").join(sidecar_key(&hash));
        let mut wrong = std::fs::read(&side).unwrap();
        let last = wrong.len() - 1;
        wrong[last] ^= 1;
        std::fs::remove_file(&side).unwrap();
        std::fs::write(&side, &wrong).unwrap();
        let got = tier.object_index(&hash);
        assert!(
            matches!(got, Err(RemoteError::BadSidecar { .. })),
            "{got:?}"
        );
        std::fs::remove_file(&side).unwrap();
        assert!(tier.object_index(&hash).unwrap().is_none());
    }

    /// A read's fetch that fails is remembered: the next reads fail at once (not asking),
    /// until the backoff has passed; then a read asks again and, the object there, gets it.
    #[test]
    fn a_failed_fetch_for_a_read_waits_for_its_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = package(&[(Scheme::SitePackages, 50_000, 1)], false);
        let hash = ContentHash::of(&bytes);
        let tier = RemoteTier::open(
            dir.path().join("remote").to_str().unwrap(),
            &ClientOptions::default(),
        )
        .unwrap();
        tier.name_object(hash, "`demo 1`".to_string());
        let store = PackageStore::open(dir.path().join("store"));
        let first = tier.fetch_for_read(&store, &hash).unwrap_err();
        assert!(!first.repeated);
        assert_eq!(first.retry_in, RETRY_FIRST);
        let text = first.to_string();
        assert!(
            text.contains("`demo 1`") && text.contains(&hash.to_hex().to_string()),
            "{text}"
        );
        assert!(text.contains(&object_key(&hash)), "{text}");
        tier.put(&object_key(&hash), &bytes).unwrap();
        let again = tier.fetch_for_read(&store, &hash).unwrap_err();
        assert!(again.repeated, "asked again before the backoff");
        assert!(!store.contains(&hash));
        // The backoff has passed.
        let slot = tier.reads.get(&hash).unwrap().clone();
        if let Some(f) = lock(&slot).as_mut() {
            f.at -= RETRY_FIRST;
        }
        tier.fetch_for_read(&store, &hash).unwrap();
        assert!(store.contains(&hash));
        assert_eq!(tier.stats().objects, 1);
    }

    /// A read of a package's object fetches its bytecode pack too (in parallel), and the
    /// other way round; an unpaired object comes alone.
    #[test]
    fn a_read_fetches_a_package_and_its_pack_together() {
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().join("remote");
        let object = package(&[(Scheme::SitePackages, 40_000, 1)], false);
        let pack = package(&[(Scheme::SitePackages, 30_000, 2)], false);
        let alone = package(&[(Scheme::SitePackages, 20_000, 3)], false);
        let (tier, o) = served(&remote, &object);
        let (_, p) = served(&remote, &pack);
        let (_, a) = served(&remote, &alone);
        tier.name_object(o, "`demo 1`".to_string());
        tier.pair_objects(o, p);
        let label = tier.labels.get(&p).map(|l| l.clone());
        assert_eq!(label.as_deref(), Some("`demo 1` (its bytecode pack)"));
        let store = PackageStore::open(dir.path().join("store"));
        tier.fetch_for_read(&store, &p).unwrap();
        assert!(store.contains(&o) && store.contains(&p));
        tier.fetch_for_read(&store, &a).unwrap();
        assert_eq!(tier.stats().objects, 3);
    }
}
