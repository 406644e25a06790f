//! Why there is no solution, in sentences: pubgrub's derivation tree walked by its
//! `DefaultStringReporter`, with every fact and conclusion worded here, packages written with
//! PEP 440 specifiers (`b>=2`, `a==1.0`) and the root as "you require".
use pubgrub::{DefaultStringReporter, Derived, External, Map, ReportFormatter, Reporter, Term};
use std::ops::Bound;

use version_ranges::Ranges;

use pep440_rs::Version;

use super::Package;
use super::ranges::{after_locals, format_ranges};
use super::solver::{Context, Unavailable};

type Tree = pubgrub::DerivationTree<Package, Ranges<Version>, Unavailable>;

/// The explanation of `tree`, one sentence per line.
pub(super) fn explain(tree: &Tree, cx: &Context<'_>) -> String {
    let formatter = Formatter { cx };
    match prune(tree) {
        Tree::External(e) => format!(
            "Because {}, the requirements cannot be satisfied.",
            formatter.format_external(&e)
        ),
        tree => DefaultStringReporter::report_with_formatter(&tree, &formatter),
    }
}

/// `tree` without the steps that only rule out local variants of a version (`a==1.0` is
/// `[1.0, 1.0.post0.dev0)`, so when 1.0 is out the solver notes that no `1.0+local` exists):
/// true, but noise to a reader.
fn prune(tree: &Tree) -> Tree {
    let Tree::Derived(derived) = tree else {
        return tree.clone();
    };
    let locals_only = |t: &Tree| {
        matches!(t, Tree::External(External::NoVersions(_, r)) if r.iter().all(|(lo, hi)| {
            matches!((lo, hi), (Bound::Excluded(v), Bound::Excluded(u)) if v.local().is_empty() && *u == after_locals(v))
        }))
    };
    if locals_only(&derived.cause1) {
        return prune(&derived.cause2);
    }
    if locals_only(&derived.cause2) {
        return prune(&derived.cause1);
    }
    let mut derived = derived.clone();
    derived.cause1 = std::sync::Arc::new(prune(&derived.cause1));
    derived.cause2 = std::sync::Arc::new(prune(&derived.cause2));
    Tree::Derived(derived)
}

struct Formatter<'c, 'a> {
    cx: &'c Context<'a>,
}

/// `name` followed by its range as specifiers (`b>=2`), or alone for any version.
fn with_range(package: &Package, range: &Ranges<Version>) -> String {
    if *range == Ranges::full() {
        return package.to_string();
    }
    let text = format_ranges(range);
    if text.contains('|') {
        format!("{package} ({text})")
    } else {
        format!("{package}{text}")
    }
}

impl Formatter<'_, '_> {
    /// "only b==1.0 is available" (or "only b<2 is available" past three versions) when
    /// versions exist outside `range`; else why the ones inside were not taken.
    fn no_versions(&self, package: &Package, range: &Ranges<Version>) -> String {
        let listed = package
            .name()
            .map(|n| self.cx.listed_versions(n))
            .unwrap_or_default();
        let (inside, outside): (Vec<&Version>, Vec<&Version>) =
            listed.iter().partition(|v| range.contains(*v));
        if !inside.is_empty() {
            return if inside.iter().all(|v| v.any_prerelease()) {
                format!(
                    "{} has no final release (pre-releases are not allowed)",
                    with_range(package, range)
                )
            } else {
                format!("no version of {} matches", with_range(package, range))
            };
        }
        match outside.as_slice() {
            [] if *range == Ranges::full() => {
                format!("no version of {package} is available for this environment")
            }
            [] => format!("there is no version of {}", with_range(package, range)),
            [v] => format!("only {package}=={v} is available"),
            few if few.len() <= 3 => {
                let mut shown: Vec<String> = few
                    .iter()
                    .rev()
                    .map(|v| format!("{package}=={v}"))
                    .collect();
                let last = shown.pop().unwrap_or_default();
                format!("only {} and {last} are available", shown.join(", "))
            }
            _ => format!(
                "only {} is available",
                with_range(package, &range.complement())
            ),
        }
    }

    /// Two facts joined with "and"; two requirements of the root read "you require a and b".
    fn both(
        &self,
        first: &External<Package, Ranges<Version>, Unavailable>,
        second: &External<Package, Ranges<Version>, Unavailable>,
    ) -> String {
        match (first, second) {
            (
                External::FromDependencyOf(Package::Root, _, d1, r1),
                External::FromDependencyOf(Package::Root, _, d2, r2),
            ) => {
                let mut both = [with_range(d1, r1), with_range(d2, r2)];
                both.sort();
                format!("you require {} and {}", both[0], both[1])
            }
            _ => format!(
                "{} and {}",
                self.format_external(first),
                self.format_external(second)
            ),
        }
    }

