//! The install pipeline: pinned requirements -> lock (DPL + pylock.toml) -> store -> layout -> venv.
//!
//! ```text
//! lock::lock_requirements    pick one wheel per pin, download, verify, convert into the store,
//!                            check the set is closed, return a `Lock`
//! fetch::ensure_stored       bring every locked package into the store (cold installs)
//! bytecode::ensure_bytecode  compile each package once per interpreter, kept in the store
//! sync::sync_venv            layout hit = one symlink; miss = build the layout, then link it
//! ```
mod bytecode;
mod changes;
mod error;
mod fetch;
mod local;
mod lock;
mod locked_source;
mod planned;
mod prepare;
mod pylock_select;
mod report;
mod resolved;
mod selected;
mod sync;
mod universal;
mod venv_lock;
pub use venv_lock::venv_locks_dir;

pub use bytecode::{
    BytecodeBatch, LazyBytecodeBatch, bytecode_pack, ensure_bytecode, ensure_bytecode_packs,
    existing_packs,
};
pub(crate) use bytecode::{bytecode_dirs, local_bytecode_pack};
pub use changes::PackageChange;
pub use error::InstallError;
pub(crate) use fetch::prepare_checked;
pub use fetch::{
    AfterStore, FetchStats, ensure_stored, form_for, local_wheel, store_wheel_bytes,
    store_wheel_bytes_as, unpack_when_stored,
};
pub use local::JoinedLock;
pub use lock::{LockOptions, inputs_hash, lock_requirements};
pub use locked_source::{
    LocalSourceError, directory_versions, local_fingerprint, name_local_sources,
    name_universal_local_sources, relative_path,
};
pub use planned::{PlannedPackage, ensure_stored_or_planned, planned_pack_key, store_planned};
pub use prepare::{
    PrepareOptions, PreparedPackage, WheelSources, finish_bytecode, prepare_packages,
    prepared_packages,
};
pub use pylock_select::{PylockSelectError, read_pylock_for};
pub use report::{InstallReport, NoReporter, Reporter};
pub use resolved::{ResolveRequest, lock_resolution, resolve_and_lock};
pub use selected::{SelectionError, select_for, selected_lock, selected_lock_at, selection_key};
pub use sync::{SyncContext, SyncOptions, project_hash, sync_venv, try_warm, venv_holds};
pub use universal::{locked_versions, resolve_universal_and_lock, universal_scope};
