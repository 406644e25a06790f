//! A validated wheel becomes one `.dxpkg`: its files at their installed paths, plus an
//! `INSTALLER` and a RECORD rewritten for the installed layout.
//!
//! The installed RECORD lists paths relative to site-packages, as pip writes them for a POSIX
//! venv (`lib/pythonX.Y/site-packages`): scripts as `../../../bin/NAME`, `.data/data` files as
//! `../../../PATH`. Rows whose bytes the installer makes per venv carry no hash: the RECORD row
//! itself, `#!python` scripts (their shebang is rewritten), console and GUI script wrappers
//! (generated), and symlinks. Header files are listed only when the wheel's tags name exactly one
//! CPython minor version, since their installed path contains it.
use std::collections::BTreeMap;
use std::io::Write;

use super::entry_points::EntryPoints;
use super::error::WheelError;
use super::metadata::WheelMetadata;
use super::record::write_record;
use super::stream::{DeferredFile, write_package};
use super::validate::{Archive, ConvertLimits, Reading, ValidatedWheel, validate_wheel_on};
use crate::dxpkg::{DxpkgWriter, EntryKind, PreparedDxpkg, Scheme};
use crate::hash::sha256_record;

/// The contents of the `INSTALLER` file written into every installed `.dist-info`.
pub const INSTALLER: &[u8] = b"dx-py\n";

/// A wheel converted into `.dxpkg` bytes.
#[derive(Clone, Debug)]
pub struct ConvertedWheel {
    /// The `.dxpkg` bytes; the same wheel always gives the same bytes.
    pub dxpkg: Vec<u8>,
    /// The distribution name as METADATA gives it.
    pub name: String,
    /// The version as METADATA gives it.
    pub version: String,
    /// The `.dist-info` directory name.
    pub dist_info: String,
    /// The parsed METADATA.
    pub metadata: WheelMetadata,
    /// The console and GUI scripts the installer must generate in `bin/`.
    pub entry_points: EntryPoints,
}

/// What conversion tells about a wheel besides the package bytes.
#[derive(Clone, Debug)]
pub struct WheelInfo {
    /// The distribution name as METADATA gives it.
    pub name: String,
    /// The version as METADATA gives it.
    pub version: String,
    /// The `.dist-info` directory name.
    pub dist_info: String,
    /// The parsed METADATA.
    pub metadata: WheelMetadata,
    /// The console and GUI scripts the installer must generate in `bin/`.
    pub entry_points: EntryPoints,
}

/// A validated wheel laid out as a `.dxpkg` whose bytes are not written yet: stream them with
/// [`PreparedWheel::write_to`] (for instance into [`crate::store::PackageStore::store_with`]),
/// so the package never exists as a second copy in memory. Files [`prepare_wheel`] left in the
/// archive are decompressed as they are written, and checked against RECORD there.
#[derive(Debug)]
pub struct PreparedWheel<'a> {
    /// The package, ready to write; the same wheel always gives the same bytes. Private: its
    /// deferred entries must be filled by [`PreparedWheel::write_to`], which checks them.
    package: PreparedDxpkg,
    /// The wheel's name, version and metadata.
    pub info: WheelInfo,
    /// The wheel's file name, for errors.
    file_name: String,
    /// The files still in the archive, indexed by their package entry's token.
    deferred: Vec<DeferredFile>,
    /// The archive they are in.
    archive: Option<Archive<'a>>,
}

/// Why writing a [`PreparedWheel`] failed.
#[derive(Debug, thiserror::Error)]
pub enum WheelWriteError {
    /// The destination refused the bytes.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A file left in the archive turned out bad as it was read (hash or size mismatch, corrupt
    /// data): what was written is not a package and must be thrown away.
    #[error(transparent)]
    Wheel(Box<WheelError>),
}

impl From<WheelError> for WheelWriteError {
    fn from(e: WheelError) -> Self {
        Self::Wheel(Box::new(e))
    }
}

impl PreparedWheel<'_> {
    /// The size of the package [`write_to`](Self::write_to) writes.
    pub fn len(&self) -> u64 {
        self.package.len()
    }

    /// True for the impossible empty package; here for clippy.
    pub fn is_empty(&self) -> bool {
        self.package.is_empty()
    }

    /// The bytes of the package's entry `path` of `scheme`, when held in memory (see
    /// [`crate::dxpkg::PreparedDxpkg::inline`]).
    pub fn inline(&self, scheme: crate::dxpkg::Scheme, path: &str) -> Option<&[u8]> {
        self.package.inline(scheme, path)
    }

    /// The package's entries and where [`write_to`](Self::write_to) will put their bytes.
    pub fn layout(&self) -> crate::dxpkg::PackageLayout {
        self.package.layout()
    }

    /// Writes the package to `out` and returns the wheel's description.
    pub fn write_to(self, out: impl Write) -> Result<WheelInfo, WheelWriteError> {
        let Self {
            package,
            info,
            file_name,
            deferred,
            mut archive,
        } = self;
        write_package(package, out, &deferred, archive.as_mut(), &file_name)?;
        Ok(info)
    }
}

impl PreparedWheel<'_> {
    /// Writes the package into memory.
    fn into_bytes(self) -> Result<ConvertedWheel, WheelError> {
        let file_name = self.file_name.clone();
        let mut dxpkg = Vec::with_capacity(usize::try_from(self.package.len()).unwrap_or(0));
        let info = self.write_to(&mut dxpkg).map_err(|e| match e {
            WheelWriteError::Wheel(e) => *e,
            WheelWriteError::Io(source) => WheelError::Write {
                wheel: file_name,
                source: crate::dxpkg::DxpkgWriterError::Write(source),
            },
        })?;
        Ok(ConvertedWheel {
            dxpkg,
            name: info.name,
            version: info.version,
            dist_info: info.dist_info,
            metadata: info.metadata,
            entry_points: info.entry_points,
        })
    }
}

