//! PEP 440 specifier sets as the solver's version sets (`Ranges<Version>`), and back to text.
//!
//! Every operator becomes a union of intervals over the total order of [`Version`], which puts a
//! version's local variants (`1.0+abc`) right after it and before anything else, and whose
//! internal `min`/`max` forms (`1.0min0`, `1.0max0`) sort below and above every real `1.0`
//! variant. The rules, with `P` the candidate without its local label:
//!
//! | specifier      | holds when                                                                 |
//! |----------------|----------------------------------------------------------------------------|
//! | `==V`          | `P == V` (so `==1.0` matches `1.0+abc`); with a local label, exact equality |
//! | `!=V`          | not `==V`                                                                  |
//! | `==V.*`        | same epoch, release numbers start with V's (zero-padded)                   |
//! | `~=V`          | `P >= V` and `==` V's release without its last number `.*`                  |
//! | `<=V`, `>=V`   | `P <= V`, `P >= V`                                                         |
//! | `<V`           | `P < V`, and unless V is a pre-release, not a pre/dev release of V's release |
//! | `>V`           | `P > V`, and unless V is a post or dev release, not a post-release of V      |
//! | `===V`         | the version's text is V's text (ranges hold V; see [`arbitrary_equality_holds`]) |
//!
//! `<V` for a post-release V (`<1.0.post2`) also keeps out the pre/dev releases of `1.0`, but lets
//! `1.0` and `1.0.post1` (and their dev releases) in, so that the set stays one interval below.
use std::ops::Bound;

use pep440_rs::{Operator, Version, VersionSpecifier, VersionSpecifiers};
use version_ranges::Ranges;

/// The versions that satisfy every specifier of `specifiers` (for `===`, also see
/// [`arbitrary_equality_holds`]).
pub fn specifiers_to_ranges(specifiers: &VersionSpecifiers) -> Ranges<Version> {
    specifiers.iter().fold(Ranges::full(), |acc, s| {
        acc.intersection(&specifier_to_ranges(s))
    })
}

/// The versions that satisfy `specifier`.
pub fn specifier_to_ranges(specifier: &VersionSpecifier) -> Ranges<Version> {
    let v = specifier.version();
    match specifier.operator() {
        Operator::Equal | Operator::ExactEqual if !v.local().is_empty() => {
            Ranges::singleton(v.clone())
        }
        // `===` compares text: `1.0+abc` is not `===1.0`.
        Operator::ExactEqual => Ranges::singleton(v.clone()),
        Operator::Equal => with_locals(v),
        Operator::NotEqual if !v.local().is_empty() => Ranges::singleton(v.clone()).complement(),
        Operator::NotEqual => with_locals(v).complement(),
        Operator::EqualStar => release_prefix(v.epoch(), v.release()),
        Operator::NotEqualStar => release_prefix(v.epoch(), v.release()).complement(),
        Operator::TildeEqual => {
            let release = v.release();
            let prefix = release
                .get(..release.len().saturating_sub(1))
                .unwrap_or(release);
            Ranges::higher_than(v.clone()).intersection(&release_prefix(v.epoch(), prefix))
        }
        Operator::LessThanEqual => Ranges::strictly_lower_than(after_locals(v)),
        Operator::GreaterThanEqual => Ranges::higher_than(v.clone()),
        Operator::LessThan => {
            if v.any_prerelease() {
                return Ranges::strictly_lower_than(v.clone());
            }
            let first = release_start(v.epoch(), v.release());
            let below = Ranges::strictly_lower_than(first);
            if v.is_post() {
                // The final release and earlier post-releases of the same release are in.
                let final_release = Version::new(v.release().iter().copied()).with_epoch(v.epoch());
                below.union(&Ranges::between(final_release, v.clone()))
            } else {
                below
            }
        }
        Operator::GreaterThan => {
            if v.is_post() || v.is_dev() {
                Ranges::higher_than(after_locals(v))
            } else {
                // Above V's post-releases (and their locals): `1.0max0`.
                Ranges::strictly_higher_than(v.clone().with_max(Some(0)))
            }
        }
    }
}

