//! One requirement, whatever its form: a name with version specifiers (from an index), a wheel
//! file (a path or URL: name and version from the file name), or source that needs a build (a
//! local project directory, `-e DIR`, a source archive), with its extras, marker and hashes.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{
    ExtraName, MarkerTree, PackageName, Requirement, RequirementOrigin, VerbatimUrl, VersionOrUrl,
};
use url::Url;

use super::error::{Location, RequirementsError};
use crate::names::normalize_name;
use crate::wheel::WheelFilename;

/// One requirement line (or one `-e` option), parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequirementEntry {
    /// The package name as written, or as the wheel file names it. `None` for source named only
    /// by its path (`./project`, `-e ../lib`): its name is known after a build.
    pub name: Option<String>,
    /// Extras, normalized, sorted, without duplicates.
    pub extras: Vec<String>,
    /// Version specifiers; empty for a direct reference or a bare name.
    pub specifiers: VersionSpecifiers,
    /// The environment marker, `None` when the requirement always applies.
    pub marker: Option<MarkerTree>,
    /// Where the distribution comes from.
    pub source: RequirementSource,
    /// Allowed sha256 digests of the distribution file, lowercase hex, sorted, without duplicates.
    pub hashes: Vec<String>,
    /// Where it was written.
    pub location: Location,
}

/// Where the distribution of a requirement comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequirementSource {
    /// The package index (`name`, `name>=1,<2`, `name==1.0`).
    Index,
    /// A wheel file at a path or URL (`name @ file:///…/x-1.0-py3-none-any.whl`,
    /// `./dist/x-1.0-py3-none-any.whl`, `name @ https://…/x.whl`).
    Wheel(WheelReference),
    /// Source that must be built first (issue #16): a local project or a source archive.
    Build(BuildReference),
}

/// A wheel named by path or URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelReference {
    /// Where the file is (`file://` for local files).
    pub url: Url,
    /// The local file, absolute; `None` for a remote one.
    pub path: Option<PathBuf>,
    /// The version its file name gives.
    pub version: Version,
    /// The local source this wheel was built from (`RequirementEntry::built_as`): the lock
    /// names that source, not the wheel in this machine's build cache.
    pub built_from: Option<BuildReference>,
}

/// Source named by path or URL, to be built before it can be installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildReference {
    /// Where it is (`file://` for local paths).
    pub url: Url,
    /// The local directory or archive, absolute; `None` for a remote archive.
    pub path: Option<PathBuf>,
    /// A project directory or a source archive.
    pub kind: BuildKind,
    /// `-e`: installed editable (only a local directory can be).
    pub editable: bool,
}

/// What a [`BuildReference`] points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildKind {
    /// A project directory (with a `pyproject.toml` or `setup.py`).
    Directory,
    /// A source archive (`.tar.gz`, `.zip`, …).
    Archive,
}

/// File name endings of source archives.
const ARCHIVE_EXTENSIONS: [&str; 6] = [".tar.gz", ".zip", ".tgz", ".tar.bz2", ".tar.xz", ".tar"];

impl RequirementEntry {
    /// The PEP 503-normalized name, when the entry has one.
    pub fn normalized_name(&self) -> Option<String> {
        self.name.as_deref().map(normalize_name)
    }

    /// The marker in PEP 508 canonical form, `None` when it always applies.
    pub fn marker_string(&self) -> Option<String> {
        self.marker.as_ref().and_then(settled_marker)
    }

    /// Whether this is a `-e` entry.
    pub fn is_editable(&self) -> bool {
        matches!(&self.source, RequirementSource::Build(b) if b.editable)
    }

