//! Where a solve holds: one concrete environment (markers evaluated to true or false), or a
//! fork of a universal solve (markers intersected with the fork's marker, kept on the edges).
use pep440_rs::Version;
use pep508_rs::{
    ExtraName, ExtraOperator, MarkerEnvironment, MarkerExpression, MarkerTree, MarkerTreeKind,
    MarkerValueExtra, MarkerValueVersion,
};
use version_ranges::Ranges;

use crate::wheel::Tag;

/// The wheel-tag priority of a target (lower is better; `None`: cannot install there).
pub(super) type TagPriority<'a> = &'a (dyn Fn(&[Tag]) -> Option<usize> + Sync);

/// The environment one solve is for.
#[derive(Clone, Copy)]
pub(super) enum Environment<'a> {
    /// One interpreter: markers are evaluated, wheels ranked by its tags.
    One {
        /// Its marker values.
        markers: &'a MarkerEnvironment,
        /// Its tag priority.
        tag_priority: TagPriority<'a>,
    },
    /// A fork of a universal solve: every environment where `marker` holds. Any wheel counts
    /// (one machine cannot know which tags the others take), Requires-Python is checked
    /// against the lowest Python the fork allows.
    Fork {
        /// The fork's marker (the project's Python range and environments included).
        marker: &'a MarkerTree,
    },
}

impl Environment<'_> {
    /// The marker under which a requirement written with `marker` applies here, evaluated
    /// with `extras` active: `None` when it never does; `Some(TRUE)` always in one environment.
    pub(super) fn applies(&self, marker: &MarkerTree, extras: &[ExtraName]) -> Option<MarkerTree> {
        match self {
            Self::One { markers, .. } => {
                marker.evaluate(markers, extras).then_some(MarkerTree::TRUE)
            }
            Self::Fork { marker: fork } => {
                let mut m = restrict_extras(marker, extras);
                m.and((*fork).clone());
                (!m.is_false()).then_some(m)
            }
        }
    }

    /// The marker under which a requirement written with `marker` applies with `extra` active
    /// but not without it: what the extra itself brings.
    pub(super) fn applies_only_with(
        &self,
        marker: &MarkerTree,
        extra: &ExtraName,
    ) -> Option<MarkerTree> {
        let with = self.applies(marker, std::slice::from_ref(extra))?;
        match self {
            Self::One { .. } => self.applies(marker, &[]).is_none().then_some(with),
            Self::Fork { .. } => {
                let mut only = with;
                only.and(restrict_extras(marker, &[]).negate());
                (!only.is_false()).then_some(only)
            }
        }
    }

    /// The Python that Requires-Python is checked against, release numbers only.
    pub(super) fn python(&self) -> Version {
        match self {
            Self::One { markers, .. } => Version::new(
                markers
                    .python_full_version()
                    .version
                    .release()
                    .iter()
                    .copied(),
            ),
            Self::Fork { marker } => python_floor(marker).unwrap_or_else(|| Version::new([0u64])),
        }
    }

    /// The fork's marker, `None` for one environment.
    pub(super) fn fork(&self) -> Option<&MarkerTree> {
        match self {
            Self::One { .. } => None,
            Self::Fork { marker } => Some(marker),
        }
    }
}

/// `marker` with `extra == X` decided: true for the `extras` given, false for any other, so
/// that what is left speaks only of the environment.
pub(super) fn restrict_extras(marker: &MarkerTree, extras: &[ExtraName]) -> MarkerTree {
    if !mentions_extra(marker) {
        return marker.clone();
    }
    // The disjunctive normal form is exact: each conjunction is kept without its extra
    // clauses when they hold, dropped when one does not.
    let mut out = MarkerTree::FALSE;
    'conjunctions: for conjunction in marker.to_dnf() {
        let mut tree = MarkerTree::TRUE;
        for expression in conjunction {
            if let MarkerExpression::Extra { operator, name } = &expression {
                let active = match name {
                    MarkerValueExtra::Extra(name) => extras.contains(name),
                    MarkerValueExtra::Arbitrary(_) => false,
                };
                if active != (*operator == ExtraOperator::Equal) {
                    continue 'conjunctions;
                }
            } else {
                tree.and(MarkerTree::expression(expression));
            }
        }
        out.or(tree);
    }
    out
}

