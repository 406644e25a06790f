//! Writes DPL bytes. The output depends only on the lock's content, never on package order.
use std::collections::HashMap;
use std::path::Path;

use super::DplFileError;
use super::format::*;
use super::model::{DplBuildError, LocalSource, Lock, LockMeta, LockedPackage};
use crate::names::normalize_name;

/// Collects a lock's packages and writes them as a DPL file.
#[derive(Clone, Debug, Default)]
pub struct DplBuilder {
    meta: LockMeta,
    packages: Vec<LockedPackage>,
}

/// A package ready to be laid out: validated, with its normalized name and version components.
struct Prepared<'a> {
    package: &'a LockedPackage,
    normalized: String,
    components: (u64, u64, u64),
}

impl DplBuilder {
    /// Starts an empty lock for the given project-level data.
    pub fn new(meta: LockMeta) -> Self {
        Self {
            meta,
            packages: Vec::new(),
        }
    }

    /// Starts from a whole in-memory lock.
    pub fn from_lock(lock: &Lock) -> Self {
        Self {
            meta: lock.meta.clone(),
            packages: lock.packages.clone(),
        }
    }

    /// Adds one package.
    pub fn add(&mut self, package: LockedPackage) -> &mut Self {
        self.packages.push(package);
        self
    }

    /// Writes the file to `path` atomically: a temporary file in the same directory, fsync,
    /// rename over `path`, fsync of the directory.
    pub fn write(&self, path: &Path) -> Result<(), DplFileError> {
        super::write_built(path, || self.to_bytes())
    }

    /// The file's bytes. Packages are sorted by normalized name, dependencies by index.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DplBuildError> {
        self.meta.validate()?;
        let n = self.packages.len();
        if n >= (u32::MAX / 4) as usize {
            return Err(DplBuildError::TooMany {
                what: "packages",
                count: n,
            });
        }
        let mut prepared = Vec::with_capacity(n);
        for package in &self.packages {
            prepared.push(Prepared {
                components: package.validate()?,
                normalized: package.normalized_name(),
                package,
            });
        }
        prepared.sort_by(|a, b| a.normalized.cmp(&b.normalized));
        for pair in prepared.windows(2) {
            if pair[0].normalized == pair[1].normalized {
                return Err(DplBuildError::DuplicatePackage(
                    pair[1].package.name.clone(),
                ));
            }
        }
        let index: HashMap<&str, u32> = prepared
            .iter()
            .enumerate()
            .map(|(i, p)| (p.normalized.as_str(), i as u32))
            .collect();

        // Strings: the meta strings first, then one blob per entry.
        let mut strings: Vec<u8> = Vec::new();
        let meta_ref = |s: &str, strings: &mut Vec<u8>| {
            let r = (strings.len() as u32, s.len() as u32);
            strings.extend_from_slice(s.as_bytes());
            r
        };
        let env_ref = meta_ref(&self.meta.environment, &mut strings);
        let py_ref = meta_ref(&self.meta.python_version, &mut strings);
        let rp_ref = meta_ref(
            self.meta.requires_python.as_deref().unwrap_or_default(),
            &mut strings,
        );

