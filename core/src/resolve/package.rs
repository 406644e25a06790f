//! Packages as the solver sees them.
use std::fmt;

use pep508_rs::{ExtraName, PackageName};

/// A node of the solver's graph.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Package {
    /// The manifest: depends on the requirements.
    Root,
    /// A distribution, without extras.
    Base(PackageName),
    /// `name[extra]`: depends on `name` at the same version, plus the `Requires-Dist` lines
    /// that hold only with `extra == "extra"`. Modelling extras as packages keeps one version
    /// per name while letting each extra's dependencies come and go with it.
    Extra(PackageName, ExtraName),
}

impl Package {
    /// The distribution's name (`None` for the root).
    pub fn name(&self) -> Option<&PackageName> {
        match self {
            Self::Root => None,
            Self::Base(name) | Self::Extra(name, _) => Some(name),
        }
    }
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => f.write_str("the requirements"),
            Self::Base(name) => write!(f, "{name}"),
            Self::Extra(name, extra) => write!(f, "{name}[{extra}]"),
        }
    }
}
