//! Reading requirements, constraints and overrides files line by line: options, includes (each
//! file read once per role), and the checks that need the whole set (conflicting pins,
//! hash-checking mode).
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::Requirements;
use super::entry::{RequirementEntry, RequirementSource, parse_entry};
use super::error::{Location, PinConflict, RequirementsError};
use super::lines::{expand_env, logical_lines, split_option};
use super::pinned::pinned_version;
use crate::names::normalize_name;

/// What the lines of a file are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Role {
    /// Requirements (the file given, and its `-r` includes).
    Requirements,
    /// Constraints (`-c` includes, and their includes).
    Constraints,
    /// Overrides (`--override FILE`, and its `-r` includes).
    Overrides,
}

impl Role {
    fn file_kind(self) -> &'static str {
        match self {
            Role::Requirements => "a requirements file",
            Role::Constraints => "a constraints file",
            Role::Overrides => "an overrides file",
        }
    }
}

#[derive(Default)]
pub(super) struct Parser {
    /// Files read, with the role they were read in.
    visited: HashSet<(PathBuf, Role)>,
    pub(super) out: Requirements,
    /// Entries of overrides files.
    pub(super) overrides: Vec<RequirementEntry>,
    require_hashes_explicit: bool,
}

/// Options with a value that are accepted and have no effect here.
const IGNORED_WITH_VALUE: &[&str] = &["--trusted-host"];

impl Parser {
    /// Marks `path` as read in `role` without reading it (the text is given instead).
    pub(super) fn mark_read(&mut self, path: &Path, role: Role) {
        if let Ok(canonical) = fs_err::canonicalize(path) {
            self.visited.insert((canonical, role));
        }
    }

    pub(super) fn include(
        &mut self,
        path: &Path,
        role: Role,
        at: Option<&Location>,
    ) -> Result<(), RequirementsError> {
        let read_err = |source| RequirementsError::Read {
            path: path.to_path_buf(),
            source,
        };
        let canonical = fs_err::canonicalize(path).map_err(read_err)?;
        if !self.visited.insert((canonical, role)) {
            tracing::debug!(
                "Skipping `{}`{}: already read",
                path.display(),
                at.map(|a| format!(" (included at `{a}`)"))
                    .unwrap_or_default()
            );
            return Ok(());
        }
        let content = fs_err::read_to_string(path).map_err(read_err)?;
        self.parse_content(&content, path, role)
    }

    pub(super) fn parse_content(
        &mut self,
        content: &str,
        path: &Path,
        role: Role,
    ) -> Result<(), RequirementsError> {
        for logical in logical_lines(content) {
            let at = Location {
                path: path.to_path_buf(),
                line: logical.line,
            };
            let text = expand_env(logical.text.trim());
            self.parse_line(&text, at, role)?;
        }
        Ok(())
    }

    fn parse_line(
        &mut self,
        text: &str,
        at: Location,
        role: Role,
    ) -> Result<(), RequirementsError> {
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let split = tokens
            .iter()
            .position(|t| t.starts_with('-'))
            .unwrap_or(tokens.len());
        let (args, options) = tokens.split_at(split);
        if args.is_empty() {
            return self.parse_global_options(options, text, &at, role);
        }
        let requirement = args.join(" ");
        let hashes = parse_requirement_options(options, &at)?;
        let entry = parse_entry(&requirement, hashes, false, &at)?;
        self.add(entry, role, text)
    }

