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
const FIRST_GROUPS: u64 = 8;
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

    /// Names object `hash` for the log lines of [`RemoteTier::fetch_for_read`].
    pub fn name_object(&self, hash: ContentHash, label: String) {
        self.labels.insert(hash, label);
    }

    /// Brings object `hash` into `store` for a read that needs it. Concurrent reads of one
    /// object wait for one fetch; after a failure, reads fail at once (`repeated`) until the
    /// backoff has passed, then the next read asks again. The caller logs the error of an
    /// attempt (`repeated` false): one line per attempt, not per read.
    pub fn fetch_for_read(&self, store: &PackageStore, hash: &ContentHash) -> Result<(), FetchFailed> {
        let slot = self.reads.entry(*hash).or_default().clone();
        let mut last = lock(&slot);
        let failed = |why: String, retry_in: Duration, repeated: bool| FetchFailed {
            label: self
                .labels
                .get(hash)
                .map_or_else(|| "(a bytecode pack or unnamed package)".to_string(), |l| l.clone()),
            hash: *hash,
            url: self.location(&object_key(hash)),
            why,
            retry_in,
            repeated,
        };
        if let Some(f) = &*last
            && f.at.elapsed() < f.wait
        {
            return Err(failed(f.why.clone(), f.wait - f.at.elapsed(), true));
        }
        let why = match self.fetch_object(store, hash) {
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
        Err(error)
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
        let got = self
            .get_range(&key, bytes_range.clone())?
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
                why: format!("asked for {want} bytes at {}, got {}", bytes_range.start, got.len()),
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
    use super::*;

    #[test]
    fn nearby_files_share_a_range_and_far_ones_do_not() {
        let g = groups::GROUP_LEN;
        assert_eq!(group_runs(&[]), Vec::<std::ops::Range<u64>>::new());
        assert_eq!(group_runs(&[5..5]), Vec::<std::ops::Range<u64>>::new());
        assert_eq!(group_runs(&[0..1, g + 1..g + 2]), vec![0..2]);
        assert_eq!(group_runs(&[100 * g..100 * g + 1, 0..1]), vec![0..1, 100..101]);
        assert_eq!(group_runs(&[0..1, 5 * g..5 * g + 1]), vec![0..6]);
        assert_eq!(group_runs(&[0..3 * g]), vec![0..3]);
    }
}
