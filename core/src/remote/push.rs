//! `store push`: publishing what a lock needs to a tier, so that a machine with an empty store
//! installs the lock from the tier alone: each package's object and its wheel record, and for
//! every interpreter the local store holds bytecode for, the pack and its record. Files the
//! tier has are skipped (objects are immutable, records never rewritten); objects go before
//! the records that name them. Each object of more than one 16 KiB group goes with its
//! sidecar (`ab/cd/{hash}.dxcv`, the local store's own), which a lazy mount reads its index
//! by.
use crate::dpl::Lock;
use crate::hash::ContentHash;
use crate::store::PackageStore;

use super::{RemoteError, RemoteTier, object_key, pack_key, wheel_key};

/// What a push did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Objects written.
    pub objects: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Objects the tier had already.
    pub skipped: usize,
    /// Records written (wheel and bytecode records).
    pub records: usize,
}

/// One file to publish: an object (read from the local store) or a record (its text).
enum Item {
    Object(ContentHash),
    Record { key: String, object: ContentHash },
}

/// Publishes to `target` everything a machine needs to install `lock` from it (see the module
/// docs). Every package must be in `store`.
pub fn push_lock(
    store: &PackageStore,
    lock: &Lock,
    target: &RemoteTier,
) -> Result<PushReport, RemoteError> {
    target.check_writable()?;
    let tags = store_cache_tags(store);
    let mut objects = Vec::new();
    let mut records = Vec::new();
    for p in &lock.packages {
        let sha256 = p.wheel.sha256_hex();
        let hash = store
            .wheel_object(&sha256, &p.wheel.filename)
            .or(p.store_hash.filter(|h| store.contains(h)))
            .ok_or_else(|| RemoteError::NotStored {
                name: p.name.clone(),
                version: p.version.clone(),
            })?;
        objects.push(Item::Object(hash));
        records.push(Item::Record {
            key: wheel_key(&sha256),
            object: hash,
        });
        for tag in &tags {
            if let Some(pack) = crate::install::local_bytecode_pack(store, &hash, tag) {
                objects.push(Item::Object(pack));
                records.push(Item::Record {
                    key: pack_key(&hash, tag),
                    object: pack,
                });
            }
        }
    }
    let mut report = PushReport::default();
    // Objects first, every one of them, then the records: a record is never published before
    // the object it names.
    for batch in [objects, records] {
        let size = |item: &Item| match item {
            Item::Object(h) => fs_err::metadata(store.object_file(h)).map_or(0, |m| m.len()),
            Item::Record { .. } => 0,
        };
        let done = crate::parallel::map_largest_first(&batch, 8, size, |item| {
            push_one(store, target, item)
        });
        for (item, pushed) in batch.iter().zip(done) {
            match (item, pushed?) {
                (Item::Object(_), Some(bytes)) => {
                    report.objects += 1;
                    report.bytes += bytes;
                }
                (Item::Object(_), None) => report.skipped += 1,
                (Item::Record { .. }, Some(_)) => report.records += 1,
                (Item::Record { .. }, None) => {}
            }
        }
    }
    Ok(report)
}

/// Publishes `item` unless the tier has it: the bytes written, `None` when skipped.
fn push_one(
    store: &PackageStore,
    target: &RemoteTier,
    item: &Item,
) -> Result<Option<u64>, RemoteError> {
    let (key, bytes) = match item {
        Item::Object(hash) => return push_object(store, target, hash),
        Item::Record { key, object } => {
            if target.exists(key)? {
                return Ok(None);
            }
            (key.clone(), object.to_hex().into_bytes())
        }
    };
    target.put(&key, &bytes)?;
    Ok(Some(bytes.len() as u64))
}

/// Publishes object `hash` and its sidecar (its 16 KiB group CVs, which let a lazy mount read
/// the object's index by verified ranges) unless the tier has them: the object's bytes
/// written, `None` when it was there. A sidecar missing beside an object pushed before
/// sidecars were is added.
fn push_object(
    store: &PackageStore,
    target: &RemoteTier,
    hash: &ContentHash,
) -> Result<Option<u64>, RemoteError> {
    let key = object_key(hash);
    let side_key = super::lazy::sidecar_key(hash);
    let has_object = target.exists(&key)?;
    if has_object && target.exists(&side_key)? {
        return Ok(None);
    }
    // A thin object is reassembled: tiers hold full objects.
    let path = store.object_file(hash);
    let bytes = store.object_bytes(hash).map_err(|e| RemoteError::Io {
        url: path.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    // A local object damaged since it was stored is not spread further.
    let (actual, cvs) = crate::store::groups::hash_groups(&bytes);
    if actual != *hash {
        return Err(RemoteError::Corrupt {
            hash: *hash,
            url: path.display().to_string(),
            actual,
        });
    }
    // The sidecar first: a reader that finds the object finds its sidecar (an object of one
    // group has none and is fetched whole).
    if cvs.len() >= 2 {
        let side = crate::store::sidecar::encode(bytes.len() as u64, &cvs);
        target.put(&side_key, &side)?;
    }
    if has_object {
        return Ok(None);
    }
    target.put(&key, &bytes)?;
    Ok(Some(bytes.len() as u64))
}

/// The interpreter cache tags the local store holds bytecode records for.
fn store_cache_tags(store: &PackageStore) -> Vec<String> {
    let mut tags: Vec<String> = crate::install::bytecode_dirs(store)
        .iter()
        .filter_map(|d| d.file_name()?.to_str().map(str::to_string))
        .filter(|t| super::is_safe_component(t))
        .collect();
    tags.sort();
    tags
}