/// Whether `version` passes the `===` specifiers of `specifiers`, which compare text: ranges
/// cannot tell `1.0` from `1.0.0`, so the solver's candidate choice checks this too.
pub fn arbitrary_equality_holds(specifiers: &VersionSpecifiers, version: &Version) -> bool {
    specifiers
        .iter()
        .filter(|s| *s.operator() == Operator::ExactEqual)
        .all(|s| s.version().to_string() == version.to_string())
}

/// Whether `specifiers` name a pre-release in a way that asks for pre-releases (`!=` excludes
/// one and does not).
pub fn names_prerelease(specifiers: &VersionSpecifiers) -> bool {
    specifiers.iter().any(|s| {
        !matches!(s.operator(), Operator::NotEqual | Operator::NotEqualStar)
            && s.version().any_prerelease()
    })
}

/// `v` and its local variants: `[v, after_locals(v))`.
fn with_locals(v: &Version) -> Ranges<Version> {
    Ranges::from_range_bounds(v.clone()..after_locals(v))
}

/// The smallest real version above `v` and every `v+local`: bumping the last numbered part of
/// the sort key (dev, else a new `.post(N+1).dev0`, else `.post0.dev0`).
pub(super) fn after_locals(v: &Version) -> Version {
    let v = v.clone().without_local();
    match (v.dev(), v.post()) {
        (Some(dev), _) => v.with_dev(Some(dev.saturating_add(1))),
        (None, Some(post)) => v.with_post(Some(post.saturating_add(1))).with_dev(Some(0)),
        (None, None) => v.with_post(Some(0)).with_dev(Some(0)),
    }
}

/// Below every version of this release: `1.0min0` sorts under `1.0.dev0`.
fn release_start(epoch: u64, release: &[u64]) -> Version {
    Version::new(release.iter().copied())
        .with_epoch(epoch)
        .with_min(Some(0))
}

/// Every version whose release numbers start with `prefix` (zero-padded), in `epoch`.
fn release_prefix(epoch: u64, prefix: &[u64]) -> Ranges<Version> {
    let Some((last, rest)) = prefix.split_last() else {
        return Ranges::full();
    };
    let upper: Vec<u64> = rest
        .iter()
        .copied()
        .chain([last.saturating_add(1)])
        .collect();
    Ranges::from_range_bounds(release_start(epoch, prefix)..release_start(epoch, &upper))
}

