//! Fetching from the remote tier into the local store: every object blake3-verified against its
//! name before the store takes it (written atomically by the store: a partial or wrong download
//! never lands), each object fetched at most once per process, records checked on use.
use crate::dpl::LockedPackage;
use crate::hash::ContentHash;
use crate::install::{AfterStore, InstallError};
use crate::store::{ObjectForm, PackageStore, StoreError};

use super::{
    MAX_OBJECT, MAX_RECORD, RemoteError, RemoteTier, is_safe_component, lock, object_key, pack_key,
    wheel_key,
};

impl RemoteTier {
    /// Brings object `hash` into `store` unless it is there: `Ok(false)` when the remote does
    /// not have it. Blocks; callable from any thread. Concurrent calls for one object fetch it
    /// once (the others wait, then find it stored).
    pub fn fetch_object(
        &self,
        store: &PackageStore,
        hash: &ContentHash,
    ) -> Result<bool, RemoteError> {
        self.fetch_object_as(store, hash, ObjectForm::Full)
    }

    /// [`RemoteTier::fetch_object`], keeping the object in `form`: an install, which unpacks
    /// it next, writes it once as its unpacked copy ([`ObjectForm::Unpacked`]); a mount, which
    /// reads it, keeps it full.
    pub(crate) fn fetch_object_as(
        &self,
        store: &PackageStore,
        hash: &ContentHash,
        form: ObjectForm,
    ) -> Result<bool, RemoteError> {
        if store.contains(hash) {
            return Ok(true);
        }
        let slot = self.in_flight.entry(*hash).or_default().clone();
        let _only_us = lock(&slot);
        if store.contains(hash) {
            return Ok(true);
        }
        let key = object_key(hash);
        let Some(bytes) = self.get(&key, MAX_OBJECT)? else {
            return Ok(false);
        };
        let url = || self.location(&key);
        let stored = match form {
            ObjectForm::Full => store.store_verified(&bytes, hash),
            ObjectForm::Unpacked => store.store_verified_unpacked(&bytes, hash),
        };
        stored.map_err(|source| match source {
            StoreError::HashMismatch { actual, .. } => RemoteError::Corrupt {
                hash: *hash,
                url: url(),
                actual,
            },
            source => RemoteError::Store {
                hash: *hash,
                url: url(),
                source: Box::new(source),
            },
        })?;
        tracing::debug!("fetched {} ({} bytes)", url(), bytes.len());
        self.objects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.bytes
            .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }

    /// The object the wheel `filename` (sha256 `sha256`) became, by the remote's record, brought
    /// into `store` and recorded there; `None` when the remote has no record or no object, or
    /// when its object is not that wheel's package (then the wheel is converted as usual). The
    /// object is kept in `form` ([`crate::install::form_for`]).
    pub fn fetch_for_wheel(
        &self,
        store: &PackageStore,
        sha256: &str,
        filename: &str,
        form: ObjectForm,
    ) -> Result<Option<ContentHash>, RemoteError> {
        let Some(hash) = self.record(&wheel_key(sha256))? else {
            return Ok(None);
        };
        if !self.fetch_object_as(store, &hash, form)? {
            return Ok(None);
        }
        // Recorded locally, then checked as every local record is (the object must hold this
        // wheel's `.dist-info`): a record naming another package is dropped.
        store.record_wheel(sha256, &hash);
        Ok(store.wheel_object(sha256, filename))
    }

    /// The bytecode pack of `package` for the interpreter `tag` from the remote, brought into
    /// `store`; `None` when the remote has none.
    pub fn fetch_pack(
        &self,
        store: &PackageStore,
        package: &ContentHash,
        tag: &str,
    ) -> Result<Option<ContentHash>, RemoteError> {
        if !is_safe_component(tag) {
            return Ok(None);
        }
        let Some(pack) = self.record(&pack_key(package, tag))? else {
            return Ok(None);
        };
        Ok(self.fetch_object(store, &pack)?.then_some(pack))
    }

    /// The object a record names; `None` when the remote has no such record (remembered: not
    /// asked again).
    pub(super) fn record(&self, key: &str) -> Result<Option<ContentHash>, RemoteError> {
        if self.absent.contains(key) {
            return Ok(None);
        }
        let Some(bytes) = self.get(key, MAX_RECORD)? else {
            self.absent.insert(key.to_string());
            return Ok(None);
        };
        let hash = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| RemoteError::BadRecord {
                url: self.location(key),
            })?;
        Ok(Some(hash))
    }

    fn note_missing(&self, name: &str) {
        lock(&self.missing).push(name.to_string());
    }
}

/// Brings the packages `todo` (indexes into `packages`, none in the local store) from the
/// store's remote tier, in parallel, filling in their `store_hash` and running `after_store` on
/// each (an install unpacks and compiles there, or finds the remote's bytecode). Returns the
/// indexes the remote does not have: they take the ordinary way (wheels, the index). Without a
/// remote tier, or into a read-only store, returns `todo` untouched.
pub fn fetch_missing(
    store: &PackageStore,
    packages: &mut [LockedPackage],
    todo: Vec<usize>,
    after_store: Option<AfterStore<'_>>,
) -> Result<Vec<usize>, InstallError> {
    let Some(remote) = store.remote() else {
        return Ok(todo);
    };
    if todo.is_empty() || !store.is_writable() {
        return Ok(todo);
    }
    let shared: &[LockedPackage] = packages;
    let form = crate::install::form_for(after_store);
    let found = crate::parallel::map_largest_first(
        &todo,
        8,
        |&i| shared[i].wheel.size.unwrap_or(0),
        |&i| -> Result<Option<ContentHash>, RemoteError> {
            let p = &shared[i];
            let Some(hash) =
                remote.fetch_for_wheel(store, &p.wheel.sha256_hex(), &p.wheel.filename, form)?
            else {
                return Ok(None);
            };
            if let Some(after_store) = after_store {
                after_store(&hash);
            }
            Ok(Some(hash))
        },
    );
    let mut rest = Vec::new();
    for (i, found) in todo.into_iter().zip(found) {
        match found.map_err(|e| InstallError::Remote(Box::new(e)))? {
            Some(hash) => packages[i].store_hash = Some(hash),
            None => {
                tracing::debug!(
                    "{}: not in the remote store {}; from its wheel",
                    packages[i].name,
                    remote.url()
                );
                remote.note_missing(&packages[i].name);
                rest.push(i);
            }
        }
    }
    Ok(rest)
}
