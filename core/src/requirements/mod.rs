//! Requirements files: what `pip freeze`, `pip-compile` and `uv pip compile` write, and what
//! people write by hand for pip and uv.
//!
//! Accepted, line by line (after `\` continuations are joined and `#` comments removed):
//!
//! ```text
//! name                                         any version
//! name[extra1,extra2]>=1.2,<2 ; python_version < "3.12"
//! name==1.2.3 --hash=sha256:<64 hex> \         hashes on any requirement, also on continuation lines
//!     --hash=sha256:<64 hex>
//! name @ file:///abs/dist/name-1.0-py3-none-any.whl   a wheel file (name and version from its name)
//! ./dist/name-1.0-py3-none-any.whl, /abs/x.whl a wheel path, relative to this file's directory
//! name @ https://host/…/name-1.0-py3-none-any.whl     a remote wheel
//! ./project, name @ file:///abs/project, -e ./project, ./x-1.0.tar.gz
//!                                              local source: built by the caller and replaced
//!                                              by the wheel built (local.rs); `-e` editable
//! -r other.txt / --requirement other.txt       included, relative to this file, each file once
//! -c constraints.txt / --constraint FILE       constraints, relative to this file
//! -i URL / --index-url URL                     the index (the last one given wins)
//! --extra-index-url URL                        more indexes
//! -f DIR|URL / --find-links DIR|URL            flat directories or pages of files
//! --no-index, --require-hashes
//! --pre                                        recorded: pre-releases allowed
//! --only-binary X, --prefer-binary             recorded (only wheels are installed anyway)
//! --trusted-host X                             accepted and ignored
//! ```
//!
//! Refused with an error naming the file and line: version control URLs, `--no-binary`, and
//! options this tool cannot honour. `${VAR}` is expanded from the environment, as pip does.
//!
//! Overrides files (`--override FILE`, [`Overrides`]) use the same syntax, with requirements and
//! `-r` only; each entry replaces every requirement on its package.
//!
//! The parsed model is [`Requirements`], whose [`RequirementEntry`]s become `pep508_rs`
//! requirements for the resolver ([`Requirements::to_pep508`]). A file whose requirements are
//! all pinned with `==` has a fast path that needs no resolution, [`Requirements::pinned`].
//!
//! ```text
//! lines.rs      continuations, comments, `${VAR}`, `--opt=value`
//! entry.rs      one requirement: RequirementEntry and its RequirementSource
//! parser.rs     options, includes, constraints; checks over the whole set
//! local.rs      local source entries replaced by the wheels built from them
//! pinned.rs     the pinned view, and the inputs hash of pinned files (unchanged since v1)
//! overrides.rs  overrides files and how an override applies
//! error.rs      RequirementsError, NotPinned, Location
//! ```
use std::path::Path;

use pep508_rs::Requirement;

mod entry;
mod error;
mod lines;
mod local;
mod overrides;
mod parser;
mod pinned;
#[cfg(test)]
mod tests;

pub use entry::{
    BuildKind, BuildReference, DirectReferenceKind, RequirementEntry, RequirementSource,
    WheelReference, direct_reference_kind,
};
pub(crate) use entry::{parse_pep508, pep508_guard, written_name as written_name_of};
pub use error::{Location, NotPinned, PinConflict, RequirementsError};
pub use overrides::{Overrides, apply_overrides};
pub use pinned::PinnedRequirement;

use parser::{Parser, Role};
use pinned::{field, index_options, pinned_inputs_hash};

/// A parsed requirements file, with its includes followed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirements {
    /// The requirements in file order (includes expanded where they appear), as written: two
    /// lines on one package stay two entries (the resolver intersects them).
    pub entries: Vec<RequirementEntry>,
    /// The constraints of `-c` files, in file order: they limit the versions of packages that
    /// something else requires, without requiring them.
    pub constraints: Vec<RequirementEntry>,
    /// `--index-url`, the last one given.
    pub index_url: Option<String>,
    /// `--extra-index-url`, in order, without duplicates.
    pub extra_index_urls: Vec<String>,
    /// `--find-links`: URLs as written, local paths made relative to the including file's
    /// directory, in order, without duplicates.
    pub find_links: Vec<String>,
    /// `--no-index` was given.
    pub no_index: bool,
    /// Hash-checking mode: `--require-hashes` was given or some requirement has a hash, so every
    /// requirement has at least one.
    pub require_hashes: bool,
    /// `--pre`: pre-releases may be chosen.
    pub pre: bool,
    /// `--prefer-binary` was given (every install is from wheels: nothing to change).
    pub prefer_binary: bool,
    /// `--only-binary`: normalized names, or `:all:` / `:none:`, in order, without duplicates.
    pub only_binary: Vec<String>,
}

