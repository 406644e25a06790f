//! Writes a [`UniversalLock`] as DPL version 2 bytes. The output depends only on the lock's
//! content: entries are sorted, strings and markers deduplicated in first-use order of that sort.
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use super::*;
use crate::dpl::format::{Checksum, MAGIC, put_u32, put_u64};
use crate::dpl::model::is_valid_name;
use crate::dpl::{
    DplBuildError, DplFileError, LocalSource, LockedWheel, UniversalLock, UniversalLockedPackage,
};
use crate::names::normalize_name;
use crate::wheel::WheelFilename;

/// Strings, each distinct one stored once.
#[derive(Default)]
struct Strings<'a> {
    bytes: Vec<u8>,
    seen: HashMap<&'a str, (u32, u32)>,
}

impl<'a> Strings<'a> {
    fn add(
        &mut self,
        s: &'a str,
        package: &str,
        field: &'static str,
    ) -> Result<(u32, u32), DplBuildError> {
        if let Some(&at) = self.seen.get(s) {
            return Ok(at);
        }
        let too_long = || DplBuildError::TooLong {
            package: package.to_owned(),
            field,
            len: s.len(),
            max: u32::MAX as usize,
        };
        let off = u32::try_from(self.bytes.len()).map_err(|_| too_long())?;
        let len = u32::try_from(s.len()).map_err(|_| too_long())?;
        off.checked_add(len).ok_or_else(too_long)?;
        self.bytes.extend_from_slice(s.as_bytes());
        self.seen.insert(s, (off, len));
        Ok((off, len))
    }
}

fn put_str(buf: &mut [u8], at: usize, (off, len): (u32, u32)) {
    put_u32(buf, at, off);
    put_u32(buf, at + 4, len);
}

fn count(what: &'static str, n: usize) -> Result<u32, DplBuildError> {
    u32::try_from(n)
        .ok()
        .filter(|&n| n < NO_MARKER)
        .ok_or(DplBuildError::TooMany { what, count: n })
}

/// Checks what a reader relies on: a valid name and PEP 440 version, parseable markers, wheel
/// file names that parse.
fn validate(p: &UniversalLockedPackage) -> Result<(), DplBuildError> {
    if !is_valid_name(&p.name) {
        return Err(DplBuildError::InvalidName(p.name.clone()));
    }
    crate::dpl::version_components(&p.version).map_err(|source| DplBuildError::InvalidVersion {
        package: p.name.clone(),
        version: p.version.clone(),
        source,
    })?;
    if let Some(marker) = &p.marker {
        pep508_rs::MarkerTree::from_str(marker).map_err(|e| DplBuildError::InvalidMarker {
            package: p.name.clone(),
            marker: marker.clone(),
            reason: e.to_string(),
        })?;
    }
    for w in &p.wheels {
        WheelFilename::parse(&w.filename).map_err(|_| DplBuildError::InvalidWheel {
            package: p.name.clone(),
            filename: w.filename.clone(),
            reason: "not a wheel file name",
        })?;
    }
    for f in p.wheels.iter().chain(&p.sdist) {
        if f.size.is_some_and(|s| s > i64::MAX as u64) {
            return Err(DplBuildError::SizeTooLarge {
                package: p.name.clone(),
                size: f.size.unwrap_or_default(),
            });
        }
    }
    Ok(())
}

