//! Serving a lock as a venv tree: what `dx-py mount` and its server do that needs no FUSE, so
//! that every file system front end (`fs-linux`, `fs-windows`) shares it.
//!
//! ```text
//! plan::plan_mount        lock -> packages (stored, or laid out from local wheels to be stored
//!                         later) + bytecode packs -> the venv's `.dxtree` in {cache}/mounts/trees/
//! spec::ServerSpec        what `dx-py mount` hands its server process (serde, on its stdin)
//! spec::ServerStatus      what the server reports back (serde lines on its stdout, the last
//!                         one also in {cache}/mounts/<key>.status)
//! after::PendingWork      the server's work after mounting: store the planned packages on a
//!                         worker pool, give the project's lock their objects (compare-and-swap),
//!                         then plan::complete_tree builds the tree with every bytecode pack
//! ```
//!
//! The packages and their bytecode come from the same code as an install's
//! ([`crate::install::prepared_packages`]); the venv's paths from [`crate::python::VenvShape`].
mod after;
mod error;
mod plan;
mod remote;
mod spec;

pub use after::{AfterMounting, PendingWork, ProjectLock, update_project_lock};
pub use error::MountPlanError;
pub use plan::{
    BuiltTree, MountPlan, MountRequest, PlanWarning, StoreLater, cached_tree, complete_tree,
    plan_mount, tree_spec,
};
pub use remote::unfetched_names;
pub use spec::{ServerSpec, ServerStatus, StatusError, reason_of};
