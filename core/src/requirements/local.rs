//! Local source in requirements (`./project`, `-e ./project`, `name @ file:///abs/project`,
//! `./x-1.0.tar.gz`) made installable: each such entry is built by the caller and replaced by a
//! reference to the wheel built, which the resolver and the lock take like any wheel file.
//!
//! The wheel's path is part of the entry from then on, and so of the requirements' inputs hash:
//! it lies in the build cache under a key of the tree's path and build inputs
//! (`crate::build::local_key`), so a tree whose build inputs changed locks again and an
//! unchanged one keeps its lock.
use std::path::{Path, PathBuf};

use url::Url;

use super::{
    BuildReference, RequirementEntry, RequirementSource, Requirements, RequirementsError,
    WheelReference,
};
use crate::names::normalize_name;
use crate::wheel::WheelFilename;

impl Requirements {
    /// Whether any entry names local source to build.
    pub fn has_local_builds(&self) -> bool {
        self.local_sources().next().is_some()
    }

    /// The entries naming local source, in order, with their reference and local path. A
    /// remote archive is not one: the resolver refuses it, naming its line.
    pub fn local_sources(
        &self,
    ) -> impl Iterator<Item = (&RequirementEntry, &BuildReference, &Path)> {
        self.entries
            .iter()
            .filter_map(|e| local_build(e).map(|(b, p)| (e, b, p)))
    }

    /// Replaces the entries of [`Self::local_sources`], in order, by the wheels at `wheels`
    /// built from them.
    pub fn use_built(&mut self, wheels: &[PathBuf]) -> Result<(), RequirementsError> {
        let mut wheels = wheels.iter();
        for entry in &mut self.entries {
            if local_build(entry).is_none() {
                continue;
            }
            if let Some(wheel) = wheels.next() {
                *entry = entry.built_as(wheel)?;
            }
        }
        Ok(())
    }
}

impl Requirements {
    /// The wheels built from local source by [`Self::use_built`], each with the source it was
    /// built from: what a lock names instead of the wheel (`install::name_local_sources`).
    pub fn built_sources(&self) -> impl Iterator<Item = (&Path, &BuildReference)> {
        self.entries.iter().filter_map(|e| match &e.source {
            RequirementSource::Wheel(WheelReference {
                path: Some(wheel),
                built_from: Some(from),
                ..
            }) if from.path.is_some() => Some((wheel.as_path(), from)),
            _ => None,
        })
    }
}

/// The reference and local path of an entry naming local source.
fn local_build(entry: &RequirementEntry) -> Option<(&BuildReference, &Path)> {
    match &entry.source {
        RequirementSource::Build(b) => b.path.as_deref().map(|p| (b, p)),
        _ => None,
    }
}

impl RequirementEntry {
    /// This entry with its source replaced by the wheel file `wheel` built from it: its name
    /// (taken from the wheel when the entry had none, checked against it otherwise), extras,
    /// marker and location kept; hashes dropped (they were of nothing: source has no file).
    pub fn built_as(&self, wheel: &Path) -> Result<Self, RequirementsError> {
        let invalid = |reason: String| RequirementsError::Invalid {
            at: self.location.clone(),
            text: self.requirement_text(),
            reason,
        };
        let file_name = wheel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parsed = WheelFilename::parse(&file_name).map_err(|e| invalid(e.to_string()))?;
        let name = match &self.name {
            Some(given) if normalize_name(given) != parsed.name.as_ref() => {
                return Err(invalid(format!(
                    "it names `{given}`, but its source builds `{}`",
                    parsed.name_as_written()
                )));
            }
            Some(given) => given.clone(),
            None => parsed.name_as_written().to_string(),
        };
        let url = Url::from_file_path(wheel)
            .map_err(|()| invalid(format!("`{}` is not an absolute path", wheel.display())))?;
        let built_from = match &self.source {
            RequirementSource::Build(b) => Some(b.clone()),
            _ => None,
        };
        Ok(Self {
            name: Some(name),
            source: RequirementSource::Wheel(WheelReference {
                url,
                path: Some(wheel.to_path_buf()),
                version: parsed.version,
                built_from,
            }),
            hashes: Vec::new(),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_entries_become_the_wheels_built_from_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("proj")).unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        let file = dir.path().join("requirements.txt");
        std::fs::write(
            &file,
            "idna==3.7\n-e ./proj\nlib[x] @ file://LIB ; python_version >= '3'\n".replace(
                "file://LIB",
                &format!("file://{}", dir.path().join("lib").display()),
            ),
        )
        .unwrap();
        let mut reqs = Requirements::from_file(&file).unwrap();
        let found: Vec<_> = reqs
            .local_sources()
            .map(|(e, b, p)| (e.name.clone(), b.editable, p.to_path_buf()))
            .collect();
        assert_eq!(
            found,
            [
                (None, true, dir.path().join("proj")),
                (Some("lib".to_owned()), false, dir.path().join("lib")),
            ]
        );
        assert!(reqs.to_pep508().is_err(), "source is refused until built");
        let wheels = [
            dir.path().join("My_Proj-0.1-py3-none-any.whl"),
            dir.path().join("lib-2.0-py3-none-any.whl"),
        ];
        reqs.use_built(&wheels).unwrap();
        assert!(!reqs.has_local_builds());
        let built: Vec<_> = reqs
            .built_sources()
            .map(|(w, b)| (w.to_path_buf(), b.path.clone(), b.editable))
            .collect();
        assert_eq!(
            built,
            [
                (wheels[0].clone(), Some(dir.path().join("proj")), true),
                (wheels[1].clone(), Some(dir.path().join("lib")), false),
            ]
        );
        let pep508: Vec<String> = reqs
            .to_pep508()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(pep508[0], "idna==3.7");
        assert!(pep508[1].starts_with("my-proj @ file://"), "{}", pep508[1]);
        assert!(
            pep508[2].starts_with("lib[x] @ file://")
                && pep508[2].contains("python_full_version >= '3'"),
            "{}",
            pep508[2]
        );
    }

    #[test]
    fn a_wheel_of_another_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        let file = dir.path().join("requirements.txt");
        std::fs::write(
            &file,
            format!("lib @ file://{}\n", dir.path().join("lib").display()),
        )
        .unwrap();
        let mut reqs = Requirements::from_file(&file).unwrap();
        let e = reqs
            .use_built(&[dir.path().join("other-1.0-py3-none-any.whl")])
            .unwrap_err();
        assert!(e.to_string().contains("builds `other`"), "{e}");
    }
}
