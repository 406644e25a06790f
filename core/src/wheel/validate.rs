//! Checks a wheel as untrusted input and maps every file to where it installs.
//!
//! The checks, in order: the file name parses; the archive opens, has no prefixed data and no
//! duplicate names; every entry's name is a plain relative `/`-path whose local header agrees with
//! the central directory, is stored or deflated, unencrypted, a regular file, directory or symlink,
//! within the size and compression-ratio limits; then every file is decompressed with a read
//! limit (a lying header cannot make it allocate more than it declared); the single `.dist-info`
//! and the optional `.data` directory match the file name; RECORD lists exactly the archive's files
//! with matching sizes and hashes; METADATA's name and version match the file name; WHEEL's
//! `Wheel-Version` is 1.x; `entry_points.txt` parses; `.data` files map to a known scheme; no two
//! files install to the same place and no file sits below another file; symlinks resolve inside
//! their scheme directory to a file or directory of the package, without passing through another
//! symlink. With [`Reading::Deferred`] the files the checks do not need are decompressed later,
//! as the package is written, and their RECORD sizes and sha256 are checked there
//! (`super::stream`).
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{Cursor, Read};
use std::str::FromStr;

use zip::CompressionMethod;

use super::entry_points::EntryPoints;
use super::error::{ArchiveProblem, EntryProblem, WheelError};
use super::filename::WheelFilename;
use super::metadata::WheelMetadata;
use super::record::{RecordEntry, RecordHashAlgorithm, parse_record};
use crate::dxpkg::{EntryKind, Scheme};
use crate::names::normalize_name;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// Bounds that a wheel must stay within; each refusal names the bound it broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertLimits {
    /// Largest sum of uncompressed file sizes.
    pub max_total_size: u64,
    /// Largest uncompressed size of one file.
    pub max_file_size: u64,
    /// Largest uncompressed:compressed ratio for files above `ratio_min_size`.
    pub max_ratio: u64,
    /// Files up to this size are not ratio-checked (small files of zeros compress very well).
    pub ratio_min_size: u64,
    /// Most entries in the central directory.
    pub max_entries: usize,
}

impl Default for ConvertLimits {
    /// 4 GiB in total, 1 GiB per file, 1000:1 above 1 MiB, a million entries. Real wheels reach
    /// 223:1 (pillow 13 vendors a padded `libXau`); deflate itself tops out near 1032:1, so only
    /// near-pure runs of one byte trip the ratio check, and the size limits bound the rest.
    fn default() -> Self {
        Self {
            max_total_size: 4 << 30,
            max_file_size: 1 << 30,
            max_ratio: 1000,
            ratio_min_size: 1 << 20,
            max_entries: 1_000_000,
        }
    }
}

/// One checked file of a wheel and the place it installs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelFile {
    /// Its path in the archive.
    pub archive_path: String,
    /// The install scheme.
    pub scheme: Scheme,
    /// Its path relative to the scheme's root.
    pub path: String,
    /// File or in-package symlink.
    pub kind: EntryKind,
    /// `0o755`, `0o644`, or `0o777` for symlinks.
    pub mode: u32,
    /// The bytes (the link target for a symlink); empty while `deferred`.
    pub data: Vec<u8>,
    /// The sha256 of `data`, computed once as the file is decompressed: RECORD's sha256 rows are
    /// checked against it, and the installed RECORD is written from it. For a deferred file, the
    /// digest RECORD gives, which the bytes must match when they are streamed.
    pub sha256: [u8; 32],
    /// Set when the bytes were left in the archive, to be decompressed (and checked against
    /// `sha256`) while the package is written: see [`Reading::Deferred`].
    pub(crate) deferred: Option<InArchive>,
}

/// Where a deferred file's bytes are: its entry in the archive and its declared size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InArchive {
    pub(crate) index: usize,
    pub(crate) size: u64,
}