    fn parse_global_options(
        &mut self,
        options: &[&str],
        text: &str,
        at: &Location,
        role: Role,
    ) -> Result<(), RequirementsError> {
        let mut i = 0;
        while let Some(&token) = options.get(i) {
            i += 1;
            let (option, inline) = split_option(token);
            let value = |i: &mut usize| -> Result<String, RequirementsError> {
                if let Some(v) = inline {
                    return Ok(v.to_string());
                }
                let v = options
                    .get(*i)
                    .ok_or_else(|| RequirementsError::MissingValue {
                        at: at.clone(),
                        option: option.to_string(),
                    })?;
                *i += 1;
                Ok((*v).to_string())
            };
            // An overrides file holds requirements only: the index and the other options
            // belong to the requirements the overrides apply to.
            if role == Role::Overrides && !matches!(option, "-r" | "--requirement") {
                return Err(RequirementsError::NotAllowedHere {
                    at: at.clone(),
                    text: text.to_string(),
                    kind: role.file_kind(),
                    reason: "an overrides file holds requirements and `-r` includes only",
                });
            }
            let base = at.path.parent().unwrap_or(Path::new(""));
            match option {
                "-r" | "--requirement" | "-c" | "--constraint" => {
                    let target = value(&mut i)?;
                    if target.contains("://") {
                        return Err(RequirementsError::RemoteInclude {
                            at: at.clone(),
                            target,
                        });
                    }
                    // `-r` keeps the role of the including file: requirements included from a
                    // constraints file are constraints too.
                    let included_role = if matches!(option, "-c" | "--constraint") {
                        Role::Constraints
                    } else {
                        role
                    };
                    self.include(&base.join(&target), included_role, Some(at))?;
                }
                "-e" | "--editable" => {
                    let target = value(&mut i)?;
                    let entry = parse_entry(&target, Vec::new(), true, at)?;
                    self.add(entry, role, text)?;
                }
                "-i" | "--index-url" => self.out.index_url = Some(value(&mut i)?),
                "--extra-index-url" => push_unique(&mut self.out.extra_index_urls, value(&mut i)?),
                "-f" | "--find-links" => {
                    let target = value(&mut i)?;
                    let resolved = if target.contains("://") || Path::new(&target).is_absolute() {
                        target
                    } else {
                        base.join(&target).to_string_lossy().into_owned()
                    };
                    push_unique(&mut self.out.find_links, resolved);
                }
                "--no-index" => self.out.no_index = true,
                "--require-hashes" => self.require_hashes_explicit = true,
                "--pre" => self.out.pre = true,
                "--prefer-binary" => self.out.prefer_binary = true,
                "--only-binary" => {
                    for item in value(&mut i)?.split(',').filter(|s| !s.is_empty()) {
                        let item = if item.starts_with(':') {
                            item.to_string()
                        } else {
                            normalize_name(item)
                        };
                        push_unique(&mut self.out.only_binary, item);
                    }
                }
                "--no-binary" => {
                    return Err(RequirementsError::UnsupportedOption {
                        at: at.clone(),
                        option: option.to_string(),
                        hint: "building from source is not supported, only wheels are installed",
                    });
                }
                "--hash" => {
                    return Err(RequirementsError::Invalid {
                        at: at.clone(),
                        text: text.to_string(),
                        reason: "`--hash` must follow a requirement on the same (or a `\\`-continued) line"
                            .to_string(),
                    });
                }
                o if IGNORED_WITH_VALUE.contains(&o) => {
                    let _ = value(&mut i)?;
                    tracing::debug!("Ignoring `{o}` at `{at}`");
                }
                _ => {
                    return Err(RequirementsError::UnsupportedOption {
                        at: at.clone(),
                        option: option.to_string(),
                        hint: "remove it; supported options are `-r`, `-c`, `-e`, `-i`/`--index-url`, \
                               `--extra-index-url`, `-f`/`--find-links`, `--no-index`, \
                               `--require-hashes`, `--pre`, `--only-binary`, `--prefer-binary` \
                               and `--hash`",
                    });
                }
            }
        }
        Ok(())
    }

