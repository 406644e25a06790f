//! The inputs hash of a project: a digest of everything in `pyproject.toml` that can change a
//! resolution, in normal form, so that `dx-py lock` can skip resolving when it is unchanged.
//! Comments, formatting, key order and the order of requirements within a list do not count;
//! names are normalized and requirements written in PEP 508 normal form. The extras and
//! groups chosen on the command line are not part of it: the caller adds them.
use pep508_rs::Requirement;

use super::Project;

impl Project {
    /// The digest of this project's resolution inputs.
    pub fn inputs_hash(&self) -> [u8; 32] {
        let mut h = Hasher(blake3::Hasher::new());
        h.field(b"dx-py project inputs v1");
        h.field(self.normalized_name.as_bytes());
        let version = self
            .pyproject
            .project
            .as_ref()
            .and_then(|p| p.version.as_deref());
        // In PEP 440 normal form (`V1.0-Alpha` is `1.0a0`).
        let version = version.map(|v| {
            v.parse::<pep440_rs::Version>()
                .map_or_else(|_| v.trim().to_string(), |v| v.to_string())
        });
        h.field(version.unwrap_or_default().as_bytes());
        let requires_python = self.requires_python.as_ref().map(ToString::to_string);
        h.field(requires_python.unwrap_or_default().as_bytes());
        let mut dynamic: Vec<&String> = self.dynamic().iter().collect();
        dynamic.sort();
        dynamic.dedup();
        h.list(dynamic.iter().map(|d| d.as_str().to_string()));
        h.requirements(&self.dependencies);
        for table in [&self.optional_dependencies, &self.dependency_groups] {
            h.count(table.len());
            for (name, requirements) in table {
                h.field(name.as_bytes());
                h.requirements(requirements);
            }
        }
        h.list(
            self.environments
                .iter()
                .map(|m| m.try_to_string().unwrap_or_default()),
        );
        h.requirements(&self.constraint_dependencies);
        h.requirements(&self.override_dependencies);
        // Where local dependencies are as written (their metadata is the lock's business:
        // `install::local_fingerprint`); absent when there are none, so older digests hold.
        if !self.local_dependencies.is_empty() {
            h.list(self.local_dependencies.iter().map(|d| {
                format!(
                    "{} {} {}",
                    d.name,
                    d.written,
                    if d.editable { "editable" } else { "built" }
                )
            }));
        }
        *h.0.finalize().as_bytes()
    }
}

struct Hasher(blake3::Hasher);

impl Hasher {
    fn count(&mut self, n: usize) {
        self.0.update(&(n as u64).to_le_bytes());
    }

    fn field(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.0.update(bytes);
    }

    /// A list whose order does not matter.
    fn list(&mut self, items: impl Iterator<Item = String>) {
        let mut items: Vec<String> = items.collect();
        items.sort_unstable();
        items.dedup();
        self.count(items.len());
        for item in items {
            self.field(item.as_bytes());
        }
    }

    fn requirements(&mut self, requirements: &[Requirement]) {
        self.list(requirements.iter().map(ToString::to_string));
    }
}