impl WheelFile {
    /// The file's size (declared by the archive and RECORD, and checked, for a deferred file).
    pub fn len(&self) -> u64 {
        self.deferred.map_or(self.data.len() as u64, |d| d.size)
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How much of a wheel validation decompresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Every file, each checked against RECORD here.
    All,
    /// Only what the checks and the installed RECORD need: the `.dist-info` files, symlinks,
    /// scripts (their shebang decides their RECORD row) and files whose RECORD row is not sha256.
    /// The rest stay in the archive, to be decompressed into the package as it is written, one
    /// reused buffer at a time, with RECORD's sha256 checked there; a mismatch fails the write.
    Deferred,
}

/// A wheel that passed every check, with its files mapped to their install locations.
#[derive(Clone, Debug)]
pub struct ValidatedWheel {
    /// The wheel's file name as given.
    pub file_name: String,
    /// The parsed file name.
    pub filename: WheelFilename,
    /// The `.dist-info` directory name, as in the archive.
    pub dist_info: String,
    /// The parsed METADATA.
    pub metadata: WheelMetadata,
    /// The parsed `entry_points.txt` (empty when absent).
    pub entry_points: EntryPoints,
    /// Files to install, sorted by (scheme, path). The wheel's own RECORD, its signatures and any
    /// INSTALLER are left out: the installed RECORD and INSTALLER are written anew.
    pub files: Vec<WheelFile>,
}

struct Pending {
    index: usize,
    path: String,
    kind: EntryKind,
    executable: bool,
    size: u64,
    /// Bytes to reserve before decompressing: the declared size, bounded by what the
    /// compressed bytes may expand to under the limits.
    capacity: u64,
}

/// A file and, once decompressed, its bytes and sha256.
struct Contents {
    pending: Pending,
    read: Option<(Vec<u8>, [u8; 32])>,
    /// For a file left unread: the sha256 its RECORD row gives.
    expected: Option<[u8; 32]>,
}

pub(crate) type Archive<'a> = zip::ZipArchive<Cursor<&'a [u8]>>;

/// A decompressed file and its sha256, or why it could not be read.
type ReadResult = Result<(Vec<u8>, [u8; 32]), EntryProblem>;

/// Decompresses one file with a read limit one past its declared size, into a buffer reserved
/// for the declared size (so an honest file is read without reallocating), and hashes it.
fn read_entry(archive: &mut Archive<'_>, p: &Pending) -> ReadResult {
    use sha2::Digest;
    let (index, size, capacity) = (p.index, p.size, p.capacity);
    let mut file = archive
        .by_index(index)
        .map_err(|e| EntryProblem::Read(e.to_string()))?;
    let mut data = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    (&mut file)
        .take(size.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| EntryProblem::Read(e.to_string()))?;
    if data.len() as u64 != size {
        return Err(EntryProblem::HeaderSizeMismatch {
            declared: size,
            got: data.len() as u64,
        });
    }
    let sha256 = sha2::Sha256::digest(&data).into();
    Ok((data, sha256))
}

/// Checks that `path` (without a trailing `/`) is a plain relative path.
pub(crate) fn check_entry_path(path: &str) -> Result<(), EntryProblem> {
    if path.is_empty() {
        return Err(EntryProblem::EmptyName);
    }
    if path.contains('\0') {
        return Err(EntryProblem::Nul);
    }
    if path.chars().any(char::is_control) {
        return Err(EntryProblem::ControlCharacter);
    }
    if path.starts_with('/') {
        return Err(EntryProblem::Absolute);
    }
    if path.contains('\\') {
        return Err(EntryProblem::Backslash);
    }
    if path.contains(':') {
        return Err(EntryProblem::Colon);
    }
    for component in path.split('/') {
        match component {
            "" => return Err(EntryProblem::EmptyComponent),
            "." => return Err(EntryProblem::DotComponent),
            ".." => return Err(EntryProblem::ParentDir),
            _ => {}
        }
    }
    Ok(())
}

fn le16(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(usize::from(u16::from_le_bytes([b[0], b[1]])))
}

/// The name in the local header at `header_start`, as Python's `zipfile` (and so pip) reads it.
fn local_header_name(bytes: &[u8], header_start: u64) -> Option<&[u8]> {
    let start = usize::try_from(header_start).ok()?;
    if bytes.get(start..start.checked_add(4)?)? != b"PK\x03\x04" {
        return None;
    }
    let len = le16(bytes, start + 26)?;
    bytes.get(start + 30..(start + 30).checked_add(len)?)
}

/// Walks the central directory to name an entry that appears twice.
fn find_duplicate_name(bytes: &[u8], dir_start: u64) -> Option<String> {
    let mut at = usize::try_from(dir_start).ok()?;
    let mut seen = HashSet::new();
    while bytes.get(at..at.checked_add(4)?)? == b"PK\x01\x02" {
        let name_len = le16(bytes, at + 28)?;
        let extra_len = le16(bytes, at + 30)?;
        let comment_len = le16(bytes, at + 32)?;
        let name = bytes.get(at + 46..at + 46 + name_len)?;
        if !seen.insert(name) {
            return Some(String::from_utf8_lossy(name).into_owned());
        }
        at += 46 + name_len + extra_len + comment_len;
    }
    None
}

/// PEP 440 comparison when both parse, exact comparison otherwise.
fn same_version(a: &str, b: &str) -> bool {
    match (
        pep440_rs::Version::from_str(a),
        pep440_rs::Version::from_str(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Does `{name}-{version}{suffix}` name the same distribution and version as the file name?
pub(crate) fn dir_matches(dir: &str, suffix: &str, filename: &WheelFilename) -> bool {
    let Some(stem) = dir.strip_suffix(suffix) else {
        return false;
    };
    let Some((name, version)) = stem.rsplit_once('-') else {
        return false;
    };
    normalize_name(name) == filename.name.as_ref()
        && same_version(version, filename.version_as_written())
}

/// The top-level directories ending in `suffix` that hold at least one file.
fn top_dirs<'a>(paths: impl Iterator<Item = &'a str>, suffix: &str) -> BTreeSet<&'a str> {
    paths
        .filter_map(|p| p.split_once('/').map(|(top, _)| top))
        .filter(|top| top.ends_with(suffix))
        .collect()
}

/// Checks that the WHEEL file declares a 1.x `Wheel-Version`.
fn check_wheel_file(bytes: &[u8]) -> Result<(), EntryProblem> {
    let text = std::str::from_utf8(bytes).map_err(|_| EntryProblem::NotUtf8)?;
    let version = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("Wheel-Version"))
        .map(|(_, v)| v.trim())
        .ok_or_else(|| EntryProblem::WheelVersion("missing".into()))?;
    let (major, minor) = version.split_once('.').unwrap_or((version, "0"));
    if major != "1" || minor.parse::<u32>().is_err() {
        return Err(EntryProblem::WheelVersion(format!("`{version}`")));
    }
    Ok(())
}

fn scheme_for(
    archive_path: &str,
    data_dir: Option<&str>,
) -> Result<(Scheme, String), EntryProblem> {
    let Some(rest) = data_dir.and_then(|d| {
        archive_path
            .strip_prefix(d)
            .and_then(|r| r.strip_prefix('/'))
    }) else {
        return Ok((Scheme::SitePackages, archive_path.to_string()));
    };
    let (dir, sub) = rest.split_once('/').ok_or(EntryProblem::NoDataScheme)?;
    let scheme = match dir {
        "purelib" | "platlib" => Scheme::SitePackages,
        "scripts" => Scheme::Scripts,
        "headers" => Scheme::Headers,
        "data" => Scheme::Data,
        other => return Err(EntryProblem::UnknownDataScheme(other.to_string())),
    };
    Ok((scheme, sub.to_string()))
}

/// Parent directories of `path`, deepest first: `a/b/c` gives `a/b`, `a`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = path;
    std::iter::from_fn(move || {
        let (parent, _) = rest.rsplit_once('/')?;
        rest = parent;
        Some(parent)
    })
}

