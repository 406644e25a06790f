//! Unpacking a source distribution (`.tar.gz`, `.tgz`, `.tar`, `.zip`) into a directory, as
//! untrusted input.
//!
//! - Every member path is relative and made of plain names: absolute paths, `..`, drive
//!   prefixes and empty names are refused (the archive is malicious or broken either way).
//! - Nothing is written through a link: a member whose parent path is a symlink member is
//!   refused. Symlinks are created last, and only when their target is relative, stays inside
//!   the tree and passes through no other symlink (so a chain cannot walk out of it).
//! - Tar hard links become copies of a regular file unpacked before them.
//! - Only the executable bit of a file's mode is kept (no setuid, no world-writable files).
//! - The member count and the unpacked bytes are bounded ([`UnpackLimits`]), so that a
//!   decompression bomb stops with an error.
//!
//! The source tree is the archive's single top-level directory (`{name}-{version}/`), or the
//! destination itself when the archive has several top-level entries.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// How an sdist is packed, from its file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    /// `.tar.gz` or `.tgz`.
    TarGz,
    /// `.tar`.
    Tar,
    /// `.zip`.
    Zip,
}

impl ArchiveKind {
    /// The kind a file name says, `None` for kinds that cannot be unpacked here (`.tar.bz2`,
    /// `.tar.xz`).
    pub fn of(filename: &str) -> Option<Self> {
        let lower = filename.to_ascii_lowercase();
        if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
            Some(Self::TarGz)
        } else if lower.ends_with(".tar") {
            Some(Self::Tar)
        } else if lower.ends_with(".zip") {
            Some(Self::Zip)
        } else {
            None
        }
    }
}

/// Bounds on what one archive may unpack to.
#[derive(Clone, Copy, Debug)]
pub struct UnpackLimits {
    /// Members (files, directories, links).
    pub max_entries: usize,
    /// Bytes of all files together.
    pub max_total_bytes: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        // Generous for real sdists (the largest ones are a few hundred MiB unpacked), small
        // enough that a bomb stops long before the disk fills.
        Self {
            max_entries: 200_000,
            max_total_bytes: 4 << 30,
        }
    }
}

/// Why an archive was not unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// A member path that would land outside the destination, or is not a plain relative path.
    #[error("Refusing to unpack `{archive}`: member `{member}` {reason}")]
    UnsafePath {
        /// The archive's file name.
        archive: String,
        /// The member as named in the archive.
        member: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The archive unpacks to more than the limits allow.
    #[error("Refusing to unpack `{archive}`: {what} exceeds the limit of {limit}")]
    TooLarge {
        /// The archive's file name.
        archive: String,
        /// What overflowed (entries or bytes).
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The archive could not be read.
    #[error("Invalid archive `{archive}`: {reason}")]
    Invalid {
        /// The archive's file name.
        archive: String,
        /// Why.
        reason: String,
    },
    /// The file name names no kind of archive that can be unpacked.
    #[error(
        "Cannot unpack `{0}`: source distributions must be `.tar.gz`, `.tgz`, `.tar` or `.zip`"
    )]
    UnsupportedKind(String),
    /// Writing the tree failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What a member is, once its path is checked.
enum Member {
    Dir,
    File { executable: bool },
    Symlink(PathBuf),
    HardLink(PathBuf),
}

/// Writes checked members under `dest`, enforcing the limits and the no-link-traversal rule.
struct Writer<'a> {
    archive: &'a str,
    dest: &'a Path,
    limits: UnpackLimits,
    entries: usize,
    bytes: u64,
    /// Regular files written, for hard links.
    files: BTreeSet<PathBuf>,
    /// Symlinks, created once every other member is written.
    links: BTreeMap<PathBuf, PathBuf>,
}

impl<'a> Writer<'a> {
    fn new(archive: &'a str, dest: &'a Path, limits: UnpackLimits) -> Self {
        Self {
            archive,
            dest,
            limits,
            entries: 0,
            bytes: 0,
            files: BTreeSet::new(),
            links: BTreeMap::new(),
        }
    }

    fn unsafe_path(&self, member: &Path, reason: &'static str) -> UnpackError {
        UnpackError::UnsafePath {
            archive: self.archive.to_string(),
            member: member.display().to_string(),
            reason,
        }
    }

