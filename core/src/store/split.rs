//! Writing an object once: a `.dxpkg` stream split into its unpacked copy and its thin file
//! as it arrives (docs/design/store-one-copy.md, step 3).
//!
//! ```text
//! stream:  [ index ............ ][ file a ][0 pad][ script ][ file b ] ...
//!             kept in memory      a file    zero   kept       a file
//!                                 in tree   check  (memory)   in tree
//! ```
//!
//! The index comes first in a `.dxpkg`: once its bytes are in, every later byte belongs to a
//! known entry or to the zero padding between entries. A regular file's bytes go straight into
//! its file in a temporary unpacked tree; a kept entry's (a script, a symlink:
//! [`super::thin::is_kept`]) into memory, to make its unpacked form and the thin file's kept
//! section; padding must be zero (a thin object reassembles zeros there). The caller hashes the
//! whole stream for the object's name, then publishes the tree and the thin file.
//!
//! An index that cannot be split (not a valid index, an unsafe path, files that overlap) turns
//! the sink into a plain buffer of the whole object: the store then writes it as a full object,
//! whose checks report what is wrong, as they did before objects were written once.
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::thin::{self, ThinProblem};
use super::unpack::{
    MANIFEST, Manifest, create_file, create_new, link_stays_inside, safe_relative, scheme_dir,
    write_symlink,
};
use crate::dxpkg::{DxpkgReader, EntryKind, Scheme, data_extent};

/// A `Write` that splits a `.dxpkg` stream into a temporary unpacked tree and a thin file.
pub(crate) struct SplitSink {
    /// The temporary unpacked tree (removed when dropped unless published).
    tree: tempfile::TempDir,
    /// Bytes taken so far.
    pos: u64,
    stage: Stage,
    /// Why the stream cannot make an object, once known; every later write fails.
    problem: Option<ThinProblem>,
}

/// Where the sink is in the stream.
enum Stage {
    /// Before the index is whole: its bytes so far.
    Index(Vec<u8>),
    /// The index is planned; file bytes are arriving.
    Files(Box<Files>),
    /// The index cannot be split: every byte, for a full object.
    Whole(Vec<u8>),
}

/// The planned split of one object.
struct Files {
    /// The object's index (its bytes before the data section).
    index: Vec<u8>,
    object_len: u64,
    /// Every non-empty entry's bytes, sorted by offset, not overlapping.
    spans: Vec<Span>,
    /// The first span not yet whole.
    next: usize,
    /// The file of span `next`, once its first byte arrived.
    open: Option<std::fs::File>,
    /// Kept entries in entry order (the thin file's kept section is in that order).
    kept: Vec<Kept>,
    /// Every path of the tree an entry names, relative to its root.
    paths: HashSet<PathBuf>,
    /// Directories made so far.
    made_dirs: HashSet<PathBuf>,
    manifest: Manifest,
    /// The bytes of the package's `entry_points.txt`, for its script launchers.
    entry_points: Vec<u8>,
}

/// One non-empty entry's bytes in the stream.
struct Span {
    start: u64,
    len: u64,
    target: Target,
}

enum Target {
    /// A regular file of the tree; `entry_points`: its bytes are also kept in memory.
    File {
        rel: PathBuf,
        mode: u32,
        entry_points: bool,
    },
    /// Kept entry `k`.
    Kept(usize),
}

/// An entry whose unpacked form is not its bytes.
struct Kept {
    /// The entry's path in its scheme (what a symlink's target is relative to).
    path: String,
    rel: PathBuf,
    kind: EntryKind,
    data: Vec<u8>,
}

/// What a finished stream became.
pub(crate) enum Split {
    /// The unpacked tree (every file, kept entry, launcher and the manifest written) and the
    /// thin file's bytes.
    Thin {
        tree: tempfile::TempDir,
        thin: Vec<u8>,
    },
    /// The whole object, which could not be split: stored full.
    Whole(Vec<u8>),
}

impl SplitSink {
    /// A sink writing the unpacked files into `tree`, an empty temporary directory.
    pub(crate) fn new(tree: tempfile::TempDir) -> Self {
        Self {
            tree,
            pos: 0,
            stage: Stage::Index(Vec::new()),
            problem: None,
        }
    }