    /// The requirement in the form this module writes (and reads back to the same entry):
    /// `name[extras]specifiers ; marker`, `name[extras] @ URL ; marker`, or for unnamed source
    /// `URL[extras] ; marker` (with `#egg=name` when it has a name and `-e ` when editable).
    /// Without hashes.
    pub fn requirement_text(&self) -> String {
        let mut out = String::new();
        let extras = if self.extras.is_empty() {
            String::new()
        } else {
            format!("[{}]", self.extras.join(","))
        };
        match &self.source {
            RequirementSource::Index => {
                let name = self.name.as_deref().unwrap_or_default();
                let _ = write!(out, "{name}{extras}{}", self.specifiers);
            }
            RequirementSource::Wheel(w) => {
                let name = self.name.as_deref().unwrap_or_default();
                let _ = write!(out, "{name}{extras} @ {}", w.url);
            }
            RequirementSource::Build(b) if b.editable || self.name.is_none() => {
                if b.editable {
                    out.push_str("-e ");
                }
                out.push_str(b.url.as_str());
                if let Some(name) = &self.name {
                    let _ = write!(out, "#egg={name}");
                }
                out.push_str(&extras);
            }
            RequirementSource::Build(b) => {
                let name = self.name.as_deref().unwrap_or_default();
                let _ = write!(out, "{name}{extras} @ {}", b.url);
            }
        }
        if let Some(marker) = self.marker_string() {
            out.push_str(" ; ");
            out.push_str(&marker);
        }
        out
    }