/// `ranges` written as PEP 440 specifiers, e.g. `>=1.0, <2.0`, `==1.5`, `!=1.3`, or `*` for any
/// version; intervals of a union are joined with ` | `.
pub fn format_ranges(ranges: &Ranges<Version>) -> String {
    if ranges.is_empty() {
        return "∅".to_string();
    }
    let complement = ranges.complement();
    let mut segments = complement.iter();
    if let (Some(segment), None) = (segments.next(), segments.next())
        && let Some(text) = equal_form(segment)
    {
        return format!("!={}", text.trim_start_matches('='));
    }
    // A hull with single versions taken out: `>=1, !=1.5`.
    if let (Some((lower, _)), Some((_, upper))) = (ranges.iter().next(), ranges.iter().last()) {
        let hull = Ranges::from_range_bounds((lower.clone(), upper.clone()));
        let gaps = hull.intersection(&complement);
        let holes: Option<Vec<String>> = gaps.iter().map(equal_form).collect();
        if let Some(holes) = holes.filter(|h| !h.is_empty()) {
            let mut text = format_segment(hull.iter().next().unwrap_or((lower, upper)));
            for hole in holes {
                text.push_str(&format!(", !={}", hole.trim_start_matches('=')));
            }
            return text;
        }
    }
    ranges
        .iter()
        .map(format_segment)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// One interval as specifiers.
fn format_segment(segment: (&Bound<Version>, &Bound<Version>)) -> String {
    if let Some(text) = equal_form(segment) {
        return text;
    }
    let lower = match segment.0 {
        Bound::Unbounded => None,
        Bound::Included(v) => Some(format!(">={}", public(v))),
        Bound::Excluded(v) => Some(format!(">{}", public(v))),
    };
    let upper = match segment.1 {
        Bound::Unbounded => None,
        Bound::Included(v) => Some(format!("<={}", public(v))),
        Bound::Excluded(v) => Some(match before_locals(v) {
            Some(w) => format!("<={w}"),
            None => format!("<{}", public(v)),
        }),
    };
    match (lower, upper) {
        (None, None) => "*".to_string(),
        (Some(l), None) => l,
        (None, Some(u)) => u,
        (Some(l), Some(u)) => format!("{l}, {u}"),
    }
}

/// `==V` for `[V, V]` and `[V, after_locals(V))`, `==V.*` for a release prefix.
fn equal_form(segment: (&Bound<Version>, &Bound<Version>)) -> Option<String> {
    match segment {
        (Bound::Included(a), Bound::Included(b)) if a == b => Some(format!("=={a}")),
        (Bound::Included(a), Bound::Excluded(b)) if a.min().is_none() && *b == after_locals(a) => {
            Some(format!("=={a}"))
        }
        (Bound::Included(a), Bound::Excluded(b)) if a.min().is_some() && b.min().is_some() => {
            let (ra, rb) = (a.release(), b.release());
            let prefix = ra.split_last()?.1;
            let is_next = a.epoch() == b.epoch()
                && rb.len() == ra.len()
                && rb.split_last()?.1 == prefix
                && rb.last()? == &ra.last()?.saturating_add(1);
            is_next.then(|| format!("=={}.*", public(a)))
        }
        _ => None,
    }
}

/// The version `v` is `after_locals` of, when `v` is such a bound (`.dev0` ends it), so that
/// `<=1.0` prints as written rather than as `<1.0.post0.dev0`.
fn before_locals(v: &Version) -> Option<Version> {
    if v.dev() != Some(0) || v.min().is_some() || v.max().is_some() {
        return None;
    }
    match v.post()? {
        0 => Some(v.clone().with_dev(None).with_post(None)),
        n => Some(v.clone().with_dev(None).with_post(Some(n - 1))),
    }
}

/// `v` without the solver's internal `min`/`max` markers.
fn public(v: &Version) -> Version {
    // The setters refuse (debug-assert) markers on some versions even when clearing them.
    match (v.min(), v.max()) {
        (Some(_), _) => v.clone().with_min(None),
        (None, Some(_)) => v.clone().with_max(None),
        (None, None) => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use pep440_rs::{LocalSegment, Prerelease, PrereleaseKind};
    use proptest::prelude::*;

    fn specs(s: &str) -> VersionSpecifiers {
        VersionSpecifiers::from_str(s).unwrap()
    }

    fn v(s: &str) -> Version {
        Version::from_str(s).unwrap()
    }

    fn in_range(s: &str, version: &str) -> bool {
        let specs = specs(s);
        let version = v(version);
        specifiers_to_ranges(&specs).contains(&version)
            && arbitrary_equality_holds(&specs, &version)
    }

    #[test]
    fn pep440_examples() {
        let cases = [
            ("==1.0", "1.0+abc", true),
            ("==1.0", "1.0.0", true),
            ("==1.0", "1.0.post1", false),
            ("==1.0+abc", "1.0+abc", true),
            ("==1.0+abc", "1.0", false),
            ("!=1.0", "1.0+abc", false),
            ("!=1.0", "1.0.post0", true),
            ("==1.2.*", "1.2.5rc1", true),
            ("==1.2.*", "1.2", true),
            ("==1.2.*", "1.3.dev0", false),
            ("==1.0.*", "1", true),
            ("==1.1.*", "1", false),
            ("!=1.2.*", "1.2.9", false),
            ("!=1.2.*", "1.20", true),
            ("~=2.2", "2.9", true),
            ("~=2.2", "3.0", false),
            ("~=2.2", "2.1", false),
            ("~=1.4.5", "1.4.9", true),
            ("~=1.4.5", "1.5.0", false),
            ("<2.0", "2.0a1", false),
            ("<2.0", "1.9.post1", true),
            ("<2.0rc1", "2.0b1", true),
            ("<1.0.post2", "1.0.post1", true),
            ("<1.0.post2", "1.0a1", false),
            (">1.7", "1.7.post1", false),
            (">1.7", "1.7.1", true),
            (">1.7.post2", "1.7.post3", true),
            (">1.7", "1.7+abc", false),
            ("<=1.0", "1.0+abc", true),
            (">=1.0", "1.0+abc", true),
            ("<=1.0", "1.0.post0", false),
            ("===1.0", "1.0", true),
            ("===1.0", "1.0.0", false),
            ("===1.0", "1.0+abc", false),
        ];
        for (spec, version, expected) in cases {
            if let Ok(specs) = VersionSpecifiers::from_str(spec) {
                let version = v(version);
                let got = specifiers_to_ranges(&specs).contains(&version)
                    && arbitrary_equality_holds(&specs, &version);
                assert_eq!(got, expected, "{spec} contains {version}");
            }
        }
        assert!(in_range(">=1.0, <2.0, !=1.5", "1.6"));
        assert!(!in_range(">=1.0, <2.0, !=1.5", "1.5+x"));
    }

    #[test]
    fn printed_as_specifiers() {
        let cases = [
            (">=1.0, <2.0", ">=1.0, <2.0"),
            ("==1.5", "==1.5"),
            ("!=1.3", "!=1.3"),
            ("<=1.0", "<=1.0"),
            ("<2", "<2"),
            (">1.7", ">1.7"),
            ("==1.2.*", "==1.2.*"),
            ("~=1.4", ">=1.4, <2"),
            (">=1, !=1.5", ">=1, !=1.5"),
            (">=1, !=1.5, !=1.7", ">=1, !=1.5, !=1.7"),
            ("<1.0.post2", "<1.0 | >=1.0, <1.0.post2"),
        ];
        for (spec, printed) in cases {
            assert_eq!(format_ranges(&specifiers_to_ranges(&specs(spec))), printed);
        }
        assert_eq!(format_ranges(&Ranges::full()), "*");
        assert_eq!(format_ranges(&Ranges::singleton(v("1.0"))), "==1.0");
    }

    /// The rules of the module table, written directly on the parts of the versions.
    fn oracle(spec: &VersionSpecifier, c: &Version) -> bool {
        let v = spec.version();
        let p = c.clone().without_local();
        let same_release = |a: &Version, b: &Version| {
            a.epoch() == b.epoch() && Version::new(a.release()) == Version::new(b.release())
        };
        let prefix_match = |prefix: &[u64]| {
            p.epoch() == v.epoch()
                && prefix
                    .iter()
                    .enumerate()
                    .all(|(i, n)| p.release().get(i).copied().unwrap_or(0) == *n)
        };
        match spec.operator() {
            Operator::Equal if !v.local().is_empty() => c == v,
            Operator::Equal => p == *v,
            Operator::NotEqual if !v.local().is_empty() => c != v,
            Operator::NotEqual => p != *v,
            Operator::ExactEqual => c.to_string() == v.to_string(),
            Operator::EqualStar => prefix_match(v.release()),
            Operator::NotEqualStar => !prefix_match(v.release()),
            Operator::TildeEqual => p >= *v && prefix_match(&v.release()[..v.release().len() - 1]),
            Operator::LessThanEqual => p <= *v,
            Operator::GreaterThanEqual => p >= *v,
            Operator::LessThan if v.any_prerelease() => p < *v,
            Operator::LessThan => {
                let final_release = Version::new(v.release()).with_epoch(v.epoch());
                p < *v && !(same_release(&p, v) && p < final_release)
            }
            Operator::GreaterThan => {
                let post_of_v = v.epoch() == p.epoch()
                    && Version::new(v.release()) == Version::new(p.release())
                    && v.pre() == p.pre()
                    && p.is_post();
                p > *v && (v.is_post() || v.is_dev() || !post_of_v)
            }
        }
    }

    fn version_strategy() -> impl Strategy<Value = Version> {
        let pre = prop_oneof![
            3 => Just(None),
            1 => (0usize..3, 0u64..3).prop_map(|(k, n)| Some(Prerelease {
                kind: [PrereleaseKind::Alpha, PrereleaseKind::Beta, PrereleaseKind::Rc][k],
                number: n,
            })),
        ];
        (
            prop_oneof![5 => Just(0u64), 1 => Just(1u64)],
            prop::collection::vec(0u64..3, 1..4),
            pre,
            prop::option::weighted(0.25, 0u64..3),
            prop::option::weighted(0.25, 0u64..3),
            prop::option::weighted(0.2, prop_oneof![Just("abc"), Just("1"), Just("2.x")]),
        )
            .prop_map(|(epoch, release, pre, post, dev, local)| {
                let local = local
                    .map(|l| {
                        l.split('.')
                            .map(|s| match s.parse() {
                                Ok(n) => LocalSegment::Number(n),
                                Err(_) => LocalSegment::String(s.to_string()),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Version::new(release)
                    .with_epoch(epoch)
                    .with_pre(pre)
                    .with_post(post)
                    .with_dev(dev)
                    .with_local(local)
            })
    }

    fn specifier_strategy() -> impl Strategy<Value = VersionSpecifier> {
        (0usize..11, version_strategy()).prop_filter_map("invalid specifier", |(op, version)| {
            let ops = [
                "==", "!=", "<", "<=", ">", ">=", "~=", "===", "==*", "!=*", "==l",
            ];
            let text = match ops[op] {
                "==*" | "!=*" => format!(
                    "{}{}!{}.*",
                    &ops[op][..2],
                    version.epoch(),
                    version
                        .release()
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(".")
                ),
                "==l" => format!("=={version}"),
                op => format!("{op}{}", version.clone().without_local()),
            };
            VersionSpecifier::from_str(&text).ok()
        })
    }

    proptest! {
        /// A version satisfies a specifier set exactly when it lies in the range built from it.
        #[test]
        fn range_agrees_with_specifiers(
            set in prop::collection::vec(specifier_strategy(), 1..3),
            versions in prop::collection::vec(version_strategy(), 1..12),
        ) {
            let specifiers: VersionSpecifiers = set.iter().cloned().collect();
            let ranges = specifiers_to_ranges(&specifiers);
            for c in &versions {
                let expected = set.iter().all(|s| oracle(s, c));
                let got = ranges.contains(c) && arbitrary_equality_holds(&specifiers, c);
                prop_assert_eq!(got, expected, "{} vs {}", specifiers, c);
            }
        }

        /// Printing a single specifier's range and parsing it back gives the same versions.
        #[test]
        fn printed_ranges_mean_the_same(
            spec in specifier_strategy(),
            versions in prop::collection::vec(version_strategy(), 1..12),
        ) {
            let ranges = specifier_to_ranges(&spec);
            let printed = format_ranges(&ranges);
            if !printed.contains('|') && *spec.operator() != Operator::ExactEqual {
                let back = specifiers_to_ranges(&VersionSpecifiers::from_str(&printed).unwrap());
                for c in &versions {
                    prop_assert_eq!(ranges.contains(c), back.contains(c), "{} -> {} at {}", spec, printed, c);
                }
            }
        }
    }
}