/// Checks the wheel `filename` (a file name, not a path) with default limits and converts it.
pub fn convert_wheel(filename: &str, bytes: &[u8]) -> Result<ConvertedWheel, WheelError> {
    convert_wheel_with_limits(filename, bytes, &ConvertLimits::default())
}

/// [`convert_wheel`] with explicit size limits.
pub fn convert_wheel_with_limits(
    filename: &str,
    bytes: &[u8],
    limits: &ConvertLimits,
) -> Result<ConvertedWheel, WheelError> {
    prepare_wheel(filename, bytes, limits)?.into_bytes()
}

/// Checks the wheel `filename` within `limits` and lays it out as a package, decompressing only
/// what the checks need; the rest is decompressed (and checked against RECORD) as the package
/// is written, so a wheel never sits in memory decompressed.
pub fn prepare_wheel<'a>(
    filename: &str,
    bytes: &'a [u8],
    limits: &ConvertLimits,
) -> Result<PreparedWheel<'a>, WheelError> {
    let (wheel, archive) = validate_wheel_on(filename, bytes, limits, Reading::Deferred)?;
    let mut prepared = prepare_validated(wheel)?;
    prepared.archive = Some(archive);
    Ok(prepared)
}

/// The Python `X.Y` every tag of the wheel names, when they name exactly one CPython version.
fn single_cpython_version(wheel: &ValidatedWheel) -> Option<String> {
    let mut found: Option<String> = None;
    for tag in &wheel.filename.tags {
        let digits = tag.python.strip_prefix("cp3")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let version = format!("3.{digits}");
        match &found {
            Some(v) if *v != version => return None,
            _ => found = Some(version),
        }
    }
    found
}

/// Turns a validated wheel into `.dxpkg` bytes.
pub fn convert_validated(wheel: ValidatedWheel) -> Result<ConvertedWheel, WheelError> {
    prepare_validated(wheel)?.into_bytes()
}

/// Lays a validated wheel out as a `.dxpkg` (its files at their installed paths, the installed
/// RECORD and INSTALLER added) without writing the bytes; every refusal happens here, except
/// the size and hash checks of files left in the archive, made as they are written.
pub fn prepare_validated(wheel: ValidatedWheel) -> Result<PreparedWheel<'static>, WheelError> {
    let name = wheel.metadata.name.clone();
    let py = single_cpython_version(&wheel);
    let dist_info = wheel.dist_info.clone();
    let mut rows: BTreeMap<String, Option<(String, u64)>> = BTreeMap::new();
    let mut writer = DxpkgWriter::new(&name, &wheel.metadata.version, &dist_info);
    let mut deferred = Vec::new();

    for f in wheel.files {
        let record_path = match f.scheme {
            Scheme::SitePackages => Some(f.path.clone()),
            Scheme::Scripts => Some(format!("../../../bin/{}", f.path)),
            Scheme::Data => Some(format!("../../../{}", f.path)),
            Scheme::Headers => py
                .as_ref()
                .map(|py| format!("../../../include/site/python{py}/{name}/{}", f.path)),
        };
        if let Some(record_path) = record_path {
            let rewritten = f.scheme == Scheme::Scripts && f.data.starts_with(b"#!python");
            let hash = (f.kind == EntryKind::File && !rewritten)
                .then(|| (data_encoding::BASE64URL_NOPAD.encode(&f.sha256), f.len()));
            rows.insert(record_path, hash);
        }
        match f.deferred {
            None => writer.add(f.scheme, &f.path, f.kind, f.mode, f.data),
            Some(at) => {
                writer.add_deferred(f.scheme, &f.path, f.kind, f.mode, at.size, deferred.len());
                deferred.push(DeferredFile {
                    archive_path: f.archive_path,
                    at,
                    sha256: f.sha256,
                });
            }
        }
    }
    for ep in wheel
        .entry_points
        .console_scripts
        .iter()
        .chain(&wheel.entry_points.gui_scripts)
    {
        rows.entry(format!("../../../bin/{}", ep.name))
            .or_insert(None);
    }
    let installer_path = format!("{dist_info}/INSTALLER");
    rows.insert(
        installer_path.clone(),
        Some((sha256_record(INSTALLER), INSTALLER.len() as u64)),
    );
    let record_path = format!("{dist_info}/RECORD");
    rows.insert(record_path.clone(), None);
    let rows: Vec<_> = rows.into_iter().collect();
    writer.add(
        Scheme::SitePackages,
        &installer_path,
        EntryKind::File,
        0o644,
        INSTALLER.to_vec(),
    );
    writer.add(
        Scheme::SitePackages,
        &record_path,
        EntryKind::File,
        0o644,
        write_record(&rows),
    );
    let package = writer.prepare().map_err(|source| WheelError::Write {
        wheel: wheel.file_name.clone(),
        source,
    })?;
    Ok(PreparedWheel {
        package,
        file_name: wheel.file_name,
        deferred,
        archive: None,
        info: WheelInfo {
            name,
            version: wheel.metadata.version.clone(),
            dist_info,
            metadata: wheel.metadata,
            entry_points: wheel.entry_points,
        },
    })
}