    /// The requirement as `pep508_rs` gives it to the resolver (a wheel file as `name @ URL`).
    /// Source that needs a build is refused, naming the line.
    pub fn to_requirement(&self) -> Result<Requirement, RequirementsError> {
        let invalid = |reason: String| RequirementsError::Invalid {
            at: self.location.clone(),
            text: self.requirement_text(),
            reason,
        };
        let version_or_url = match &self.source {
            RequirementSource::Index => (!self.specifiers.is_empty())
                .then(|| VersionOrUrl::VersionSpecifier(self.specifiers.clone())),
            RequirementSource::Wheel(w) => {
                Some(VersionOrUrl::Url(VerbatimUrl::from_url(w.url.clone())))
            }
            RequirementSource::Build(_) => {
                return Err(RequirementsError::NeedsBuild {
                    at: self.location.clone(),
                    text: self.requirement_text(),
                });
            }
        };
        let name = self.name.clone().unwrap_or_default();
        let name = PackageName::new(name).map_err(|e| invalid(e.to_string()))?;
        let extras = self
            .extras
            .iter()
            .map(|x| ExtraName::new(x.clone()).map_err(|e| invalid(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Requirement {
            name,
            extras,
            version_or_url,
            marker: self.marker.clone().unwrap_or_default(),
            origin: Some(RequirementOrigin::File(self.location.path.clone())),
        })
    }
}

/// The marker's display in a form that reads back as itself.
pub(super) fn settled_marker(marker: &MarkerTree) -> Option<String> {
    let mut text = marker.try_to_string()?;
    // pep508_rs's display is not always a fixed point: it may normalize again what it wrote
    // (`python_version < '0'` reads back as `python_full_version < '0'`). Settle on the form
    // that reads back as itself, so that a written file reads back to the same markers and
    // the same inputs hash (found by the requirements fuzz target).
    for _ in 0..4 {
        let again = text
            .parse::<MarkerTree>()
            .ok()
            .and_then(|m| m.try_to_string());
        match again {
            Some(again) if again != text => text = again,
            _ => break,
        }
    }
    Some(text)
}

/// Parses one requirement (the text before its options) written at `at`. Relative paths are
/// relative to the directory of the file it is in. `editable` is set for the value of `-e`.
pub(super) fn parse_entry(
    text: &str,
    hashes: Vec<String>,
    editable: bool,
    at: &Location,
) -> Result<RequirementEntry, RequirementsError> {
    let invalid = RequirementsError::invalid_at(at, text);
    let (head, marker) = split_marker(text);
    let reference = if let Some((name_part, location)) = named_reference(head) {
        let (name, extras, marker) = parse_named(name_part, marker).map_err(invalid)?;
        Reference {
            name: Some(name),
            extras,
            marker,
            location: location.to_string(),
        }
    } else if editable || looks_like_path_or_url(head) {
        let (location, extras) = split_trailing_extras(head);
        let (location, egg) = match location.split_once("#egg=") {
            Some((l, egg)) => (l, Some(egg)),
            None => (location, None),
        };
        // Extras and marker are checked as those of a requirement on a placeholder name.
        let probe = format!("{}{extras}", egg.unwrap_or("placeholder"));
        let (name, extras, marker) = parse_named(&probe, marker).map_err(invalid)?;
        Reference {
            name: egg.map(|_| name),
            extras,
            marker,
            location: location.to_string(),
        }
    } else {
        return parse_index_requirement(text, hashes, at);
    };
    let unsupported = |reason| RequirementsError::UnsupportedReference {
        at: at.clone(),
        text: text.to_string(),
        reason,
    };
    let base = at.path.parent().unwrap_or(Path::new(""));
    let (url, path) = resolve_location(&reference.location, base).map_err(invalid)?;
    let mut name = reference.name;
    let kind = direct_reference_kind(&url);
    if let DirectReferenceKind::Unsupported(reason) = kind {
        return Err(unsupported(reason));
    }
    if editable && kind != DirectReferenceKind::Directory {
        return Err(unsupported(
            "only a local project directory can be installed editable",
        ));
    }
    let source = match kind {
        DirectReferenceKind::Wheel => {
            let parsed =
                WheelFilename::parse(&file_name_of(&url)).map_err(|e| invalid(e.to_string()))?;
            let version = parsed.version.clone();
            match &name {
                Some(given) if normalize_name(given) != parsed.name.as_ref() => {
                    return Err(invalid(format!(
                        "the name `{given}` does not match the wheel's `{}`",
                        parsed.name_as_written()
                    )));
                }
                Some(_) => {}
                None => name = Some(parsed.name_as_written().to_string()),
            }
            RequirementSource::Wheel(WheelReference {
                url,
                path,
                version,
                built_from: None,
            })
        }
        DirectReferenceKind::SourceArchive | DirectReferenceKind::Directory => {
            let kind = if kind == DirectReferenceKind::Directory {
                BuildKind::Directory
            } else {
                BuildKind::Archive
            };
            RequirementSource::Build(BuildReference {
                url,
                path,
                kind,
                editable,
            })
        }
        DirectReferenceKind::Unsupported(reason) => return Err(unsupported(reason)),
    };
    Ok(RequirementEntry {
        name,
        extras: reference.extras,
        specifiers: VersionSpecifiers::empty(),
        marker: reference.marker,
        source,
        hashes,
        location: at.clone(),
    })
}

/// What the URL of a direct reference (`name @ URL`) points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectReferenceKind {
    /// A wheel file, local or remote: installable as it is.
    Wheel,
    /// A source archive, local or remote: needs a build.
    SourceArchive,
    /// A local directory (a project): needs a build.
    Directory,
    /// Something this tool cannot use, and why (a VCS URL, another scheme, a remote page).
    Unsupported(&'static str),
}

/// Classifies a direct reference's URL by its scheme and the end of its path.
pub fn direct_reference_kind(url: &Url) -> DirectReferenceKind {
    let scheme = url.scheme();
    if scheme.contains('+') || matches!(scheme, "git" | "hg" | "svn" | "bzr") {
        return DirectReferenceKind::Unsupported(
            "version control URLs are not supported: build a wheel and name the wheel file",
        );
    }
    if !matches!(scheme, "file" | "http" | "https") {
        return DirectReferenceKind::Unsupported(
            "only `file:`, `http:` and `https:` URLs and local paths are supported",
        );
    }
    let file_name = file_name_of(url).to_ascii_lowercase();
    if file_name.ends_with(".whl") {
        DirectReferenceKind::Wheel
    } else if ARCHIVE_EXTENSIONS
        .iter()
        .any(|ext| file_name.ends_with(ext))
    {
        DirectReferenceKind::SourceArchive
    } else if scheme == "file" {
        DirectReferenceKind::Directory
    } else {
        DirectReferenceKind::Unsupported(
            "a URL must name a wheel (`.whl`) or a source archive (`.tar.gz`, `.zip`)",
        )
    }
}

/// The last segment of a URL's path, percent-decoded.
fn file_name_of(url: &Url) -> String {
    url.path_segments()
        .and_then(|mut s| s.next_back())
        .map(percent_decode)
        .unwrap_or_default()
}

/// A direct reference taken apart.
struct Reference {
    name: Option<String>,
    extras: Vec<String>,
    marker: Option<MarkerTree>,
    location: String,
}

/// `head ; marker` split at the first `;` that follows whitespace (a URL may hold a `;`), or a
/// `;` anywhere when the head is a plain requirement.
fn split_marker(text: &str) -> (&str, Option<&str>) {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b';' && i > 0 && bytes[i - 1].is_ascii_whitespace() {
            return (text[..i].trim_end(), Some(text[i + 1..].trim()));
        }
    }
    if !looks_like_path_or_url(text)
        && named_reference(text).is_none()
        && let Some((head, marker)) = text.split_once(';')
    {
        return (head.trim_end(), Some(marker.trim()));
    }
    (text, None)
}

/// `name[extras] @ location` -> (`name[extras]`, `location`).
fn named_reference(head: &str) -> Option<(&str, &str)> {
    let name = written_name(head)?;
    let rest = &head[name.len()..];
    let after_extras = match rest.trim_start().strip_prefix('[') {
        Some(inside) => inside.split_once(']')?.1,
        None => rest,
    };
    let location = after_extras.trim_start().strip_prefix('@')?;
    let name_part = &head[..head.len() - after_extras.len()];
    Some((name_part.trim_end(), location.trim()))
}

/// `location[extra1,extra2]` -> (`location`, `[extra1,extra2]`).
fn split_trailing_extras(head: &str) -> (&str, &str) {
    if head.ends_with(']')
        && let Some(open) = head.rfind('[')
    {
        return (&head[..open], &head[open..]);
    }
    (head, "")
}

/// Whether the text is a path or URL rather than a PEP 508 requirement: its first word is a
/// URL or names a wheel or archive file, or it does not start with a name (`./x`, `/x`, `~/x`),
/// or its name is followed by a path separator or a scheme's `:` (`dist/x`, `file:…`, `C:\\…`).
fn looks_like_path_or_url(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or(text);
    let (bare, _) = split_trailing_extras(first);
    let lower = bare.to_ascii_lowercase();
    if lower.contains("://")
        || lower.ends_with(".whl")
        || ARCHIVE_EXTENSIONS.iter().any(|ext| lower.ends_with(ext))
    {
        return true;
    }
    match written_name(text) {
        None => text.starts_with(['.', '/', '\\', '~']),
        Some(name) => text[name.len()..].starts_with(['/', '\\', ':']),
    }
}

/// Name, extras and marker of `name[extras]` with an optional marker.
fn parse_named(
    name_part: &str,
    marker: Option<&str>,
) -> Result<(String, Vec<String>, Option<MarkerTree>), String> {
    let text = match marker {
        Some(m) => format!("{name_part} ; {m}"),
        None => name_part.to_string(),
    };
    pep508_guard(&text)?;
    let requirement: Requirement =
        Requirement::from_str(&text).map_err(|e| e.message.to_string())?;
    if requirement.version_or_url.is_some() {
        return Err("a direct reference cannot also have version specifiers".to_string());
    }
    let name = written_name(name_part).map_or_else(|| requirement.name.to_string(), str::to_string);
    Ok((
        name,
        sorted_extras(&requirement),
        marker_of(requirement.marker),
    ))
}

fn sorted_extras(requirement: &Requirement) -> Vec<String> {
    let mut extras: Vec<String> = requirement.extras.iter().map(ToString::to_string).collect();
    extras.sort();
    extras.dedup();
    extras
}

fn marker_of(marker: MarkerTree) -> Option<MarkerTree> {
    (!marker.is_true()).then_some(marker)
}

/// A path (relative to `base`) or URL -> its URL and, for a local one, its absolute path.
fn resolve_location(location: &str, base: &Path) -> Result<(Url, Option<PathBuf>), String> {
    let lower = location.to_ascii_lowercase();
    let scheme = lower
        .split_once("://")
        .map(|(s, _)| s)
        .or_else(|| lower.starts_with("file:").then_some("file"));
    match scheme {
        Some("file") => {
            let url = Url::parse(location).map_err(|e| e.to_string())?;
            let path = url
                .to_file_path()
                .map_err(|()| "a `file:` URL must hold an absolute local path".to_string())?;
            // The same file as a path gives the same URL (no host, query or fragment).
            let url = Url::from_file_path(&path)
                .map_err(|()| format!("`{}` is not a valid local path", path.display()))?;
            Ok((url, Some(path)))
        }
        // Other schemes are classified by `direct_reference_kind`, which refuses them.
        Some(_) => {
            let url = Url::parse(location).map_err(|e| e.to_string())?;
            Ok((url, None))
        }
        None => {
            let joined = base.join(location);
            let path = std::path::absolute(&joined)
                .map_err(|e| format!("cannot make `{}` absolute: {e}", joined.display()))?;
            let path = without_dot_dot(&path);
            let url = Url::from_file_path(&path)
                .map_err(|()| format!("`{}` is not a valid local path", path.display()))?;
            Ok((url, Some(path)))
        }
    }
}

/// `a/b/../c` -> `a/c`, without looking at the disk: a URL cannot hold `..` (it would be
/// taken out when the URL is read back), so the path must not either.
fn without_dot_dot(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `%xx` decoding of a URL path segment (a wheel's file name in a URL).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `name[extras] specifiers ; marker` requirement from an index.
fn parse_index_requirement(
    text: &str,
    hashes: Vec<String>,
    at: &Location,
) -> Result<RequirementEntry, RequirementsError> {
    let invalid = RequirementsError::invalid_at(at, text);
    pep508_guard(text).map_err(invalid)?;
    let requirement: Requirement = Requirement::from_str(text)
        // The message only: the underlined form is meant for a terminal.
        .map_err(|e| invalid(e.message.to_string()))?;
    let specifiers = match &requirement.version_or_url {
        None => VersionSpecifiers::empty(),
        Some(VersionOrUrl::VersionSpecifier(s)) => s.clone(),
        // `@` is taken apart before this point; pep508_rs found one where that did not.
        Some(VersionOrUrl::Url(_)) => {
            return Err(invalid(
                "write a direct reference as `name @ URL`".to_string(),
            ));
        }
    };
    let name = written_name(text).map_or_else(|| requirement.name.to_string(), str::to_string);
    Ok(RequirementEntry {
        name: Some(name),
        extras: sorted_extras(&requirement),
        specifiers,
        marker: marker_of(requirement.marker),
        source: RequirementSource::Index,
        hashes,
        location: at.clone(),
    })
}

/// PEP 508 identifier: ASCII letters and digits, with `-`, `_`, `.` inside.
fn is_identifier(s: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    alnum(s.chars().next())
        && alnum(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Refuses what `pep508_rs` 0.9 panics on instead of failing: a name or extra that ends in `-`,
/// `_` or `.` when another character follows (`foo_~`, `foo[a_]`), and a non-ASCII character
/// where a marker's `and`/`or` may follow (`foo; python_version > "3" aх`: it slices a count of
/// characters as a count of bytes). All non-ASCII text is refused: names, versions and operators
/// are ASCII, and so are the marker values of real requirements. Call it on any untrusted
/// requirement (requirements files, wheels' `Requires-Dist`, pyproject.toml) before parsing it.
pub(crate) fn pep508_guard(text: &str) -> Result<(), String> {
    let name = written_name(text).unwrap_or_default();
    if !is_identifier(name) {
        return Err(format!(
            "`{name}` is not a valid package name: expected ASCII letters, digits, `-`, `_` and \
             `.`, starting and ending with a letter or digit"
        ));
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "non-ASCII character `{c}`: names, versions and markers must be ASCII"
        ));
    }
    let rest = text.get(name.len()..).unwrap_or_default().trim_start();
    if let Some(extras) = rest.strip_prefix('[') {
        let inside = extras.split(']').next().unwrap_or_default();
        for piece in inside.split(',') {
            let piece = piece.trim_start();
            let end = piece
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                .unwrap_or(piece.len());
            let extra = piece.get(..end).unwrap_or_default();
            if !extra.is_empty() && !is_identifier(extra) {
                return Err(format!("`{extra}` is not a valid extra name"));
            }
        }
    }
    Ok(())
}

/// The leading name of a requirement exactly as written.
pub(crate) fn written_name(text: &str) -> Option<&str> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(text.len());
    let name = text.get(..end)?;
    (!name.is_empty()).then_some(name)
}
/// Parses a PEP 508 requirement from untrusted text (a pyproject.toml array, an override),
/// refusing first what `pep508_rs` would panic on. Direct references keep their URL.
pub(crate) fn parse_pep508(text: &str) -> Result<Requirement, String> {
    pep508_guard(text)?;
    Requirement::from_str(text).map_err(|e| e.message.to_string())
}