fn check_symlink(
    link: &WheelFile,
    installed: &HashMap<(Scheme, &str), &WheelFile>,
    dirs: &HashSet<(Scheme, &str)>,
) -> Result<(), EntryProblem> {
    let lossy = String::from_utf8_lossy(&link.data).into_owned();
    let target = std::str::from_utf8(&link.data)
        .ok()
        .filter(|t| {
            !t.is_empty()
                && !t.starts_with('/')
                && !t.contains(['\\', ':', '\0'])
                && !t.chars().any(char::is_control)
        })
        .ok_or_else(|| EntryProblem::SymlinkBadTarget {
            target: lossy.clone(),
        })?;
    let mut stack: Vec<&str> = link.path.split('/').collect();
    stack.pop();
    let components: Vec<&str> = target
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    for (i, component) in components.iter().enumerate() {
        if *component == ".." {
            if stack.pop().is_none() {
                return Err(EntryProblem::SymlinkEscapes { target: lossy });
            }
            continue;
        }
        stack.push(component);
        let so_far = stack.join("/");
        let is_last = i + 1 == components.len();
        if !is_last
            && let Some(via) = installed.get(&(link.scheme, so_far.as_str()))
            && via.kind == EntryKind::Symlink
        {
            return Err(EntryProblem::SymlinkThroughSymlink {
                target: lossy,
                via: via.archive_path.clone(),
            });
        }
    }
    let resolved = stack.join("/");
    if resolved.is_empty() {
        return Err(EntryProblem::SymlinkEscapes { target: lossy });
    }
    let key = (link.scheme, resolved.as_str());
    if resolved == link.path || !(installed.contains_key(&key) || dirs.contains(&key)) {
        return Err(EntryProblem::SymlinkDangling { target: lossy });
    }
    Ok(())
}

