//! Packages a mount serves from the store's remote tier before their objects are here: their
//! tree entries come from each object's index, read by verified ranges
//! ([`RemoteTier::object_index`]), and the server fetches an object on the first read of one of
//! its files ([`RemoteTier::fetch_for_read`]). See docs/design/store-remote.md, "Lazy mount".
use crate::dpl::LockedPackage;
use crate::hash::ContentHash;
use crate::remote::{RemoteError, RemoteIndex, RemoteTier};
use crate::store::PackageStore;

/// A package of the lock laid out from the remote's index of its object.
#[derive(Debug)]
pub(super) struct LazyPackage {
    /// Its index in the lock's packages.
    pub(super) index: usize,
    /// Its object's index.
    pub(super) object: RemoteIndex,
    /// Its bytecode pack: in the local store (`None` index) or laid out from the remote too.
    pub(super) bytecode: Option<(ContentHash, Option<RemoteIndex>)>,
}

impl LazyPackage {
    /// The objects it needs that are not stored here.
    fn unfetched(&self) -> impl Iterator<Item = &ContentHash> {
        let pack = self.bytecode.as_ref().and_then(|(_, i)| i.as_ref());
        std::iter::once(&self.object.hash).chain(pack.map(|i| &i.hash))
    }
}

/// The packages of `packages` that the store's remote tier can serve lazily: those the local
/// store lacks whose object the remote has with a sidecar, and (when `tag` is given: bytecode
/// is wanted) whose bytecode pack the remote has too. The others are left to the ordinary way
/// (fetched whole before mounting, converted from wheels, compiled). Their `store_hash` is set.
pub(super) fn lazy_packages(
    store: &PackageStore,
    packages: &mut [LockedPackage],
    tag: Option<&str>,
) -> Result<Vec<LazyPackage>, Box<RemoteError>> {
    let Some(remote) = store.remote() else {
        return Ok(Vec::new());
    };
    if !store.is_writable() {
        return Ok(Vec::new());
    }
    let todo: Vec<usize> = (0..packages.len())
        .filter(|&i| {
            let p = &packages[i];
            let sha = p.wheel.sha256_hex();
            p.store_hash.is_none_or(|h| !store.contains(&h))
                && store.wheel_object(&sha, &p.wheel.filename).is_none()
        })
        .collect();
    let shared: &[LockedPackage] = packages;
    let found = crate::parallel::map_largest_first(
        &todo,
        8,
        |&i| shared[i].wheel.size.unwrap_or(0),
        |&i| lazy_package(remote, store, &shared[i], tag),
    );
    let mut lazy = Vec::new();
    for (i, found) in todo.into_iter().zip(found) {
        if let Some((object, bytecode)) = found.map_err(Box::new)? {
            packages[i].store_hash = Some(object.hash);
            lazy.push(LazyPackage {
                index: i,
                object,
                bytecode,
            });
        }
    }
    Ok(lazy)
}

type Found = Option<(RemoteIndex, Option<(ContentHash, Option<RemoteIndex>)>)>;

/// One package of [`lazy_packages`]: `None` when it takes the ordinary way.
fn lazy_package(
    remote: &RemoteTier,
    store: &PackageStore,
    p: &LockedPackage,
    tag: Option<&str>,
) -> Result<Found, RemoteError> {
    let Some(hash) = remote.wheel_record(&p.wheel.sha256_hex())? else {
        return Ok(None);
    };
    if store.contains(&hash) {
        return Ok(None);
    }
    let Some(object) = remote.object_index(&hash)? else {
        return Ok(None);
    };
    // The record is the remote's word; the object (verified against its name) must hold this
    // wheel's `.dist-info`, as the local store checks its own records.
    let matches = crate::wheel::WheelFilename::parse(&p.wheel.filename)
        .is_ok_and(|w| crate::wheel::dir_matches(&object.dist_info, ".dist-info", &w));
    if !matches {
        tracing::warn!(
            "The remote store's record for `{}` names object {hash}, which holds `{}`; not used",
            p.wheel.filename,
            object.dist_info
        );
        return Ok(None);
    }
    let Some(tag) = tag else {
        return Ok(Some((object, None)));
    };
    let Some(pack) = remote.pack_record(&hash, tag)? else {
        // Bytecode would be compiled from the object: fetched whole, the ordinary way.
        return Ok(None);
    };
    if store.contains(&pack) {
        return Ok(Some((object, Some((pack, None)))));
    }
    match remote.object_index(&pack)? {
        Some(index) => Ok(Some((object, Some((pack, Some(index)))))),
        // A small pack (one group, no sidecar): fetched now.
        None if remote.fetch_object(store, &pack)? => Ok(Some((object, Some((pack, None))))),
        None => Ok(None),
    }
}

/// Fetches every object of `lazy` whole (a tree that is completed after mounting is built
/// from stored objects).
pub(super) fn fetch_all(
    store: &PackageStore,
    lazy: &[LazyPackage],
) -> Result<(), Box<RemoteError>> {
    let Some(remote) = store.remote() else {
        return Ok(());
    };
    let hashes: Vec<ContentHash> = lazy
        .iter()
        .flat_map(LazyPackage::unfetched)
        .copied()
        .collect();
    let done =
        crate::parallel::map_largest_first(&hashes, 8, |_| 0, |h| remote.fetch_object(store, h));
    for (hash, done) in hashes.iter().zip(done) {
        if !done.map_err(Box::new)? {
            return Err(Box::new(RemoteError::BadIndex {
                hash: *hash,
                url: remote.url().to_string(),
                why: "the object is gone from the remote store since its index was read".into(),
            }));
        }
    }
    Ok(())
}

/// `(object, "name version")` for the lock's packages the local store lacks: how the server's
/// log names a package whose fetch failed.
pub fn unfetched_names(
    store: &PackageStore,
    lock: &crate::dpl::Lock,
) -> Vec<(ContentHash, String)> {
    lock.packages
        .iter()
        .filter_map(|p| {
            let h = p.store_hash?;
            (!store.contains(&h)).then(|| (h, format!("`{} {}`", p.name, p.version)))
        })
        .collect()
}