    /// Why the stream could not make an object, if it could not.
    pub(crate) fn problem(&self) -> Option<&ThinProblem> {
        self.problem.as_ref()
    }

    /// Ends the stream: the written tree and thin file, or the whole object.
    pub(crate) fn finish(self) -> Result<Split, super::StoreError> {
        let invalid = |problem| super::StoreError::InvalidThin {
            path: "<input>".into(),
            problem,
        };
        if let Some(problem) = self.problem {
            return Err(invalid(problem));
        }
        match self.stage {
            Stage::Index(bytes) | Stage::Whole(bytes) => Ok(Split::Whole(bytes)),
            Stage::Files(files) => {
                if self.pos != files.object_len {
                    return Err(super::StoreError::InvalidObject {
                        path: "<input>".into(),
                        source: crate::dxpkg::DxpkgError::Truncated {
                            needed: files.object_len,
                            len: self.pos,
                        },
                    });
                }
                files.finish(self.tree)
            }
        }
    }

    fn take(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        while !buf.is_empty() {
            match &mut self.stage {
                Stage::Whole(all) => {
                    all.extend_from_slice(buf);
                    self.pos += buf.len() as u64;
                    return Ok(());
                }
                Stage::Files(files) => {
                    return match files.take(self.tree.path(), self.pos, buf) {
                        Ok(()) => {
                            self.pos += buf.len() as u64;
                            Ok(())
                        }
                        Err(Failure::Io(e)) => Err(e),
                        Err(Failure::Format(problem)) => {
                            self.problem = Some(problem);
                            Err(std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                "the package cannot be stored as written",
                            ))
                        }
                    };
                }
                Stage::Index(index) => {
                    let want = match data_extent(index) {
                        Some((data_off, _)) => data_off.saturating_sub(index.len() as u64),
                        None if index.len() < crate::dxpkg::HEADER_LEN => {
                            (crate::dxpkg::HEADER_LEN - index.len()) as u64
                        }
                        None => 0,
                    };
                    let n = usize::try_from(want).unwrap_or(usize::MAX).min(buf.len());
                    index.extend_from_slice(&buf[..n]);
                    self.pos += n as u64;
                    buf = &buf[n..];
                    let complete = match data_extent(index) {
                        Some((data_off, _)) => index.len() as u64 >= data_off,
                        None => index.len() >= crate::dxpkg::HEADER_LEN,
                    };
                    if complete {
                        let index = std::mem::take(index);
                        self.stage = match Files::plan(index) {
                            Ok(files) => Stage::Files(Box::new(files)),
                            Err(Unsplittable(index)) => Stage::Whole(index),
                        };
                        if let Stage::Files(files) = &mut self.stage {
                            files.make_empty(self.tree.path())?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Write for SplitSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.problem.is_some() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the package cannot be stored as written",
            ));
        }
        self.take(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A failed write: the tree's, or the stream's own.
enum Failure {
    Io(std::io::Error),
    Format(ThinProblem),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// An index the sink cannot split, given back.
struct Unsplittable(Vec<u8>);

impl Files {
    /// The split of the object whose index is `index`; the index back when it cannot be split
    /// (the full object's checks then say why, if anything is wrong).
    fn plan(index: Vec<u8>) -> Result<Self, Unsplittable> {
        match Self::try_plan(&index) {
            Some((object_len, spans, kept, paths)) => Ok(Self {
                index,
                object_len,
                spans,
                next: 0,
                open: None,
                kept,
                paths,
                made_dirs: HashSet::new(),
                manifest: Manifest::default(),
                entry_points: Vec::new(),
            }),
            None => Err(Unsplittable(index)),
        }
    }

    #[allow(clippy::type_complexity)]
    fn try_plan(index: &[u8]) -> Option<(u64, Vec<Span>, Vec<Kept>, HashSet<PathBuf>)> {
        let (data_off, object_len) = data_extent(index)?;
        let reader = DxpkgReader::new_index(index, object_len).ok()?;
        reader.validate().ok()?;
        let entry_points = format!("{}/entry_points.txt", reader.dist_info());
        let mut spans = Vec::with_capacity(reader.len());
        let mut kept = Vec::new();
        let mut paths = HashSet::with_capacity(reader.len());
        for entry in reader.entries() {
            let entry = entry.ok()?;
            let rel = Path::new(scheme_dir(entry.scheme)).join(safe_relative(entry.path)?);
            paths.insert(rel.clone());
            let target = if thin::is_kept(&entry) {
                kept.push(Kept {
                    path: entry.path.to_string(),
                    rel,
                    kind: entry.kind,
                    data: Vec::with_capacity(usize::try_from(entry.len).ok()?.min(1 << 20)),
                });
                Target::Kept(kept.len() - 1)
            } else {
                let exec = entry.mode & 0o111 != 0;
                Target::File {
                    rel,
                    mode: if exec { 0o555 } else { 0o444 },
                    entry_points: entry.scheme == Scheme::SitePackages
                        && entry.path == entry_points,
                }
            };
            let end = entry.data_offset.checked_add(entry.len)?;
            if entry.data_offset < data_off || end > object_len {
                return None;
            }
            spans.push(Span {
                start: entry.data_offset,
                len: entry.len,
                target,
            });
        }
        spans.sort_by_key(|s| s.start);
        let non_empty: Vec<&Span> = spans.iter().filter(|s| s.len > 0).collect();
        if non_empty
            .windows(2)
            .any(|w| w[0].start + w[0].len > w[1].start)
        {
            return None;
        }
        Some((object_len, spans, kept, paths))
    }

    /// Creates the empty regular files (no byte of the stream makes them) and drops their
    /// spans, so that every span left is written by the stream.
    fn make_empty(&mut self, tree: &Path) -> std::io::Result<()> {
        let spans = std::mem::take(&mut self.spans);
        for span in spans {
            match (&span.target, span.len) {
                (Target::File { rel, mode, .. }, 0) => {
                    make_parent(&mut self.made_dirs, tree, rel)?;
                    let meta = create_file(&tree.join(rel), &[], *mode)?;
                    self.manifest.push(rel, &meta);
                }
                (Target::Kept(_), 0) => {}
                _ => self.spans.push(span),
            }
        }
        Ok(())
    }

    /// Takes `buf`, the stream's bytes from offset `pos` (all past the index).
    fn take(&mut self, tree: &Path, mut pos: u64, mut buf: &[u8]) -> Result<(), Failure> {
        while !buf.is_empty() {
            let Some(span) = self.spans.get(self.next) else {
                // Past the last file: padding to the object's end, and nothing after it.
                if pos.saturating_add(buf.len() as u64) > self.object_len {
                    return Err(Failure::Format(ThinProblem::Length {
                        expected: self.object_len,
                        got: pos.saturating_add(buf.len() as u64),
                    }));
                }
                return check_zero(buf);
            };
            if pos < span.start {
                let n = (span.start - pos).min(buf.len() as u64) as usize;
                check_zero(&buf[..n])?;
                pos += n as u64;
                buf = &buf[n..];
                continue;
            }
            let end = span.start + span.len;
            let n = (end - pos).min(buf.len() as u64) as usize;
            let bytes = &buf[..n];
            match &span.target {
                Target::Kept(k) => self.kept[*k].data.extend_from_slice(bytes),
                Target::File {
                    rel,
                    mode,
                    entry_points,
                } => {
                    if self.open.is_none() {
                        make_parent(&mut self.made_dirs, tree, rel)?;
                        self.open = Some(create_new(&tree.join(rel), *mode)?);
                    }
                    let file = self.open.as_mut().expect("opened above");
                    file.write_all(bytes).map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("failed to write `{}`: {e}", tree.join(rel).display()),
                        )
                    })?;
                    if *entry_points {
                        self.entry_points.extend_from_slice(bytes);
                    }
                }
            }
            pos += n as u64;
            buf = &buf[n..];
            if pos == end {
                if let (Some(file), Target::File { rel, .. }) = (self.open.take(), &span.target) {
                    // Recorded once written: what the manifest's stat check compares with.
                    let meta = file.metadata()?;
                    self.manifest.push(rel, &meta);
                }
                self.next += 1;
            }
        }
        Ok(())
    }

    /// Writes the kept entries' unpacked forms, the launchers and the manifest into `tree`,
    /// and makes the thin file. A symlink that leaves its root or a launcher with an unsafe
    /// name cannot be unpacked: the object is then reassembled whole (unpacking it reports
    /// that, as it did before).
    fn finish(mut self, tree: tempfile::TempDir) -> Result<Split, super::StoreError> {
        let launchers = crate::scripts::launchers_from(&self.entry_points);
        let links_stay_inside = self.kept.iter().all(|k| {
            k.kind != EntryKind::Symlink
                || std::str::from_utf8(&k.data).is_ok_and(|link| link_stays_inside(&k.path, link))
        });
        let launcher_paths: Option<Vec<PathBuf>> = launchers
            .iter()
            .map(|(name, _)| Some(Path::new("bin").join(safe_relative(name)?)))
            .collect();
        let (true, Some(launcher_paths)) = (links_stay_inside, launcher_paths) else {
            return Ok(Split::Whole(self.reassemble(tree.path())?));
        };
        {
            let root = tree.path();
            let kept = std::mem::take(&mut self.kept);
            for k in &kept {
                make_parent(&mut self.made_dirs, root, &k.rel)?;
                let target = root.join(&k.rel);
                match k.kind {
                    EntryKind::File => {
                        let rewritten = crate::scripts::rewrite_shebang(&k.data);
                        let bytes = rewritten.as_deref().unwrap_or(&k.data);
                        let meta = create_file(&target, bytes, 0o555)?;
                        self.manifest.push(&k.rel, &meta);
                    }
                    EntryKind::Symlink => {
                        let link = std::str::from_utf8(&k.data).expect("checked above");
                        write_symlink(link, &target)?;
                    }
                }
            }
            self.kept = kept;
            for ((_, bytes), rel) in launchers.iter().zip(&launcher_paths) {
                // A script the package ships wins over a launcher of the same name.
                if self.paths.insert(rel.clone()) {
                    make_parent(&mut self.made_dirs, root, rel)?;
                    let meta = create_file(&root.join(rel), bytes, 0o555)?;
                    self.manifest.push(rel, &meta);
                }
            }
            // Not synced, like the files it describes (docs/design/store-one-copy.md).
            create_file(&root.join(MANIFEST), &self.manifest.encode(), 0o444)?;
        }
        let index_len = self.index.len() as u64;
        let mut thin_bytes = self.index;
        for k in &self.kept {
            thin_bytes.extend_from_slice(&k.data);
        }
        let kept_len = thin_bytes.len() as u64 - index_len;
        thin_bytes.extend_from_slice(
            &thin::Trailer {
                object_len: self.object_len,
                index_len,
                kept_len,
            }
            .encode(),
        );
        Ok(Split::Thin {
            tree,
            thin: thin_bytes,
        })
    }

    /// The whole object again, from the index, the kept bytes and the files written to `tree`
    /// (zeros between them); a file that does not read back as written is an error.
    fn reassemble(&self, tree: &Path) -> std::io::Result<Vec<u8>> {
        let mut out = self.index.clone();
        out.resize(usize::try_from(self.object_len).unwrap_or(usize::MAX), 0);
        for span in &self.spans {
            let at = span.start as usize..(span.start + span.len) as usize;
            match &span.target {
                Target::Kept(k) => out[at].copy_from_slice(&self.kept[*k].data),
                Target::File { rel, .. } => {
                    let path = tree.join(rel);
                    let bytes = fs_err::read(&path)?;
                    if bytes.len() != at.len() {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("`{}` changed while it was written", path.display()),
                        ));
                    }
                    out[at].copy_from_slice(&bytes);
                }
            }
        }
        Ok(out)
    }
}

/// Makes the directory of `rel` under `tree` unless `made` says it was made.
fn make_parent(made: &mut HashSet<PathBuf>, tree: &Path, rel: &Path) -> std::io::Result<()> {
    let dir = rel.parent().unwrap_or(Path::new(""));
    if !made.contains(dir) {
        fs_err::create_dir_all(tree.join(dir))?;
        made.insert(dir.to_path_buf());
    }
    Ok(())
}

fn check_zero(bytes: &[u8]) -> Result<(), Failure> {
    if bytes.iter().any(|b| *b != 0) {
        return Err(Failure::Format(ThinProblem::Index(
            "padding that is not zero",
        )));
    }
    Ok(())
}