/// Checks `bytes` as the wheel `filename` (a file name, not a path) within `limits`.
pub fn validate_wheel(
    filename: &str,
    bytes: &[u8],
    limits: &ConvertLimits,
) -> Result<ValidatedWheel, WheelError> {
    validate_wheel_on(filename, bytes, limits, Reading::All).map(|(wheel, _)| wheel)
}

/// Is `path` one that [`Reading::Deferred`] reads during validation: a file of a `.dist-info`
/// directory (also one shipped under `.data/purelib|platlib`, which installs there and may be
/// dropped as generated, so it is never streamed and must be checked here) or a `.data`
/// directory's script?
fn read_upfront(path: &str) -> bool {
    let mut parts = path.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(top), ..) if top.ends_with(".dist-info") => true,
        (Some(top), Some("scripts"), _) => top.ends_with(".data"),
        (Some(top), Some("purelib" | "platlib"), Some(dir)) => {
            top.ends_with(".data") && dir.ends_with(".dist-info")
        }
        _ => false,
    }
}

/// [`validate_wheel`] decompressing what `reading` asks for. Returns the opened archive too,
/// for the deferred files' bytes.
pub(crate) fn validate_wheel_on<'a>(
    filename: &str,
    bytes: &'a [u8],
    limits: &ConvertLimits,
    reading: Reading,
) -> Result<(ValidatedWheel, Archive<'a>), WheelError> {
    let parsed = WheelFilename::parse(filename)?;
    let wheel = filename.to_string();
    let entry_err = |entry: &str, problem: EntryProblem| WheelError::Entry {
        wheel: wheel.clone(),
        entry: entry.to_string(),
        problem,
    };
    let archive_err = |problem: ArchiveProblem| WheelError::Archive {
        wheel: wheel.clone(),
        problem,
    };

    let archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|source| WheelError::Zip {
        wheel: wheel.clone(),
        source,
    })?;
    if archive.offset() != 0 {
        return Err(archive_err(ArchiveProblem::PrefixedData {
            offset: archive.offset(),
        }));
    }
    if archive.has_duplicate_names() {
        return Err(
            match find_duplicate_name(bytes, archive.central_directory_start()) {
                Some(name) => entry_err(&name, EntryProblem::Duplicate),
                None => archive_err(ArchiveProblem::DuplicateNames),
            },
        );
    }
    if archive.len() > limits.max_entries {
        return Err(archive_err(ArchiveProblem::TooManyEntries {
            count: archive.len(),
            limit: limits.max_entries,
        }));
    }

    // Pass 1: names, types and declared sizes, from the central directory alone.
    let mut pending = Vec::with_capacity(archive.len());
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|source| WheelError::Zip {
                wheel: wheel.clone(),
                source,
            })?;
        let raw = entry.name_raw();
        let name = std::str::from_utf8(raw)
            .map_err(|_| entry_err(&String::from_utf8_lossy(raw), EntryProblem::NameNotUtf8))?;
        let is_dir = name.ends_with('/');
        let path = name.strip_suffix('/').unwrap_or(name);
        check_entry_path(path).map_err(|p| entry_err(name, p))?;
        match local_header_name(bytes, entry.header_start()) {
            Some(local) if local == raw => {}
            Some(local) => {
                return Err(entry_err(
                    name,
                    EntryProblem::LocalHeaderMismatch {
                        local: String::from_utf8_lossy(local).into_owned(),
                    },
                ));
            }
            None => return Err(entry_err(name, EntryProblem::LocalHeaderMissing)),
        }
        if is_dir {
            continue;
        }
        if entry.encrypted() {
            return Err(entry_err(name, EntryProblem::Encrypted));
        }
        let mode = entry.unix_mode().unwrap_or(0);
        let kind = match mode & S_IFMT {
            0 | S_IFREG => EntryKind::File,
            S_IFLNK => EntryKind::Symlink,
            S_IFDIR => return Err(entry_err(name, EntryProblem::DirectoryWithoutSlash)),
            _ => return Err(entry_err(name, EntryProblem::UnsupportedFileType { mode })),
        };
        let method = entry.compression();
        if !matches!(
            method,
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(entry_err(
                name,
                EntryProblem::UnsupportedCompression {
                    method: format!("{method:?}"),
                },
            ));
        }
        let size = entry.size();
        let compressed = entry.compressed_size();
        if size > limits.max_file_size {
            return Err(entry_err(
                name,
                EntryProblem::TooLarge {
                    size,
                    limit: limits.max_file_size,
                },
            ));
        }
        if size > limits.ratio_min_size && size > compressed.saturating_mul(limits.max_ratio) {
            return Err(entry_err(
                name,
                EntryProblem::CompressionRatio {
                    size,
                    compressed,
                    limit: limits.max_ratio,
                },
            ));
        }
        total = total.saturating_add(size);
        // The compressed size may lie too; the archive bounds it.
        let expandable = compressed
            .min(bytes.len() as u64)
            .saturating_mul(limits.max_ratio)
            .max(limits.ratio_min_size);
        pending.push(Pending {
            index,
            path: path.to_string(),
            kind,
            executable: mode & 0o111 != 0,
            size,
            capacity: size.min(expandable),
        });
    }
    if total > limits.max_total_size {
        return Err(archive_err(ArchiveProblem::TotalTooLarge {
            size: total,
            limit: limits.max_total_size,
        }));
    }

    // Pass 2: the bytes, hashed as they are read (with `Reading::Deferred`, only what the checks
    // need; the rest is read as the package is written).
    let order: Vec<String> = pending.iter().map(|p| p.path.clone()).collect();
    let (now, later): (Vec<Pending>, Vec<Pending>) = pending.into_iter().partition(|p| {
        reading == Reading::All || p.kind == EntryKind::Symlink || read_upfront(&p.path)
    });
    let mut reader = archive.clone();
    let mut contents: HashMap<String, Contents> = HashMap::with_capacity(order.len());
    for p in now {
        let r = read_entry(&mut reader, &p).map_err(|problem| entry_err(&p.path, problem))?;
        contents.insert(
            p.path.clone(),
            Contents {
                pending: p,
                read: Some(r),
                expected: None,
            },
        );
    }
    for p in later {
        contents.insert(
            p.path.clone(),
            Contents {
                pending: p,
                read: None,
                expected: None,
            },
        );
    }

    // The .dist-info and .data directories.
    let expected_dist_info = format!(
        "{}-{}.dist-info",
        parsed.name_as_written(),
        parsed.version_as_written()
    );
    let dist_infos = top_dirs(order.iter().map(String::as_str), ".dist-info");
    let mut dist_info_iter = dist_infos.iter();
    let dist_info = match (dist_info_iter.next(), dist_info_iter.next()) {
        (None, _) => {
            return Err(archive_err(ArchiveProblem::NoDistInfo {
                expected: expected_dist_info,
            }));
        }
        (Some(a), Some(b)) => {
            return Err(archive_err(ArchiveProblem::MultipleDistInfo {
                first: (*a).to_string(),
                second: (*b).to_string(),
            }));
        }
        (Some(d), None) => (*d).to_string(),
    };
    if !dir_matches(&dist_info, ".dist-info", &parsed) {
        return Err(archive_err(ArchiveProblem::DistInfoMismatch {
            found: dist_info,
            expected: expected_dist_info,
        }));
    }
    let data_dirs = top_dirs(order.iter().map(String::as_str), ".data");
    let mut data_iter = data_dirs.iter();
    let data_dir = match (data_iter.next(), data_iter.next()) {
        (Some(a), Some(b)) => {
            return Err(archive_err(ArchiveProblem::MultipleDataDirs {
                first: (*a).to_string(),
                second: (*b).to_string(),
            }));
        }
        (d, _) => d.map(|d| (*d).to_string()),
    };
    if let Some(d) = &data_dir
        && !dir_matches(d, ".data", &parsed)
    {
        return Err(archive_err(ArchiveProblem::DataDirMismatch {
            found: d.clone(),
            expected: format!(
                "{}-{}.data",
                parsed.name_as_written(),
                parsed.version_as_written()
            ),
        }));
    }

    // RECORD against the archive, both ways.
    let record_path = format!("{dist_info}/RECORD");
    let signatures = [format!("{record_path}.jws"), format!("{record_path}.p7s")];
    let record_bytes = match contents.get(&record_path) {
        Some(Contents {
            pending,
            read: Some((data, _)),
            ..
        }) if pending.kind == EntryKind::File => data,
        _ => return Err(entry_err(&record_path, EntryProblem::Missing)),
    };
    let rows = parse_record(record_bytes).map_err(|e| entry_err(&record_path, e.into()))?;
    let mut by_path: HashMap<&str, &RecordEntry> = HashMap::with_capacity(rows.len());
    for row in &rows {
        if let Some(first) = by_path.insert(row.path.as_str(), row) {
            return Err(entry_err(
                &row.path,
                EntryProblem::DuplicateRecordRow {
                    first: first.line,
                    second: row.line,
                },
            ));
        }
        if !contents.contains_key(&row.path) {
            return Err(entry_err(&row.path, EntryProblem::NotInArchive));
        }
    }
    // A deferred file is checked as it streams against a sha256 row; any other row needs the
    // bytes now, for the check and for the installed RECORD's sha256.
    for row in &rows {
        let Some(hash) = &row.hash else { continue };
        let sha256_row = hash.algorithm == RecordHashAlgorithm::Sha256 && hash.digest.len() == 32;
        if let Some(c) = contents.get_mut(&row.path)
            && c.read.is_none()
            && !sha256_row
        {
            let r = read_entry(&mut reader, &c.pending).map_err(|e| entry_err(&row.path, e))?;
            c.read = Some(r);
        }
    }
    for path in &order {
        let Some(Contents {
            pending,
            read,
            expected,
        }) = contents.get_mut(path)
        else {
            continue;
        };
        let exempt = *path == record_path || signatures.contains(path);
        let Some(row) = by_path.get(path.as_str()) else {
            if exempt {
                continue;
            }
            return Err(entry_err(path, EntryProblem::NotInRecord));
        };
        if *path == record_path {
            continue;
        }
        let Some(hash) = &row.hash else {
            if exempt {
                continue;
            }
            return Err(entry_err(
                path,
                EntryProblem::MissingHash { line: row.line },
            ));
        };
        let expected_size = row
            .size
            .ok_or_else(|| entry_err(path, EntryProblem::MissingSize { line: row.line }))?;
        if expected_size != pending.size {
            // Unread, the archive's word is all there is: read the file to say which is wrong.
            if read.is_none() {
                read_entry(&mut reader, pending).map_err(|e| entry_err(path, e))?;
            }
            return Err(entry_err(
                path,
                EntryProblem::SizeMismatch {
                    expected: expected_size,
                    got: pending.size,
                },
            ));
        }
        let Some((data, sha256)) = read else {
            // Only sha256 rows are left unread (see above).
            *expected = <[u8; 32]>::try_from(hash.digest.as_slice()).ok();
            continue;
        };
        let got = match hash.algorithm {
            RecordHashAlgorithm::Sha256 => sha256.to_vec(),
            other => other.digest(data),
        };
        if got != hash.digest {
            let b64 = |d: &[u8]| data_encoding::BASE64URL_NOPAD.encode(d);
            return Err(entry_err(
                path,
                EntryProblem::HashMismatch {
                    algorithm: hash.algorithm.name(),
                    expected: b64(&hash.digest),
                    got: b64(&got),
                },
            ));
        }
    }

    // METADATA, WHEEL, entry_points.txt.
    let file_bytes = |name: &str| {
        contents
            .get(&format!("{dist_info}/{name}"))
            .filter(|c| c.pending.kind == EntryKind::File)
            .and_then(|c| c.read.as_ref())
            .map(|(data, _)| data.as_slice())
    };
    let metadata_path = format!("{dist_info}/METADATA");
    let metadata = WheelMetadata::parse(
        file_bytes("METADATA").ok_or_else(|| entry_err(&metadata_path, EntryProblem::Missing))?,
    )
    .map_err(|e| entry_err(&metadata_path, e.into()))?;
    if normalize_name(&metadata.name) != parsed.name.as_ref() {
        return Err(entry_err(
            &metadata_path,
            EntryProblem::NameMismatch {
                metadata: metadata.name.clone(),
                filename: parsed.name_as_written().to_string(),
            },
        ));
    }
    if !same_version(&metadata.version, parsed.version_as_written()) {
        return Err(entry_err(
            &metadata_path,
            EntryProblem::VersionMismatch {
                metadata: metadata.version.clone(),
                filename: parsed.version_as_written().to_string(),
            },
        ));
    }
    let wheel_path = format!("{dist_info}/WHEEL");
    check_wheel_file(
        file_bytes("WHEEL").ok_or_else(|| entry_err(&wheel_path, EntryProblem::Missing))?,
    )
    .map_err(|e| entry_err(&wheel_path, e))?;
    let entry_points = match file_bytes("entry_points.txt") {
        None => EntryPoints::default(),
        Some(b) => {
            let ep_path = format!("{dist_info}/entry_points.txt");
            let text =
                std::str::from_utf8(b).map_err(|_| entry_err(&ep_path, EntryProblem::NotUtf8))?;
            EntryPoints::parse(text).map_err(|e| entry_err(&ep_path, e.into()))?
        }
    };

    // Install locations.
    let generated: [String; 4] = [
        record_path.clone(),
        format!("{dist_info}/INSTALLER"),
        signatures[0].clone(),
        signatures[1].clone(),
    ];
    let mut files = Vec::with_capacity(order.len());
    for path in order {
        let Some(Contents {
            pending: p,
            read,
            expected,
        }) = contents.remove(&path)
        else {
            continue;
        };
        let (scheme, installed) =
            scheme_for(&path, data_dir.as_deref()).map_err(|e| entry_err(&path, e))?;
        if scheme == Scheme::SitePackages && generated.contains(&installed) {
            continue;
        }
        let (data, sha256, deferred) = match (read, expected) {
            (Some((data, sha256)), _) => (data, sha256, None),
            (None, Some(sha256)) => {
                let at = InArchive {
                    index: p.index,
                    size: p.size,
                };
                (Vec::new(), sha256, Some(at))
            }
            // Every unread file has a sha256 row by now; this is a bug, not the wheel's fault.
            (None, None) => {
                return Err(entry_err(&path, EntryProblem::Read("not read".into())));
            }
        };
        let mode = match (p.kind, scheme, p.executable) {
            (EntryKind::Symlink, _, _) => 0o777,
            (_, Scheme::Scripts, _) | (_, _, true) => 0o755,
            _ => 0o644,
        };
        files.push(WheelFile {
            archive_path: path,
            scheme,
            path: installed,
            kind: p.kind,
            mode,
            data,
            sha256,
            deferred,
        });
    }
    files.sort_by(|a, b| (a.scheme, &a.path).cmp(&(b.scheme, &b.path)));

    let mut installed: HashMap<(Scheme, &str), &WheelFile> = HashMap::with_capacity(files.len());
    for f in &files {
        if let Some(other) = installed.insert((f.scheme, f.path.as_str()), f) {
            return Err(entry_err(
                &f.archive_path,
                EntryProblem::Collision {
                    other: other.archive_path.clone(),
                },
            ));
        }
    }
    let mut dirs: HashSet<(Scheme, &str)> = HashSet::new();
    for f in &files {
        for parent in ancestors(&f.path) {
            if installed.contains_key(&(f.scheme, parent)) {
                return Err(entry_err(
                    &f.archive_path,
                    EntryProblem::FileAsDirectory {
                        file: parent.to_string(),
                    },
                ));
            }
            if !dirs.insert((f.scheme, parent)) {
                break;
            }
        }
    }
    for f in files.iter().filter(|f| f.kind == EntryKind::Symlink) {
        check_symlink(f, &installed, &dirs).map_err(|e| entry_err(&f.archive_path, e))?;
    }
    drop(installed);
    drop(dirs);

    let validated = ValidatedWheel {
        file_name: wheel.clone(),
        filename: parsed,
        dist_info,
        metadata,
        entry_points,
        files,
    };
    Ok((validated, archive))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths() {
        assert_eq!(check_entry_path("a/b.py"), Ok(()));
        assert_eq!(check_entry_path("a/..b/c..d"), Ok(()));
        for (bad, want) in [
            ("", EntryProblem::EmptyName),
            ("a/../b", EntryProblem::ParentDir),
            ("..", EntryProblem::ParentDir),
            ("./a", EntryProblem::DotComponent),
            ("a//b", EntryProblem::EmptyComponent),
            ("/etc/passwd", EntryProblem::Absolute),
            ("C:/x", EntryProblem::Colon),
            ("a\\..\\b", EntryProblem::Backslash),
            ("a\0b", EntryProblem::Nul),
            ("a\nb", EntryProblem::ControlCharacter),
        ] {
            assert_eq!(check_entry_path(bad), Err(want), "{bad:?}");
        }
    }

    #[test]
    fn ancestors_deepest_first() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a/b", "a"]);
        assert_eq!(ancestors("a").count(), 0);
    }

    #[test]
    fn wheel_versions() {
        assert!(check_wheel_file(b"Wheel-Version: 1.0\nTag: py3-none-any\n").is_ok());
        assert!(check_wheel_file(b"wheel-version: 1.9\n").is_ok());
        assert!(check_wheel_file(b"Wheel-Version: 2.0\n").is_err());
        assert!(check_wheel_file(b"Generator: x\n").is_err());
        assert!(check_wheel_file(b"\xff").is_err());
    }

    #[test]
    fn directory_names_match_normalized() {
        let f = WheelFilename::parse("Foo.Bar-1.0-py3-none-any.whl").unwrap();
        assert!(dir_matches("foo_bar-1.0.dist-info", ".dist-info", &f));
        assert!(dir_matches("Foo.Bar-1.0.0.dist-info", ".dist-info", &f));
        assert!(!dir_matches("foo_baz-1.0.dist-info", ".dist-info", &f));
        assert!(!dir_matches("foo_bar-1.1.dist-info", ".dist-info", &f));
        assert!(!dir_matches("foo_bar.dist-info", ".dist-info", &f));
    }
}
