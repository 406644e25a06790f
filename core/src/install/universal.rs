//! Locking for every environment: a universal resolution made a `pylock.toml` whose entries carry
//! their markers and every file of their version (each with its sha256), so that any machine in
//! the scope installs from it without resolving (`read_pylock_for`) and `export` reads it for any
//! platform.
use std::collections::BTreeMap;
use std::str::FromStr;

use pep508_rs::{MarkerTree, PackageName};

use super::NoReporter;
use super::resolved::{WithDirectFiles, file_digest, file_location};
use super::{InstallError, ResolveRequest};
use crate::build::Builder;
use crate::dpl::{
    LockedWheel, PylockDocument, PylockSelector, UniversalLock, UniversalLockedPackage,
};
use crate::hash::ContentHash;
use crate::index::{IndexClient, IndexFile};
use crate::resolve::{
    IndexSource, LockedVersion, Manifest, PackageSource, ResolveOptions, UniversalPackage,
    resolve_universal,
};

/// The environments a universal lock of `request` covers: its `requires-python` (else Pythons
/// from `python_floor` on), within any of the `environments` markers when some are given. A
/// `requires-python` that no marker can express is an error, never a wider scope.
pub fn universal_scope(
    request: &ResolveRequest,
    python_floor: &str,
    environments: &[MarkerTree],
) -> Result<MarkerTree, pep508_rs::Pep508Error> {
    let python = match &request.requires_python {
        Some(spec) => spec
            .iter()
            .map(|s| format!("python_full_version {} '{}'", s.operator(), s.version()))
            .collect::<Vec<_>>()
            .join(" and "),
        None => format!("python_full_version >= '{python_floor}'"),
    };
    let mut scope = MarkerTree::from_str(&python)?;
    if !environments.is_empty() {
        let mut any = MarkerTree::FALSE;
        for e in environments {
            any.or(e.clone());
        }
        scope.and(any);
    }
    Ok(scope)
}

/// The entries of the universal `pylock.toml` `text`, as preferences for locking again; a lock
/// that does not parse, or an entry whose name, version or marker does not, gives none (a
/// re-lock then starts afresh rather than failing on the file it replaces).
pub fn locked_versions(text: &str) -> Vec<LockedVersion> {
    /// Records every entry and keeps none: no wheel is chosen.
    struct Entries(Vec<LockedVersion>);
    impl PylockSelector for Entries {
        fn applies(&mut self, name: &str, version: &str, marker: Option<&str>) -> bool {
            let entry = (|| {
                Some(LockedVersion {
                    name: PackageName::from_str(name).ok()?,
                    version: pep440_rs::Version::from_str(version).ok()?,
                    marker: marker
                        .map_or(Ok(MarkerTree::TRUE), MarkerTree::from_str)
                        .ok()?,
                })
            })();
            self.0.extend(entry);
            false
        }
    }
    let mut entries = Entries(Vec::new());
    match PylockDocument::parse(text).map(|d| d.to_lock(&mut entries)) {
        Ok(Ok(_)) => entries.0,
        _ => Vec::new(),
    }
}

/// Resolves `request` for every environment of `scope` through `client` and makes the lock;
/// `existing` (the entries of the lock it replaces) is preferred fork by fork. With a
/// `builder`, a version that has only an sdist may be chosen (its metadata prepared by its
/// backend when its `PKG-INFO` cannot tell); the lock then names that sdist alone, and an
/// install builds it. `--no-binary` / `--only-binary` (`request.binary`) decide which files
/// count, and so which the lock lists.
pub fn resolve_universal_and_lock(
    request: &ResolveRequest,
    scope: &MarkerTree,
    existing: &[LockedVersion],
    client: &IndexClient,
    inputs_hash: ContentHash,
    builder: Option<&Builder<'_>>,
) -> Result<(UniversalLock, usize), InstallError> {
    let index = IndexSource::new(client);
    let (source, requirements) = WithDirectFiles::new(&index, &NoReporter, builder, request)?;
    let manifest = Manifest {
        requirements,
        constraints: request.constraints.clone(),
        overrides: request.overrides.clone(),
        preferences: request.preferences.clone(),
        upgrade: request.upgrade.clone(),
        requires_python: request.requires_python.clone(),
    };
    let options = ResolveOptions {
        prerelease: request.prerelease,
        build_sdists: builder.is_some(),
        binary: request.binary.clone(),
        ..ResolveOptions::default()
    };
    let resolution = resolve_universal(&manifest, scope, existing, &options, &source)
        .map_err(|e| InstallError::Resolve(Box::new(e)))?;
    let mut entries: BTreeMap<&PackageName, usize> = BTreeMap::new();
    for p in &resolution.packages {
        *entries.entry(&p.name).or_default() += 1;
    }
    let packages = crate::parallel::map_in_order(&resolution.packages, 8, |p| {
        locked(p, &source, client, request.hashes.get(&p.name), &entries)
    })
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let lock = UniversalLock {
        requires_python: request.requires_python.as_ref().map(ToString::to_string),
        environments: Vec::new(),
        inputs_hash,
        packages,
    };
    Ok((lock, resolution.forks.len()))
}

