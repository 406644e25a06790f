//! Package names: the one name type, [`PackageName`], and the PEP 503 rule on plain strings.
//!
//! A name that travels (wheel file names, the closure check, the resolver, install plans) is a
//! [`PackageName`]: validated (`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`) and normalized once,
//! so that comparing two names is comparing two strings. It is `pep508_rs`'s type, re-exported
//! here, because requirements parsed by `pep508_rs` (and so the resolver) already carry it; a
//! second type would need conversions at every border.
//!
//! [`normalize_name`] stays for strings that need not be valid names: a lock or a `.dxpkg` read
//! from disk is compared as written (its reader must not start refusing what it accepted), and
//! the name as the index spells it is kept byte-exact where it is written out (DPL, pylock.toml,
//! dist-info directory names).

pub use pep508_rs::PackageName;

/// PEP 503 normalization: lowercase, runs of `-`, `_` and `.` become one `-`.
///
/// On a valid name this is what [`PackageName`] holds; on any other string it still gives a
/// stable key (see the module docs for where that is needed).
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_sep {
                out.push('-');
            }
            last_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            last_sep = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::{PackageName, normalize_name};

    #[test]
    fn pep503_examples() {
        for n in [
            "friendly-bard",
            "Friendly-Bard",
            "FRIENDLY-BARD",
            "friendly.bard",
            "friendly_bard",
            "friendly--bard",
            "FrIeNdLy-._.-bArD",
        ] {
            assert_eq!(normalize_name(n), "friendly-bard", "{n}");
            assert_eq!(PackageName::from_str(n).unwrap().as_ref(), "friendly-bard");
        }
    }

    /// The PEP 503 rule written the way the spec states it: `re.sub(r"[-_.]+", "-", name).lower()`.
    fn pep503_oracle(name: &str) -> String {
        let mut out = String::new();
        let mut chars = name.chars().peekable();
        while let Some(c) = chars.next() {
            if matches!(c, '-' | '_' | '.') {
                while chars.next_if(|c| matches!(c, '-' | '_' | '.')).is_some() {}
                out.push('-');
            } else {
                out.extend(c.to_lowercase());
            }
        }
        out
    }

    /// The PEP 508 name pattern, as a regex-free oracle.
    fn is_valid(name: &str) -> bool {
        let b = name.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    }

    proptest! {
        /// On valid names the type and the function agree with the spec's rule, and normalizing
        /// twice changes nothing.
        #[test]
        fn package_name_is_pep503(name in "[A-Za-z0-9]([A-Za-z0-9._-]{0,12}[A-Za-z0-9])?") {
            let typed = PackageName::from_str(&name).unwrap();
            prop_assert_eq!(typed.as_ref(), pep503_oracle(&name));
            prop_assert_eq!(normalize_name(&name), pep503_oracle(&name));
            prop_assert_eq!(&PackageName::from_str(typed.as_ref()).unwrap(), &typed);
            prop_assert_eq!(normalize_name(typed.as_ref()), typed.as_ref());
        }

        /// Any non-empty string: the type accepts exactly the PEP 508 names; the function is
        /// idempotent. (`pep508_rs` accepts the empty name: parsers of names from outside, such
        /// as wheel file names, refuse empty parts before they make one.)
        #[test]
        fn only_valid_names_are_package_names(name in "[A-Za-z0-9._ é-]{1,8}") {
            prop_assert_eq!(PackageName::from_str(&name).is_ok(), is_valid(&name));
            let once = normalize_name(&name);
            prop_assert_eq!(normalize_name(&once), once.clone());
        }
    }
}