    /// Files the entry under its role, refusing what that role cannot hold.
    fn add(
        &mut self,
        entry: RequirementEntry,
        role: Role,
        text: &str,
    ) -> Result<(), RequirementsError> {
        let refuse = |reason| RequirementsError::NotAllowedHere {
            at: entry.location.clone(),
            text: text.to_string(),
            kind: role.file_kind(),
            reason,
        };
        match role {
            Role::Requirements => self.out.entries.push(entry),
            Role::Constraints | Role::Overrides => {
                if matches!(entry.source, RequirementSource::Build(_)) || entry.name.is_none() {
                    return Err(refuse(
                        "it must name a package from an index or a wheel file, not source to build",
                    ));
                }
                if role == Role::Constraints {
                    self.out.constraints.push(entry);
                } else {
                    self.overrides.push(entry);
                }
            }
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<Requirements, RequirementsError> {
        check_pin_conflicts(&self.out.entries)?;
        let entries = &self.out.entries;
        let any_hash = entries.iter().any(|e| !e.hashes.is_empty());
        self.out.require_hashes = self.require_hashes_explicit || any_hash;
        // A line without a hash is covered by another line on the same distribution that
        // has some (pip merges them, and so does the pinned view). Source to build has no
        // file to hash.
        let unhashed = entries.iter().find(|e| {
            e.hashes.is_empty()
                && !matches!(e.source, RequirementSource::Build(_))
                && !entries
                    .iter()
                    .any(|f| !f.hashes.is_empty() && same_distribution(e, f))
        });
        if self.out.require_hashes
            && let Some(e) = unhashed
        {
            return Err(RequirementsError::MissingHashes {
                at: e.location.clone(),
                name: e.name.clone().unwrap_or_default(),
            });
        }
        Ok(self.out)
    }
}

/// Whether two entries ask for the same file: one package at one pinned version (or under the
/// same specifiers), or one wheel URL.
fn same_distribution(a: &RequirementEntry, b: &RequirementEntry) -> bool {
    if a.normalized_name() != b.normalized_name() {
        return false;
    }
    match (&a.source, &b.source) {
        (RequirementSource::Index, RequirementSource::Index) => {
            match (pinned_version(a), pinned_version(b)) {
                (Some(x), Some(y)) => x == y,
                _ => a.specifiers == b.specifiers,
            }
        }
        (RequirementSource::Wheel(x), RequirementSource::Wheel(y)) => x.url == y.url,
        _ => false,
    }
}

/// Two pins of one package to different versions may only appear under markers that never
/// hold together.
fn check_pin_conflicts(entries: &[RequirementEntry]) -> Result<(), RequirementsError> {
    let pins: Vec<(String, &RequirementEntry, &pep440_rs::Version)> = entries
        .iter()
        .filter_map(|e| Some((e.normalized_name()?, e, pinned_version(e)?)))
        .collect();
    for (i, (name_a, a, va)) in pins.iter().enumerate() {
        for (name_b, b, vb) in pins.iter().skip(i + 1) {
            if name_a != name_b || va == vb {
                continue;
            }
            let disjoint = match (&a.marker, &b.marker) {
                (Some(ma), Some(mb)) => ma.is_disjoint(mb),
                _ => false,
            };
            if !disjoint {
                return Err(RequirementsError::Conflict(Box::new(PinConflict {
                    name: name_a.clone(),
                    first: a.location.clone(),
                    first_version: va.to_string(),
                    second: b.location.clone(),
                    second_version: vb.to_string(),
                })));
            }
        }
    }
    Ok(())
}

pub(super) fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// The per-requirement options: only `--hash`.
fn parse_requirement_options(
    options: &[&str],
    at: &Location,
) -> Result<Vec<String>, RequirementsError> {
    let mut hashes = Vec::new();
    let mut i = 0;
    while let Some(&token) = options.get(i) {
        i += 1;
        let (option, inline) = split_option(token);
        if option != "--hash" {
            return Err(RequirementsError::UnsupportedOption {
                at: at.clone(),
                option: option.to_string(),
                hint: "only `--hash` may follow a requirement",
            });
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = options
                    .get(i)
                    .ok_or_else(|| RequirementsError::MissingValue {
                        at: at.clone(),
                        option: option.to_string(),
                    })?;
                i += 1;
                v
            }
        };
        let bad = |reason| RequirementsError::InvalidHash {
            at: at.clone(),
            hash: value.to_string(),
            reason,
        };
        let (algorithm, hex) = value
            .split_once(':')
            .ok_or_else(|| bad("expected `sha256:<64 hex digits>`"))?;
        if algorithm != "sha256" {
            return Err(bad("only `sha256` hashes are supported"));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("expected 64 hex digits after `sha256:`"));
        }
        push_unique(&mut hashes, hex.to_ascii_lowercase());
    }
    hashes.sort();
    Ok(hashes)
}