/// Whether any path of `marker` tests an extra.
fn mentions_extra(marker: &MarkerTree) -> bool {
    match marker.kind() {
        MarkerTreeKind::True | MarkerTreeKind::False => false,
        MarkerTreeKind::Extra(_) => true,
        MarkerTreeKind::Version(node) => node.edges().any(|(_, t)| mentions_extra(&t)),
        MarkerTreeKind::String(node) => node.children().any(|(_, t)| mentions_extra(&t)),
        MarkerTreeKind::In(node) => node.children().any(|(_, t)| mentions_extra(&t)),
        MarkerTreeKind::Contains(node) => node.children().any(|(_, t)| mentions_extra(&t)),
    }
}

/// The Pythons (`python_full_version`) for which `marker` can hold; full when it does not
/// speak of Python, empty when it never holds. (`python_version` is kept as
/// `python_full_version` by the marker algebra.)
pub fn python_range(marker: &MarkerTree) -> Ranges<Version> {
    match marker.kind() {
        MarkerTreeKind::True => Ranges::full(),
        MarkerTreeKind::False => Ranges::empty(),
        MarkerTreeKind::Version(node) => {
            let python = *node.key() == MarkerValueVersion::PythonFullVersion;
            node.edges().fold(Ranges::empty(), |acc, (range, child)| {
                let below = python_range(&child);
                let part = if python {
                    below.intersection(range)
                } else {
                    below
                };
                acc.union(&part)
            })
        }
        MarkerTreeKind::String(node) => union_of(node.children().map(|(_, t)| t)),
        MarkerTreeKind::In(node) => union_of(node.children().map(|(_, t)| t)),
        MarkerTreeKind::Contains(node) => union_of(node.children().map(|(_, t)| t)),
        MarkerTreeKind::Extra(node) => union_of(node.children().map(|(_, t)| t)),
    }
}

fn union_of(children: impl Iterator<Item = MarkerTree>) -> Ranges<Version> {
    children.fold(Ranges::empty(), |acc, t| acc.union(&python_range(&t)))
}

/// The lowest Python for which `marker` can hold (`None`: no lower bound, or never holds).
pub fn python_floor(marker: &MarkerTree) -> Option<Version> {
    use std::ops::Bound;
    match python_range(marker).bounding_range()?.0 {
        Bound::Included(v) | Bound::Excluded(v) => Some(v.clone()),
        Bound::Unbounded => None,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn m(s: &str) -> MarkerTree {
        MarkerTree::from_str(s).unwrap()
    }

    fn extra(s: &str) -> ExtraName {
        ExtraName::from_str(s).unwrap()
    }

    #[test]
    fn extras_are_decided_and_removed() {
        let marker = m("sys_platform == 'linux' and extra == 'a' or extra == 'b'");
        assert_eq!(
            restrict_extras(&marker, &[extra("a")]),
            m("sys_platform == 'linux'")
        );
        assert_eq!(restrict_extras(&marker, &[extra("b")]), MarkerTree::TRUE);
        assert!(restrict_extras(&marker, &[]).is_false());
        assert_eq!(restrict_extras(&m("extra != 'a'"), &[]), MarkerTree::TRUE);
        assert!(restrict_extras(&m("extra != 'a'"), &[extra("a")]).is_false());
        let plain = m("python_version < '3.10'");
        assert_eq!(restrict_extras(&plain, &[]), plain);
    }

    #[test]
    fn fork_applies_by_intersection() {
        let fork = m("python_full_version >= '3.9' and sys_platform == 'linux'");
        let env = Environment::Fork { marker: &fork };
        assert!(env.applies(&m("sys_platform == 'win32'"), &[]).is_none());
        assert!(env.applies(&m("python_version < '3.8'"), &[]).is_none());
        let kept = env.applies(&m("python_version < '3.11'"), &[]).unwrap();
        assert_eq!(python_floor(&kept), Some(Version::from_str("3.9").unwrap()));
        assert!(env.applies(&m("extra == 'x'"), &[]).is_none());
    }

    #[test]
    fn python_floor_and_range() {
        assert_eq!(
            python_floor(&m("python_version >= '3.9' and python_version < '3.12'")),
            Some(Version::from_str("3.9").unwrap())
        );
        assert_eq!(
            python_floor(&m(
                "sys_platform == 'win32' and python_full_version >= '3.10.2' or python_version >= '3.11'"
            )),
            Some(Version::from_str("3.10.2").unwrap())
        );
        assert_eq!(python_floor(&m("sys_platform == 'win32'")), None);
        assert!(python_range(&MarkerTree::FALSE).is_empty());
    }
}