/// The bytes of `lock` (see [`UniversalLock::dpl_bytes`]).
fn build<'a>(lock: &'a UniversalLock) -> Result<Vec<u8>, DplBuildError> {
    let mut sorted: Vec<(String, &UniversalLockedPackage)> =
        Vec::with_capacity(lock.packages.len());
    for p in &lock.packages {
        validate(p)?;
        sorted.push((normalize_name(&p.name), p));
    }
    sorted
        .sort_by(|(an, a), (bn, b)| (an, &a.version, &a.marker).cmp(&(bn, &b.version, &b.marker)));
    for pair in sorted.windows(2) {
        let ((an, a), (bn, b)) = (&pair[0], &pair[1]);
        if an == bn && a.version == b.version && a.marker == b.marker {
            return Err(DplBuildError::DuplicatePackage(b.name.clone()));
        }
    }
    count("packages", sorted.len())?;
    // name -> the entries of that name (a dependency points at each of them; an installer
    // keeps those whose markers hold).
    let mut by_name: HashMap<&str, Vec<u32>> = HashMap::new();
    for (i, (name, _)) in sorted.iter().enumerate() {
        by_name.entry(name.as_str()).or_default().push(i as u32);
    }

    let mut strings = Strings::default();
    let mut markers: Vec<(u32, u32)> = Vec::new();
    let mut marker_index: HashMap<&str, u32> = HashMap::new();
    let mut entries = vec![0u8; sorted.len() * ENTRY_LEN];
    let mut files: Vec<u8> = Vec::new();
    let mut edges: Vec<u8> = Vec::new();
    let (mut file_count, mut edge_count) = (0usize, 0usize);

    let mut marker_of =
        |m: &'a str, package: &str, strings: &mut Strings<'a>| -> Result<u32, DplBuildError> {
            if let Some(&i) = marker_index.get(m) {
                return Ok(i);
            }
            let i = count("markers", markers.len())?;
            markers.push(strings.add(m, package, "marker")?);
            marker_index.insert(m, i);
            Ok(i)
        };
    let requires_python = match &lock.requires_python {
        Some(r) => Some(strings.add(r, "lock", "requires-python")?),
        None => None,
    };
    let mut envs = Vec::with_capacity(lock.environments.len());
    for e in &lock.environments {
        pep508_rs::MarkerTree::from_str(e).map_err(|err| DplBuildError::InvalidMarker {
            package: "lock".to_owned(),
            marker: e.clone(),
            reason: err.to_string(),
        })?;
        envs.push(marker_of(e, "lock", &mut strings)?);
    }
    for (i, (_, p)) in sorted.iter().enumerate() {
        let rec = &mut entries[i * ENTRY_LEN..(i + 1) * ENTRY_LEN];
        let name = p.name.as_str();
        put_str(rec, E_NAME, strings.add(name, name, "name")?);
        put_str(rec, E_VERSION, strings.add(&p.version, name, "version")?);
        let mut flags = 0;
        if let Some(r) = &p.requires_python {
            put_str(
                rec,
                E_REQUIRES_PYTHON,
                strings.add(r, name, "requires-python")?,
            );
            flags |= EF_REQUIRES_PYTHON;
        }
        if let Some(x) = &p.index_url {
            put_str(rec, E_INDEX, strings.add(x, name, "index")?);
            flags |= EF_INDEX;
        }
        let marker = match &p.marker {
            Some(m) => marker_of(m, name, &mut strings)?,
            None => NO_MARKER,
        };
        put_u32(rec, E_MARKER, marker);
        // A directory is written as the file after the wheels (its path), where an sdist goes.
        let directory = match &p.local {
            Some(LocalSource::Directory { path, editable }) => {
                flags |= EF_DIRECTORY | if *editable { EF_EDITABLE } else { 0 };
                Some(path.as_str())
            }
            Some(LocalSource::Archive) if p.sdist.is_some() => {
                flags |= EF_SDIST | EF_ARCHIVE;
                None
            }
            Some(LocalSource::Archive) => {
                return Err(DplBuildError::InvalidWheel {
                    package: p.name.clone(),
                    filename: String::new(),
                    reason: "a local archive entry names no archive",
                });
            }
            None => {
                if p.sdist.is_some() {
                    flags |= EF_SDIST;
                }
                None
            }
        };
        put_u32(rec, E_FLAGS, flags);
        put_u32(rec, E_FIRST_FILE, count("files", file_count)?);
        put_u32(rec, E_WHEEL_COUNT, count("files", p.wheels.len())?);
        let sdist = p.sdist.as_ref().filter(|_| directory.is_none());
        for f in p.wheels.iter().chain(sdist) {
            files.extend_from_slice(&file_record(f, name, &mut strings)?);
            file_count += 1;
        }
        if let Some(path) = directory {
            files.extend_from_slice(&directory_record(path, name, &mut strings)?);
            file_count += 1;
        }
        let mut targets = Vec::new();
        for d in &p.dependencies {
            let found = by_name.get(normalize_name(d).as_str()).ok_or_else(|| {
                DplBuildError::UnknownDependency {
                    package: p.name.clone(),
                    dependency: d.clone(),
                }
            })?;
            targets.extend_from_slice(found);
        }
        targets.sort_unstable();
        targets.dedup();
        put_u32(rec, E_FIRST_EDGE, count("dependency edges", edge_count)?);
        put_u32(rec, E_EDGE_COUNT, count("dependency edges", targets.len())?);
        for t in targets {
            edges.extend_from_slice(&t.to_le_bytes());
            edge_count += 1;
        }
    }

    let markers_off = HEADER_LEN;
    let envs_off = markers_off + markers.len() * MARKER_LEN;
    let entries_off = envs_off + envs.len() * ENV_LEN;
    let files_off = entries_off + entries.len();
    let edges_off = files_off + files.len();
    let strings_off = edges_off + edges.len();
    let file_len = strings_off + strings.bytes.len();
    let mut out = vec![0u8; HEADER_LEN];
    out.reserve(file_len - HEADER_LEN);
    for &m in &markers {
        let mut rec = [0u8; MARKER_LEN];
        put_str(&mut rec, 0, m);
        out.extend_from_slice(&rec);
    }
    for e in envs {
        out.extend_from_slice(&e.to_le_bytes());
    }
    out.extend_from_slice(&entries);
    out.extend_from_slice(&files);
    out.extend_from_slice(&edges);
    out.extend_from_slice(&strings.bytes);

    out[..MAGIC.len()].copy_from_slice(&MAGIC);
    put_u32(&mut out, H_VERSION, VERSION_2);
    put_u32(&mut out, H_HEADER_LEN, HEADER_LEN as u32);
    put_u32(&mut out, H_ENTRY_COUNT, count("packages", sorted.len())?);
    put_u32(&mut out, H_MARKER_COUNT, count("markers", markers.len())?);
    put_u32(&mut out, H_FILE_COUNT, count("files", file_count)?);
    put_u32(
        &mut out,
        H_EDGE_COUNT,
        count("dependency edges", edge_count)?,
    );
    put_u32(
        &mut out,
        H_ENV_COUNT,
        count("environments", lock.environments.len())?,
    );
    let mut meta = 0;
    if let Some(r) = requires_python {
        put_str(&mut out, H_REQUIRES_PYTHON, r);
        meta |= META_REQUIRES_PYTHON;
    }
    let built_directory = |p: &UniversalLockedPackage| {
        matches!(
            p.local,
            Some(LocalSource::Directory {
                editable: false,
                ..
            })
        )
    };
    if lock.packages.iter().any(built_directory) {
        meta |= META_BUILT_DIRECTORIES;
    }
    put_u32(&mut out, H_META_FLAGS, meta);
    for (at, v) in [
        (H_MARKERS_OFF, markers_off),
        (H_ENTRIES_OFF, entries_off),
        (H_FILES_OFF, files_off),
        (H_EDGES_OFF, edges_off),
        (H_STRINGS_OFF, strings_off),
        (H_STRINGS_LEN, file_len - strings_off),
        (H_FILE_LEN, file_len),
    ] {
        put_u64(&mut out, at, v as u64);
    }
    out[H_INPUTS_HASH..H_INPUTS_HASH + 32].copy_from_slice(lock.inputs_hash.as_bytes());
    seal(&mut out);
    Ok(out)
}