impl Requirements {
    /// Reads `path` and every file it includes.
    pub fn from_file(path: &Path) -> Result<Self, RequirementsError> {
        let mut parser = Parser::default();
        parser.include(path, Role::Requirements, None)?;
        parser.finish()
    }

    /// Parses `content` as if read from `path` (used for messages and to resolve relative
    /// includes and paths; includes are read from disk).
    pub fn parse_str(content: &str, path: &Path) -> Result<Self, RequirementsError> {
        let mut parser = Parser::default();
        parser.mark_read(path, Role::Requirements);
        parser.parse_content(content, path, Role::Requirements)?;
        parser.finish()
    }

    /// Reads a constraints file given on its own (`dx-py lock -c FILE`): its requirements
    /// become [`Requirements::constraints`]; its options are read as in a requirements file.
    pub fn from_constraints_file(path: &Path) -> Result<Self, RequirementsError> {
        let mut parser = Parser::default();
        parser.include(path, Role::Constraints, None)?;
        parser.finish()
    }

    /// The requirements as the resolver takes them. Source that needs a build is refused,
    /// naming its line.
    pub fn to_pep508(&self) -> Result<Vec<Requirement>, RequirementsError> {
        self.entries
            .iter()
            .map(RequirementEntry::to_requirement)
            .collect()
    }

    /// The constraints as the resolver takes them.
    pub fn constraints_to_pep508(&self) -> Result<Vec<Requirement>, RequirementsError> {
        self.constraints
            .iter()
            .map(RequirementEntry::to_requirement)
            .collect()
    }

    /// A blake3 digest of what decides the outcome of resolving and installing these
    /// requirements. Independent of line order, comments, formatting, include structure and
    /// find-links locations (local paths that differ between checkouts).
    ///
    /// A fully pinned file ([`Requirements::pinned`]) hashes as it did before resolution
    /// arrived (the pins, the index URLs, `--no-index` and hash-checking mode), so that the
    /// locks written then stay fresh. Any other file hashes every entry and constraint as
    /// written back, with `--pre` and the binary options.
    pub fn inputs_hash(&self) -> [u8; 32] {
        if let Ok(pins) = self.pinned() {
            return pinned_inputs_hash(self, &pins);
        }
        let mut h = blake3::Hasher::new();
        field(&mut h, b"dx-py requirements inputs v2");
        index_options(&mut h, self);
        h.update(&[u8::from(self.pre), u8::from(self.prefer_binary)]);
        let mut only_binary: Vec<&str> = self.only_binary.iter().map(String::as_str).collect();
        only_binary.sort_unstable();
        h.update(&(only_binary.len() as u64).to_le_bytes());
        for item in only_binary {
            field(&mut h, item.as_bytes());
        }
        for list in [&self.entries, &self.constraints] {
            let mut lines: Vec<String> = list.iter().map(entry_line).collect();
            lines.sort_unstable();
            h.update(&(lines.len() as u64).to_le_bytes());
            for line in lines {
                field(&mut h, line.as_bytes());
            }
        }
        *h.finalize().as_bytes()
    }

    /// Writes these requirements as a requirements file that parses back to the same entries
    /// and options (options first, then one requirement per line, hashes on continuation
    /// lines). Constraints are not written: they came from files of their own.
    ///
    /// Option values are written as `--option=value`, so that one starting with `#` is not read
    /// as a comment. One ending in `\` (possible only where another option followed it on its
    /// line) cannot be written at the end of a line, where it would continue the line.
    pub fn to_requirements_txt(&self) -> String {
        let mut out = String::new();
        if let Some(url) = &self.index_url {
            out.push_str(&format!("--index-url={url}\n"));
        }
        for url in &self.extra_index_urls {
            out.push_str(&format!("--extra-index-url={url}\n"));
        }
        for dir in &self.find_links {
            out.push_str(&format!("--find-links={dir}\n"));
        }
        for (set, flag) in [
            (self.no_index, "--no-index"),
            (self.require_hashes, "--require-hashes"),
            (self.pre, "--pre"),
            (self.prefer_binary, "--prefer-binary"),
        ] {
            if set {
                out.push_str(flag);
                out.push('\n');
            }
        }
        if !self.only_binary.is_empty() {
            out.push_str(&format!("--only-binary={}\n", self.only_binary.join(",")));
        }
        for e in &self.entries {
            out.push_str(&entry_line(e));
            out.push('\n');
        }
        out
    }
}

/// One entry as a requirements file line: its requirement text, then its hashes on
/// continuation lines.
fn entry_line(e: &RequirementEntry) -> String {
    let mut out = e.requirement_text();
    for hash in &e.hashes {
        out.push_str(" \\\n    --hash=sha256:");
        out.push_str(hash);
    }
    out
}