    /// `raw` as a relative path of plain names (a leading `./` dropped), or an error; `None`
    /// for the archive's root itself.
    fn check_path(&self, raw: &Path) -> Result<Option<PathBuf>, UnpackError> {
        let mut out = PathBuf::new();
        for c in raw.components() {
            match c {
                Component::Normal(name) => {
                    if name.to_str().is_none_or(|n| n.contains('\\')) {
                        return Err(self.unsafe_path(raw, "has a name that is not portable"));
                    }
                    out.push(name);
                }
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(self.unsafe_path(raw, "climbs out with `..`"));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.unsafe_path(raw, "is an absolute path"));
                }
            }
        }
        // A member under a symlink member would be written through the link.
        let mut prefix = PathBuf::new();
        for c in out.parent().into_iter().flat_map(Path::components) {
            prefix.push(c);
            if self.links.contains_key(&prefix) {
                return Err(self.unsafe_path(raw, "lies under a symlink"));
            }
        }
        Ok((!out.as_os_str().is_empty()).then_some(out))
    }

    fn count(&mut self) -> Result<(), UnpackError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(UnpackError::TooLarge {
                archive: self.archive.to_string(),
                what: "the number of members",
                limit: self.limits.max_entries as u64,
            });
        }
        Ok(())
    }

    /// Writes one member; `data` is read only for files.
    fn add(&mut self, raw: &Path, member: Member, data: &mut dyn Read) -> Result<(), UnpackError> {
        self.count()?;
        let Some(rel) = self.check_path(raw)? else {
            return Ok(());
        };
        let path = self.dest.join(&rel);
        match member {
            Member::Dir => fs_err::create_dir_all(&path)?,
            Member::File { executable } => {
                if let Some(parent) = path.parent() {
                    fs_err::create_dir_all(parent)?;
                }
                let left = self.limits.max_total_bytes - self.bytes;
                let mut file = fs_err::File::create(&path)?;
                let copied = std::io::copy(&mut data.take(left + 1), &mut file)?;
                if copied > left {
                    return Err(UnpackError::TooLarge {
                        archive: self.archive.to_string(),
                        what: "the unpacked size",
                        limit: self.limits.max_total_bytes,
                    });
                }
                self.bytes += copied;
                set_executable(&path, executable)?;
                self.files.insert(rel);
            }
            Member::HardLink(target) => {
                let target = self
                    .check_path(&target)?
                    .filter(|t| self.files.contains(t))
                    .ok_or_else(|| {
                        self.unsafe_path(raw, "is a hard link to no file unpacked before it")
                    })?;
                if let Some(parent) = path.parent() {
                    fs_err::create_dir_all(parent)?;
                }
                let copied = fs_err::copy(self.dest.join(&target), &path)?;
                self.bytes += copied;
                if self.bytes > self.limits.max_total_bytes {
                    return Err(UnpackError::TooLarge {
                        archive: self.archive.to_string(),
                        what: "the unpacked size",
                        limit: self.limits.max_total_bytes,
                    });
                }
                self.files.insert(rel);
            }
            Member::Symlink(target) => {
                self.links.insert(rel, target);
            }
        }
        Ok(())
    }

    /// Creates the symlinks, each checked against the whole set of members.
    fn finish(self) -> Result<(), UnpackError> {
        for (rel, target) in &self.links {
            if target.is_absolute() || target.has_root() {
                return Err(self.unsafe_path(rel, "is a symlink to an absolute path"));
            }
            // Resolve the target lexically from the link's directory: every step must stay
            // inside the tree and pass through no symlink, so that the lexical answer is the
            // real one.
            let mut at: Vec<&std::ffi::OsStr> = rel
                .parent()
                .into_iter()
                .flat_map(Path::components)
                .map(Component::as_os_str)
                .collect();
            for c in target.components() {
                match c {
                    Component::Normal(name) => {
                        at.push(name);
                        let so_far: PathBuf = at.iter().collect();
                        if self.links.contains_key(&so_far) {
                            return Err(self.unsafe_path(rel, "is a symlink to another symlink"));
                        }
                    }
                    Component::CurDir => {}
                    Component::ParentDir => {
                        if at.pop().is_none() {
                            return Err(self.unsafe_path(rel, "is a symlink out of the tree"));
                        }
                    }
                    Component::RootDir | Component::Prefix(_) => {
                        return Err(self.unsafe_path(rel, "is a symlink to an absolute path"));
                    }
                }
            }
            let path = self.dest.join(rel);
            if let Some(parent) = path.parent() {
                fs_err::create_dir_all(parent)?;
            }
            make_symlink(target, &path)?;
        }
        Ok(())
    }
}

#[cfg(unix)]
fn make_symlink(target: &Path, path: &Path) -> std::io::Result<()> {
    fs_err::os::unix::fs::symlink(target, path)
}

#[cfg(not(unix))]
fn make_symlink(target: &Path, path: &Path) -> std::io::Result<()> {
    // Symlinks need privileges on Windows; sdists rarely hold them, and a backend that needs
    // one reports the missing file itself.
    tracing::warn!(
        "skipping symlink `{}` -> `{}` of a source distribution",
        path.display(),
        target.display()
    );
    Ok(())
}