        let mut deps: Vec<u32> = Vec::new();
        let mut entries = vec![0u8; n * ENTRY_LEN];
        let mut blob_ranges = Vec::with_capacity(n);
        let mut dep_ranges = Vec::with_capacity(n);
        for (i, p) in prepared.iter().enumerate() {
            let pkg = p.package;
            let mut targets = Vec::with_capacity(pkg.dependencies.len());
            for d in &pkg.dependencies {
                let t = index.get(normalize_name(d).as_str()).ok_or_else(|| {
                    DplBuildError::UnknownDependency {
                        package: pkg.name.clone(),
                        dependency: d.clone(),
                    }
                })?;
                targets.push(*t);
            }
            targets.sort_unstable();
            targets.dedup();
            let deps_start = deps.len();
            deps.extend_from_slice(&targets);
            if deps.len() > u32::MAX as usize {
                return Err(DplBuildError::TooMany {
                    what: "dependency edges",
                    count: deps.len(),
                });
            }

            let extras = pkg.extras.join(&EXTRAS_SEP.to_string());
            // An sdist entry keeps the sdist's location and size where a wheel's go (its wheel
            // has none, and both share the sha256: `LockedPackage::validate`).
            let file = pkg.sdist.as_ref().unwrap_or(&pkg.wheel);
            // A directory entry keeps the directory where a wheel's path goes.
            let path = match pkg.directory() {
                Some((dir, _)) => Some(dir),
                None => file.path.as_deref(),
            };
            let texts: [Option<&str>; STRING_COUNT] = [
                Some(&p.normalized),
                Some(&pkg.name),
                Some(&pkg.version),
                Some(&pkg.wheel.filename),
                file.url.as_deref(),
                path,
                pkg.index_url.as_deref(),
                pkg.marker.as_deref(),
                pkg.requires_python.as_deref(),
                Some(&extras),
            ];
            let rec = &mut entries[i * ENTRY_LEN..(i + 1) * ENTRY_LEN];
            let blob_off = strings.len();
            let mut flags = 0u32;
            for (s, text) in texts.iter().enumerate() {
                let text = text.unwrap_or_default();
                if texts[s].is_some() {
                    flags |= STRING_FLAGS[s];
                }
                let len = u32::try_from(text.len()).map_err(|_| DplBuildError::TooLong {
                    package: pkg.name.clone(),
                    field: STRING_NAMES[s],
                    len: text.len(),
                    max: u32::MAX as usize,
                })?;
                put_u32(rec, E_LENS + 4 * s, len);
                strings.extend_from_slice(text.as_bytes());
            }
            let blob_len = strings.len() - blob_off;
            let blob_off32 = u32::try_from(blob_off).map_err(|_| DplBuildError::TooLong {
                package: pkg.name.clone(),
                field: "string table",
                len: blob_off,
                max: u32::MAX as usize,
            })?;
            if let Some(h) = &pkg.store_hash {
                flags |= F_STORE_HASH;
                rec[E_STORE_HASH..E_STORE_HASH + 32].copy_from_slice(h.as_bytes());
            }
            if pkg.sdist.is_some() {
                flags |= F_SDIST;
            }
            match &pkg.local {
                Some(LocalSource::Directory { editable, .. }) => {
                    flags |= F_DIRECTORY | if *editable { F_EDITABLE } else { 0 };
                }
                Some(LocalSource::Archive) => flags |= F_ARCHIVE,
                None => {}
            }
            if let Some(size) = file.size {
                flags |= F_SIZE;
                put_u64(rec, E_WHEEL_SIZE, size);
            }
            rec[E_SHA256..E_SHA256 + 32].copy_from_slice(&pkg.wheel.sha256);
            let (major, minor, patch) = p.components;
            put_u64(rec, E_MAJOR, major);
            put_u64(rec, E_MINOR, minor);
            put_u64(rec, E_PATCH, patch);
            put_u64(rec, E_EXTRAS_BITMAP, pkg.extras_bitmap);
            put_u32(rec, E_FLAGS, flags);
            put_u32(rec, E_DEPS_START, deps_start as u32);
            put_u32(rec, E_DEPS_COUNT, targets.len() as u32);
            put_u32(rec, E_BLOB_OFF, blob_off32);
            blob_ranges.push(blob_off..blob_off + blob_len);
            dep_ranges.push(deps_start..deps_start + targets.len());
        }