    fn dependency(
        &self,
        p: &Package,
        r: &Ranges<Version>,
        d: &Package,
        dr: &Ranges<Version>,
    ) -> String {
        match p {
            Package::Root => format!("you require {}", with_range(d, dr)),
            _ => format!("{} depends on {}", with_range(p, r), with_range(d, dr)),
        }
    }
}

impl ReportFormatter<Package, Ranges<Version>, Unavailable> for Formatter<'_, '_> {
    type Output = String;

    fn format_external(
        &self,
        external: &External<Package, Ranges<Version>, Unavailable>,
    ) -> String {
        match external {
            External::NotRoot(p, v) => format!("{p}=={v} is what is being resolved"),
            External::NoVersions(p, r) => self.no_versions(p, r),
            External::FromDependencyOf(p, r, d, dr) => self.dependency(p, r, d, dr),
            External::Custom(p, r, why) => format!("{} {why}", with_range(p, r)),
        }
    }

    fn format_terms(&self, terms: &Map<Package, Term<Ranges<Version>>>) -> String {
        let terms: Vec<_> = terms.iter().collect();
        match terms.as_slice() {
            [] | [(Package::Root, _)] => "the requirements cannot be satisfied".to_string(),
            [(p, Term::Positive(r))] => format!("{} cannot be used", with_range(p, r)),
            [(p, Term::Negative(r))] => format!("{} is required", with_range(p, r)),
            [(p, Term::Positive(r)), (d, Term::Negative(dr))]
            | [(d, Term::Negative(dr)), (p, Term::Positive(r))] => self.dependency(p, r, d, dr),
            many => {
                let mut parts: Vec<String> = many
                    .iter()
                    .map(|(p, t)| match t {
                        Term::Positive(r) => with_range(p, r),
                        Term::Negative(r) => format!("not {}", with_range(p, r)),
                    })
                    .collect();
                parts.sort();
                let last = parts.pop().unwrap_or_default();
                format!("{} and {last} cannot be used together", parts.join(", "))
            }
        }
    }

    fn explain_both_external(
        &self,
        external1: &External<Package, Ranges<Version>, Unavailable>,
        external2: &External<Package, Ranges<Version>, Unavailable>,
        current_terms: &Map<Package, Term<Ranges<Version>>>,
    ) -> String {
        format!(
            "Because {}, {}.",
            self.both(external1, external2),
            self.format_terms(current_terms)
        )
    }

    fn explain_both_ref(
        &self,
        ref_id1: usize,
        derived1: &Derived<Package, Ranges<Version>, Unavailable>,
        ref_id2: usize,
        derived2: &Derived<Package, Ranges<Version>, Unavailable>,
        current_terms: &Map<Package, Term<Ranges<Version>>>,
    ) -> String {
        format!(
            "Because {} ({ref_id1}) and {} ({ref_id2}), {}.",
            self.format_terms(&derived1.terms),
            self.format_terms(&derived2.terms),
            self.format_terms(current_terms)
        )
    }

    fn explain_ref_and_external(
        &self,
        ref_id: usize,
        derived: &Derived<Package, Ranges<Version>, Unavailable>,
        external: &External<Package, Ranges<Version>, Unavailable>,
        current_terms: &Map<Package, Term<Ranges<Version>>>,
    ) -> String {
        format!(
            "Because {} ({ref_id}) and {}, {}.",
            self.format_terms(&derived.terms),
            self.format_external(external),
            self.format_terms(current_terms)
        )
    }

    fn and_explain_external(
        &self,
        external: &External<Package, Ranges<Version>, Unavailable>,
        current_terms: &Map<Package, Term<Ranges<Version>>>,
    ) -> String {
        format!(
            "And because {}, {}.",
            self.format_external(external),
            self.format_terms(current_terms)
        )
    }

    fn and_explain_ref(
        &self,
        ref_id: usize,
        derived: &Derived<Package, Ranges<Version>, Unavailable>,
        current_terms: &Map<Package, Term<Ranges<Version>>>,
    ) -> String {
        format!(
            "And because {} ({ref_id}), {}.",
            self.format_terms(&derived.terms),
            self.format_terms(current_terms)
        )
    }

    fn and_explain_prior_and_external(
        &self,
        prior_external: &External<Package, Ranges<Version>, Unavailable>,
        external: &External<Package, Ranges<Version>, Unavailable>,
        current_terms: &Map<Package, Term<Ranges<Version>>>,
    ) -> String {
        format!(
            "And because {}, {}.",
            self.both(prior_external, external),
            self.format_terms(current_terms)
        )
    }
}