#[cfg(unix)]
fn set_executable(path: &Path, executable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if executable { 0o755 } else { 0o644 };
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_executable(_path: &Path, _executable: bool) -> std::io::Result<()> {
    Ok(())
}

/// Unpacks the sdist `bytes` (named `filename`) into the empty directory `dest` and returns its
/// source tree: the single top-level directory, else `dest`.
pub fn unpack_sdist(
    filename: &str,
    bytes: &[u8],
    dest: &Path,
    limits: UnpackLimits,
) -> Result<PathBuf, UnpackError> {
    let kind =
        ArchiveKind::of(filename).ok_or_else(|| UnpackError::UnsupportedKind(filename.into()))?;
    let mut writer = Writer::new(filename, dest, limits);
    match kind {
        ArchiveKind::TarGz => unpack_tar(flate2::read::GzDecoder::new(bytes), &mut writer)?,
        ArchiveKind::Tar => unpack_tar(bytes, &mut writer)?,
        ArchiveKind::Zip => unpack_zip(bytes, &mut writer)?,
    }
    writer.finish()?;
    let mut top = fs_err::read_dir(dest)?.collect::<Result<Vec<_>, _>>()?;
    Ok(match top.as_mut_slice() {
        [only] if only.file_type()?.is_dir() => only.path(),
        _ => dest.to_path_buf(),
    })
}

fn unpack_tar(reader: impl Read, writer: &mut Writer<'_>) -> Result<(), UnpackError> {
    let invalid = |e: std::io::Error| UnpackError::Invalid {
        archive: writer.archive.to_string(),
        reason: e.to_string(),
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(invalid)?;
    for entry in entries {
        let invalid = |e: std::io::Error| UnpackError::Invalid {
            archive: writer.archive.to_string(),
            reason: e.to_string(),
        };
        let mut entry = entry.map_err(invalid)?;
        let path = entry.path().map_err(invalid)?.into_owned();
        let kind = entry.header().entry_type();
        let link = || -> Result<PathBuf, UnpackError> {
            Ok(entry
                .link_name()
                .map_err(invalid)?
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default())
        };
        let member = match kind {
            tar::EntryType::Directory => Member::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => Member::File {
                executable: entry.header().mode().is_ok_and(|m| m & 0o111 != 0),
            },
            tar::EntryType::Symlink => Member::Symlink(link()?),
            tar::EntryType::Link => Member::HardLink(link()?),
            // Metadata records of the tar format itself carry nothing to unpack.
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => continue,
            _ => {
                return Err(writer.unsafe_path(&path, "is a device, fifo or unknown member type"));
            }
        };
        writer.add(&path, member, &mut entry)?;
    }
    Ok(())
}

fn unpack_zip(bytes: &[u8], writer: &mut Writer<'_>) -> Result<(), UnpackError> {
    let invalid = |e: zip::result::ZipError| UnpackError::Invalid {
        archive: writer.archive.to_string(),
        reason: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(invalid)?;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(invalid)?;
        // The raw name is checked by our rules (zip's own `enclosed_name` would accept some
        // paths ours refuse and the other way round: one rule set for both kinds).
        let path = PathBuf::from(file.name().map_err(invalid)?.replace('\\', "/"));
        let member = if file.is_dir() {
            Member::Dir
        } else if file.is_symlink() {
            let mut target = String::new();
            file.by_ref()
                .take(4096)
                .read_to_string(&mut target)
                .map_err(|e| UnpackError::Invalid {
                    archive: writer.archive.to_string(),
                    reason: e.to_string(),
                })?;
            Member::Symlink(PathBuf::from(target))
        } else {
            Member::File {
                executable: file.unix_mode().is_some_and(|m| m & 0o111 != 0),
            }
        };
        writer.add(&path, member, &mut file)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar member: path, kind, data or link target. Headers are written raw so that paths the
    /// `tar` crate's builder refuses (`..`, absolute) can be made.
    enum T<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Link(&'a str, &'a str),
        Hard(&'a str, &'a str),
    }

    fn tar_gz(members: &[T<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for m in members {
            let mut h = tar::Header::new_gnu();
            let (path, data, kind, link): (&str, &[u8], _, Option<&str>) = match m {
                T::File(p, d) => (p, d, tar::EntryType::Regular, None),
                T::Dir(p) => (p, b"", tar::EntryType::Directory, None),
                T::Link(p, t) => (p, b"", tar::EntryType::Symlink, Some(t)),
                T::Hard(p, t) => (p, b"", tar::EntryType::Link, Some(t)),
            };
            // Raw name bytes: the safe setters would refuse `..` and absolute paths.
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(t) = link {
                h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
            }
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            builder.append(&h, data).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    fn unpack(members: &[T<'_>]) -> (tempfile::TempDir, Result<PathBuf, UnpackError>) {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        let r = unpack_sdist(
            "p-1.0.tar.gz",
            &tar_gz(members),
            &dest,
            UnpackLimits::default(),
        );
        (dir, r)
    }

    fn refused(members: &[T<'_>], reason: &str) {
        let (dir, r) = unpack(members);
        match r {
            Err(e @ UnpackError::UnsafePath { .. }) => {
                assert!(e.to_string().contains(reason), "{e}");
            }
            other => panic!("expected a refusal ({reason}), got {other:?}"),
        }
        // Nothing was written outside the destination.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out"]);
    }

    #[test]
    fn a_plain_sdist_unpacks_to_its_top_directory() {
        let (_dir, r) = unpack(&[
            T::Dir("p-1.0/"),
            T::File("p-1.0/PKG-INFO", b"Name: p\n"),
            T::File("./p-1.0/p/__init__.py", b"x = 1\n"),
            T::Link("p-1.0/alias.py", "p/__init__.py"),
            T::Hard("p-1.0/copy.py", "p-1.0/p/__init__.py"),
        ]);
        let root = r.unwrap();
        assert!(root.ends_with("p-1.0"));
        assert_eq!(
            std::fs::read(root.join("p/__init__.py")).unwrap(),
            b"x = 1\n"
        );
        assert_eq!(std::fs::read(root.join("copy.py")).unwrap(), b"x = 1\n");
        #[cfg(unix)]
        assert_eq!(std::fs::read(root.join("alias.py")).unwrap(), b"x = 1\n");
    }

    #[test]
    fn parent_components_are_refused() {
        refused(&[T::File("p-1.0/../../evil", b"x")], "climbs out");
    }

    #[test]
    fn absolute_paths_are_refused() {
        refused(&[T::File("/tmp/evil", b"x")], "absolute path");
    }

    #[test]
    fn symlinks_out_of_the_tree_are_refused() {
        refused(&[T::Link("p-1.0/l", "../../etc")], "out of the tree");
        refused(&[T::Link("p-1.0/l", "/etc/passwd")], "absolute path");
    }

    #[test]
    fn writing_through_a_symlink_is_refused() {
        refused(
            &[T::Link("p-1.0/l", "."), T::File("p-1.0/l/x", b"x")],
            "under a symlink",
        );
    }

    #[test]
    fn symlink_chains_are_refused() {
        // `a/b -> ..` alone stays inside; `c -> a/b/../..` would leave through it.
        refused(
            &[
                T::Dir("p-1.0/a/"),
                T::Link("p-1.0/a/b", ".."),
                T::Link("p-1.0/c", "a/b/../.."),
            ],
            "another symlink",
        );
    }

    #[test]
    fn hard_links_to_unknown_files_are_refused() {
        refused(&[T::Hard("p-1.0/h", "/etc/passwd")], "absolute path");
        refused(&[T::Hard("p-1.0/h", "p-1.0/later")], "hard link");
    }

    #[test]
    fn bombs_stop_at_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![0u8; 10_000];
        let bytes = tar_gz(&[T::File("p/a", &big), T::File("p/b", &big)]);
        let limits = UnpackLimits {
            max_entries: 10,
            max_total_bytes: 15_000,
        };
        let e = unpack_sdist("p-1.0.tar.gz", &bytes, dir.path(), limits).unwrap_err();
        assert!(
            matches!(
                e,
                UnpackError::TooLarge {
                    what: "the unpacked size",
                    ..
                }
            ),
            "{e}"
        );
        let limits = UnpackLimits {
            max_entries: 1,
            max_total_bytes: 1 << 20,
        };
        let dir = tempfile::tempdir().unwrap();
        let e = unpack_sdist("p-1.0.tar.gz", &bytes, dir.path(), limits).unwrap_err();
        assert!(matches!(e, UnpackError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn zip_members_follow_the_same_rules() {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        zip.start_file("p-1.0/ok.py", opts).unwrap();
        std::io::Write::write_all(&mut zip, b"ok").unwrap();
        zip.start_file("p-1.0/../evil", opts).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        let dir = tempfile::tempdir().unwrap();
        let e = unpack_sdist("p-1.0.zip", &bytes, dir.path(), UnpackLimits::default()).unwrap_err();
        assert!(e.to_string().contains("climbs out"), "{e}");
    }

    #[test]
    fn unsupported_kinds_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let e =
            unpack_sdist("p-1.0.tar.bz2", b"", dir.path(), UnpackLimits::default()).unwrap_err();
        assert!(matches!(e, UnpackError::UnsupportedKind(_)), "{e}");
    }
}