/// One entry: its files hashed (and, in hash-checking mode, only those with an allowed hash).
fn locked(
    p: &UniversalPackage,
    source: &dyn PackageSource,
    client: &IndexClient,
    allowed: Option<&Vec<String>>,
    entries: &BTreeMap<&PackageName, usize>,
) -> Result<UniversalLockedPackage, InstallError> {
    let name = p.name.to_string();
    let (mut wheels, mut sdist) = (Vec::new(), None);
    for file in &p.files {
        let (sha256, digest) = file_digest(file, client, &name)?;
        if allowed.is_some_and(|a| !a.contains(&sha256)) {
            continue;
        }
        let (url, path) = file_location(file);
        let locked = LockedWheel {
            filename: file.filename.clone(),
            url,
            path,
            sha256: digest,
            size: file.size,
        };
        if file.filename.ends_with(".whl") {
            wheels.push(locked);
        } else if sdist.is_none() {
            sdist = Some(locked);
        }
    }
    if let Some(allowed) = allowed
        && wheels.is_empty()
        && sdist.is_none()
    {
        return Err(InstallError::HashMismatch {
            name,
            filename: format!("every file of {}", p.version),
            expected: allowed.join(" or "),
            actual: "other digests".to_owned(),
        });
    }
    // The name as the index spells it and the Requires-Python, from a wheel's metadata.
    let metadata = p
        .files
        .iter()
        .find(|f| f.filename.ends_with(".whl"))
        .map(|f: &IndexFile| source.metadata(&p.name, f))
        .transpose()
        .map_err(|e| InstallError::Resolve(Box::new(e.into())))?;
    Ok(UniversalLockedPackage {
        name: metadata.as_ref().map_or(name, |m| m.name.clone()),
        version: p.version.to_string(),
        marker: p.marker.try_to_string(),
        requires_python: metadata.and_then(|m| m.requires_python.clone()),
        index_url: None,
        // A name with one entry only: PEP 751 references must say which entry they mean.
        dependencies: (p.dependencies.iter())
            .filter(|d| entries.get(d) == Some(&1))
            .map(ToString::to_string)
            .collect(),
        wheels,
        sdist,
        local: None,
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use pep440_rs::{Version, VersionSpecifiers};
    use pep508_rs::MarkerTree;

    use super::*;
    use crate::resolve::python_floor;

    fn m(s: &str) -> MarkerTree {
        MarkerTree::from_str(s).unwrap()
    }

    #[test]
    fn the_scope_is_the_python_range_within_the_environments() {
        let request = ResolveRequest {
            requires_python: Some(VersionSpecifiers::from_str(">=3.9, <3.13").unwrap()),
            ..ResolveRequest::default()
        };
        let envs = [m("sys_platform == 'linux'"), m("sys_platform == 'darwin'")];
        let scope = universal_scope(&request, "3.11", &envs).unwrap();
        assert_eq!(
            python_floor(&scope),
            Some(Version::from_str("3.9").unwrap())
        );
        let disjoint = |other: &str| {
            let mut both = scope.clone();
            both.and(m(other));
            both.is_false()
        };
        assert!(disjoint("sys_platform == 'win32'"));
        assert!(disjoint("python_version >= '3.13'"));
        assert!(!disjoint(
            "sys_platform == 'darwin' and python_version == '3.12'"
        ));
        // Without requires-python: from the floor given on.
        let scope = universal_scope(&ResolveRequest::default(), "3.10", &[]).unwrap();
        assert_eq!(
            python_floor(&scope),
            Some(Version::from_str("3.10").unwrap())
        );
    }

    #[test]
    fn the_entries_of_a_lock_are_read_back_as_preferences() {
        // As any PEP 751 writer may put it: entries with and without markers, several wheels.
        let text = r#"
            lock-version = "1.0"
            requires-python = ">=3.9"
            created-by = "someone"

            [[packages]]
            name = "Lib"
            version = "1.0"
            marker = "python_full_version < '3.10'"
            wheels = [
                { name = "lib-1.0-py3-none-any.whl", url = "https://files.invalid/lib-1.0-py3-none-any.whl", hashes = { sha256 = "0000000000000000000000000000000000000000000000000000000000000000" } },
                { name = "lib-1.0-cp39-cp39-win_amd64.whl", url = "https://files.invalid/lib-1.0-cp39-cp39-win_amd64.whl", hashes = { sha256 = "1111111111111111111111111111111111111111111111111111111111111111" } },
            ]

            [[packages]]
            name = "Lib"
            version = "2.0"
            marker = "python_full_version >= '3.10'"
            wheels = [{ name = "lib-2.0-py3-none-any.whl", url = "https://files.invalid/lib-2.0-py3-none-any.whl", hashes = { sha256 = "2222222222222222222222222222222222222222222222222222222222222222" } }]

            [[packages]]
            name = "shared"
            version = "3.1"
            wheels = [{ name = "shared-3.1-py3-none-any.whl", url = "https://files.invalid/shared-3.1-py3-none-any.whl", hashes = { sha256 = "3333333333333333333333333333333333333333333333333333333333333333" } }]
        "#;
        let got = locked_versions(text);
        let want = [
            ("lib", "1.0", Some("python_full_version < '3.10'")),
            ("lib", "2.0", Some("python_full_version >= '3.10'")),
            ("shared", "3.1", None),
        ]
        .map(|(n, v, m)| LockedVersion::parse(n, v, m).unwrap());
        assert_eq!(got, want);
        // What is not a lock gives no preferences (and no error: the re-lock replaces it).
        assert!(locked_versions("not = [toml").is_empty());
        assert!(locked_versions("lock-version = '9.0'\n[[packages]]\n").is_empty());
    }
}
