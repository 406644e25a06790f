//! `--no-binary` and `--only-binary`: which packages the resolver takes from wheels and which
//! from sdists.
//!
//! Each flag names packages or `:all:` (every package); `:none:` empties what the flag said
//! before it, as in pip. A package named by one flag beats `:all:` given to the other
//! (`--no-binary :all: --only-binary numpy` builds everything but numpy); named by both, it is
//! an error. Without either flag a version with a wheel for the target is taken from its wheel
//! and one with only an sdist is built.
use std::collections::BTreeSet;
use std::str::FromStr;

use pep508_rs::PackageName;

/// The packages one of the flags covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Covered {
    /// None: the flag was not given (or ended with `:none:`).
    #[default]
    Nothing,
    /// `:all:` (a name given with it adds nothing).
    All,
    /// These packages.
    Some(BTreeSet<PackageName>),
}

impl Covered {
    fn parse(values: &[String], flag: &'static str) -> Result<Self, BinaryPolicyError> {
        let mut covered = Self::Nothing;
        for value in values.iter().flat_map(|v| v.split(',')).map(str::trim) {
            covered = match value {
                ":all:" => Self::All,
                ":none:" => Self::Nothing,
                name => {
                    let name = PackageName::from_str(name).map_err(|_| {
                        BinaryPolicyError::InvalidName {
                            flag,
                            name: name.to_owned(),
                        }
                    })?;
                    match covered {
                        Self::All => Self::All,
                        Self::Nothing => Self::Some(BTreeSet::from([name])),
                        Self::Some(mut names) => {
                            names.insert(name);
                            Self::Some(names)
                        }
                    }
                }
            };
        }
        Ok(covered)
    }

    fn names(&self, name: &PackageName) -> bool {
        matches!(self, Self::Some(names) if names.contains(name))
    }

    fn fingerprint(&self) -> String {
        match self {
            Self::Nothing => String::new(),
            Self::All => ":all:".to_owned(),
            Self::Some(names) => names
                .iter()
                .map(PackageName::as_ref)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// Which packages may come from wheels and which may be built (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BinaryPolicy {
    no_binary: Covered,
    only_binary: Covered,
}

/// A `--no-binary` / `--only-binary` value that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BinaryPolicyError {
    /// Not a package name, `:all:` or `:none:`.
    #[error("Invalid `--{flag}` value `{name}`: expected a package name, `:all:` or `:none:`")]
    InvalidName {
        /// The flag.
        flag: &'static str,
        /// The value given.
        name: String,
    },
    /// The same package under both flags.
    #[error("`{0}` is given to both `--no-binary` and `--only-binary`: drop it from one of them")]
    Both(PackageName),
}

impl BinaryPolicy {
    /// The policy of the flags' values (each value may list several names, comma-separated).
    pub fn new(no_binary: &[String], only_binary: &[String]) -> Result<Self, BinaryPolicyError> {
        let policy = Self {
            no_binary: Covered::parse(no_binary, "no-binary")?,
            only_binary: Covered::parse(only_binary, "only-binary")?,
        };
        if let (Covered::Some(a), Covered::Some(b)) = (&policy.no_binary, &policy.only_binary)
            && let Some(name) = a.intersection(b).next()
        {
            return Err(BinaryPolicyError::Both(name.clone()));
        }
        Ok(policy)
    }

    /// True when `name`'s wheels are ignored: it is built from its sdist.
    pub fn no_binary(&self, name: &PackageName) -> bool {
        match &self.no_binary {
            Covered::Nothing => false,
            Covered::All => !self.only_binary.names(name),
            Covered::Some(names) => names.contains(name),
        }
    }

    /// True when `name`'s sdists are ignored: it is never built.
    pub fn only_binary(&self, name: &PackageName) -> bool {
        match &self.only_binary {
            Covered::Nothing => false,
            Covered::All => !self.no_binary.names(name),
            Covered::Some(names) => names.contains(name),
        }
    }

    /// True when neither flag covers any package.
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }

    /// A canonical text of the policy, for the lock's inputs hash (empty for the default).
    pub fn fingerprint(&self) -> String {
        if self.is_default() {
            return String::new();
        }
        format!(
            "no-binary={};only-binary={}",
            self.no_binary.fingerprint(),
            self.only_binary.fingerprint()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn policy(no: &[&str], only: &[&str]) -> BinaryPolicy {
        BinaryPolicy::new(&strings(no), &strings(only)).unwrap()
    }

    fn name(n: &str) -> PackageName {
        PackageName::from_str(n).unwrap()
    }

    #[test]
    fn default_covers_nothing() {
        let p = policy(&[], &[]);
        assert!(p.is_default());
        assert!(!p.no_binary(&name("a")) && !p.only_binary(&name("a")));
        assert_eq!(p.fingerprint(), "");
    }

    #[test]
    fn names_are_normalized_and_comma_separated() {
        let p = policy(&["Foo_Bar,baz"], &[]);
        assert!(p.no_binary(&name("foo-bar")));
        assert!(p.no_binary(&name("baz")));
        assert!(!p.no_binary(&name("other")));
        assert!(!p.only_binary(&name("baz")));
    }

    #[test]
    fn a_name_beats_all_of_the_other_flag() {
        let p = policy(&[":all:"], &["numpy"]);
        assert!(p.no_binary(&name("requests")));
        assert!(!p.no_binary(&name("numpy")));
        assert!(p.only_binary(&name("numpy")));
        let p = policy(&["mine"], &[":all:"]);
        assert!(p.only_binary(&name("requests")));
        assert!(p.no_binary(&name("mine")) && !p.only_binary(&name("mine")));
    }

    #[test]
    fn none_resets_the_flag() {
        let p = policy(&[":all:", ":none:", "a"], &[]);
        assert!(p.no_binary(&name("a")));
        assert!(!p.no_binary(&name("b")));
        assert!(policy(&["a", ":none:"], &[]).is_default());
    }

    #[test]
    fn fingerprints_differ_by_policy_not_by_spelling() {
        assert_eq!(
            policy(&["B", "a"], &[]).fingerprint(),
            policy(&["a,b"], &[]).fingerprint()
        );
        assert_ne!(
            policy(&["a"], &[]).fingerprint(),
            policy(&[], &["a"]).fingerprint()
        );
        assert_ne!(
            policy(&[":all:"], &[]).fingerprint(),
            policy(&["a"], &[]).fingerprint()
        );
    }

    #[test]
    fn bad_values_are_errors() {
        assert_eq!(
            BinaryPolicy::new(&strings(&["not a name"]), &[]),
            Err(BinaryPolicyError::InvalidName {
                flag: "no-binary",
                name: "not a name".into()
            })
        );
        assert_eq!(
            BinaryPolicy::new(&strings(&["a"]), &strings(&["A"])),
            Err(BinaryPolicyError::Both(name("a")))
        );
    }
}