impl UniversalLock {
    /// This lock as DPL version 2 bytes (see `docs/formats/dpl.md`).
    pub fn dpl_bytes(&self) -> Result<Vec<u8>, DplBuildError> {
        build(self)
    }

    /// Writes this lock as a DPL version 2 file at `path`, atomically.
    pub fn write_dpl(&self, path: &Path) -> Result<(), DplFileError> {
        crate::dpl::write_built(path, || self.dpl_bytes())
    }
}

/// One wheel or sdist record.
fn file_record<'a>(
    f: &'a LockedWheel,
    package: &str,
    strings: &mut Strings<'a>,
) -> Result<[u8; FILE_LEN], DplBuildError> {
    let parts = FileParts {
        name: &f.filename,
        url: f.url.as_deref(),
        path: f.path.as_deref(),
        sha256: f.sha256,
        size: f.size,
    };
    record(&parts, package, strings)
}

/// The record of a local directory: its path, no name, no hash (a tree has none).
fn directory_record<'a>(
    path: &'a str,
    package: &str,
    strings: &mut Strings<'a>,
) -> Result<[u8; FILE_LEN], DplBuildError> {
    let parts = FileParts {
        name: "",
        url: None,
        path: Some(path),
        sha256: [0; 32],
        size: None,
    };
    record(&parts, package, strings)
}

/// The fields of a file record.
struct FileParts<'a> {
    name: &'a str,
    url: Option<&'a str>,
    path: Option<&'a str>,
    sha256: [u8; 32],
    size: Option<u64>,
}

fn record<'a>(
    f: &FileParts<'a>,
    package: &str,
    strings: &mut Strings<'a>,
) -> Result<[u8; FILE_LEN], DplBuildError> {
    let mut rec = [0u8; FILE_LEN];
    let mut flags = 0;
    put_str(&mut rec, F_NAME, strings.add(f.name, package, "file name")?);
    if let Some(u) = f.url {
        put_str(&mut rec, F_URL, strings.add(u, package, "file url")?);
        flags |= FF_URL;
    }
    if let Some(p) = f.path {
        put_str(&mut rec, F_PATH, strings.add(p, package, "file path")?);
        flags |= FF_PATH;
    }
    rec[F_SHA256..F_SHA256 + 32].copy_from_slice(&f.sha256);
    if let Some(size) = f.size {
        put_u64(&mut rec, F_SIZE, size);
        flags |= FF_SIZE;
    }
    put_u32(&mut rec, F_FLAGS, flags);
    Ok(rec)
}

/// Writes the body hash and then the header checksum (which covers the body hash), in place.
/// Also what a test or fuzz target uses to make an edited file look intact.
pub(crate) fn seal(out: &mut [u8]) {
    if out.len() < HEADER_LEN {
        return;
    }
    let body = blake3::hash(&out[HEADER_LEN..]);
    out[H_BODY_HASH..H_BODY_HASH + 32].copy_from_slice(body.as_bytes());
    let sum = Checksum::new(HEADER_SEED_2)
        .update(&out[..H_CHECKSUM])
        .finish();
    put_u64(out, H_CHECKSUM, sum);
}