        // Hash table: linear probing from the low bits of the name hash.
        let buckets = buckets_for(n);
        let mask = buckets - 1;
        let mut table = vec![(0u32, 0u32); buckets];
        let mut max_probe = 1usize;
        for (i, p) in prepared.iter().enumerate() {
            let h = name_hash(&p.normalized);
            let mut slot = (h as usize) & mask;
            let mut probes = 1;
            while table[slot].0 != 0 {
                slot = (slot + 1) & mask;
                probes += 1;
            }
            table[slot] = (i as u32 + 1, (h >> 32) as u32);
            max_probe = max_probe.max(probes);
        }

        let dep_bytes: Vec<u8> = deps.iter().flat_map(|d| d.to_le_bytes()).collect();
        for i in 0..n {
            let rec = &mut entries[i * ENTRY_LEN..(i + 1) * ENTRY_LEN];
            let d = &dep_ranges[i];
            let c = entry_checksum(
                ENTRY_SEED ^ i as u64,
                &rec[E_CHECKSUM + 8..],
                &strings[blob_ranges[i].clone()],
                &dep_bytes[d.start * 4..d.end * 4],
            );
            put_u64(rec, E_CHECKSUM, c);
        }

        let buckets_off = HEADER_LEN;
        let entries_off = buckets_off + buckets * BUCKET_LEN;
        let deps_off = entries_off + entries.len();
        let strings_off = deps_off + dep_bytes.len();
        let file_len = strings_off + strings.len();

        let mut out = Vec::with_capacity(file_len);
        out.resize(HEADER_LEN, 0);
        for (slot, &(e, tag)) in table.iter().enumerate() {
            out.extend_from_slice(&e.to_le_bytes());
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&bucket_check(slot as u32, e, tag).to_le_bytes());
        }
        out.extend_from_slice(&entries);
        out.extend_from_slice(&dep_bytes);
        out.extend_from_slice(&strings);
        debug_assert_eq!(out.len(), file_len);

        let body_hash = blake3::hash(&out[HEADER_LEN..]);
        let h = &mut out[..HEADER_LEN];
        h[..8].copy_from_slice(&MAGIC);
        put_u32(h, H_VERSION, VERSION);
        put_u32(h, H_HEADER_LEN, HEADER_LEN as u32);
        put_u32(h, H_ENTRY_LEN, ENTRY_LEN as u32);
        put_u32(h, H_ENTRY_COUNT, n as u32);
        put_u32(h, H_BUCKET_COUNT, buckets as u32);
        put_u32(h, H_MAX_PROBE, max_probe as u32);
        put_u32(h, H_DEP_COUNT, deps.len() as u32);
        let meta_flags = if self.meta.requires_python.is_some() {
            META_REQUIRES_PYTHON
        } else {
            0
        };
        put_u32(h, H_META_FLAGS, meta_flags);
        put_u64(h, H_BUCKETS_OFF, buckets_off as u64);
        put_u64(h, H_ENTRIES_OFF, entries_off as u64);
        put_u64(h, H_DEPS_OFF, deps_off as u64);
        put_u64(h, H_STRINGS_OFF, strings_off as u64);
        put_u64(h, H_STRINGS_LEN, strings.len() as u64);
        put_u64(h, H_FILE_LEN, file_len as u64);
        for (at, (off, len)) in [
            (H_ENVIRONMENT, env_ref),
            (H_PYTHON_VERSION, py_ref),
            (H_REQUIRES_PYTHON, rp_ref),
        ] {
            put_u32(h, at, off);
            put_u32(h, at + 4, len);
        }
        h[H_INPUTS_HASH..H_INPUTS_HASH + 32].copy_from_slice(self.meta.inputs_hash.as_bytes());
        h[H_BODY_HASH..H_BODY_HASH + 32].copy_from_slice(body_hash.as_bytes());
        let mut c = Checksum::new(HEADER_SEED);
        c.update(&h[..H_CHECKSUM]);
        for (off, len) in [env_ref, py_ref, rp_ref] {
            c.update(&strings[off as usize..(off + len) as usize]);
        }
        put_u64(h, H_CHECKSUM, c.finish());
        Ok(out)
    }
}
