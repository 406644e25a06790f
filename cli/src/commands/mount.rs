//! `dx-py mount [VENV]`: arguments in, a [`dx_py_core::mount`] plan, a server started through
//! [`super::mount_serve`], what happened printed.
//!
//! Without a prebuilt `--tree`, the lock is resolved as `install` does (`-r` locks first), the
//! plan builds (or finds) the venv's tree, and what it leaves for later (packages laid out from
//! local wheels, bytecode) is the server's to complete after mounting.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result};
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::install::WheelSources;
use dx_py_core::mount::{MountPlan, MountRequest, ServerSpec, cached_tree, plan_mount};
use dx_py_core::plural::{count, is_are};
use dx_py_fs_linux::serve::{self, AutoUnmount, MountOptions};

use super::lock::WhileLocking;
use crate::cli::{InstallArgs, LinkModeArg, MountArgs};
use crate::printer::Printer;
use crate::settings::{self, Settings};

pub(crate) fn run_mount(
    args: &MountArgs,
    settings: &Settings,
    printer: &Printer,
) -> Result<ExitCode> {
    if args.list {
        return super::unmount::list(settings, printer);
    }
    let mut settings = settings.with_store(args.store.as_deref());
    // The server runs in `/`: every path the plan and its spec hold must be absolute.
    settings.cache_dir = absolute(&settings.cache_dir)?;
    settings.store_dir = absolute(&settings.store_dir)?;
    let settings = &settings;
    let venv = dx_py_fs_linux::mounts::absolute(&args.venv)?;
    let (tree, after, remote_names, remote_pairs) = match &args.tree {
        Some(tree) => (absolute(tree)?, None, Vec::new(), Vec::new()),
        None => {
            if let Some(why) = fuse_unusable(args) {
                printer.warn(format_args!(
                    "FUSE is not usable here ({why}); installing the symlink layout of the same lock instead"
                ));
                return fallback_install(args, settings, printer);
            }
            let (plan, names) = plan(args, &venv, settings, printer)?;
            let pairs = plan
                .remote_pairs
                .iter()
                .map(|(a, b)| (a.to_hex().to_string(), b.to_hex().to_string()))
                .collect();
            (plan.tree, plan.later.map(|later| later.after), names, pairs)
        }
    };
    let cache = settings.cache();
    let spec = ServerSpec {
        tree,
        mountpoint: venv,
        cache_dir: cache.root().to_path_buf(),
        store: cache
            .store_is_shared()
            .then(|| cache.store_dir().to_path_buf()),
        // A read of a package not fetched yet holds its thread for the fetch: more threads
        // keep the other packages served meanwhile.
        threads: match settings.store_url {
            Some(_) => MountOptions::default().threads.max(REMOTE_THREADS),
            None => MountOptions::default().threads,
        },
        allow_other: args.allow_other,
        auto_unmount: !args.no_auto_unmount,
        keep_pack_cache: args.keep_pack_cache,
        after,
        store_url: settings.store_url.clone(),
        remote_names,
        remote_pairs,
    };
    super::mount_serve::start(spec, args, settings, printer)
}

/// Request threads of a mount with a remote tier.
const REMOTE_THREADS: usize = 8;

/// Why FUSE cannot serve this mount (`DX_PY_NO_FUSE=1` asks for the layout even where it
/// could: containers that allow /dev/fuse but should not mount, and the fallback's own tests).
fn fuse_unusable(args: &MountArgs) -> Option<String> {
    if std::env::var_os("DX_PY_NO_FUSE").is_some_and(|v| !v.is_empty() && v != "0") {
        return Some("DX_PY_NO_FUSE is set".to_string());
    }
    let opts = MountOptions {
        allow_other: args.allow_other,
        auto_unmount: match args.no_auto_unmount {
            true => AutoUnmount::Off,
            false => AutoUnmount::Watcher(super::mount_serve::watcher(Path::new("/")).ok()?),
        },
        ..MountOptions::default()
    };
    serve::preflight(&opts).err().map(|why| why.to_string())
}

/// Names of the objects a mount reads from the remote tier: `(object hex, package)`.
type RemoteNames = Vec<(String, String)>;

/// The tree of the lock `args` name for `venv`, from the cache or built now, and the names of
/// the packages whose objects the server fetches on first read.
fn plan(
    args: &MountArgs,
    venv: &Path,
    settings: &Settings,
    printer: &Printer,
) -> Result<(MountPlan, RemoteNames)> {
    let interp = settings.interpreter(args.python.as_deref())?;
    // Locking and fetching store packages: held shared, like install, so that `cache clean`
    // waits for them.
    let mut cache_lock = CacheLock::open(&settings.cache_dir)?;
    let _shared = cache_lock.shared()?;
    settings.sweep_after_crashes();
    let cache = settings.cache();
    // With `--store-url`, the packages the remote has are laid out from their objects'
    // indexes; the server fetches each object on the first read of one of its files.
    let store = match settings.remote()? {
        Some(tier) => cache.store().with_remote(tier),
        None => cache.store(),
    };
    // Local wheels are laid out while locking and stored by the server (when it can store).
    let plans = Mutex::new(Vec::new());
    let also = WhileLocking {
        after_store: None,
        planned: store.is_writable().then_some(&plans),
    };
    let (requirements, lock) = (args.requirements.as_deref(), args.lock.as_deref());
    let choice = super::which_lock::LockChoice {
        requirements,
        lock,
        sources: &args.sources,
        resolve: &args.resolve,
    };
    let dpl_path = super::which_lock::choose_lock(&choice, settings, &interp, also, printer)?;
    let dpl_path = absolute(&dpl_path)?;
    let bytes = std::fs::read(&dpl_path)
        .with_context(|| format!("Cannot read `{}`", dpl_path.display()))?;
    let mut warnings = Vec::new();
    let cached = cached_tree(&dpl_path, &bytes, venv, &interp, &cache, &mut warnings)?;
    for warning in &warnings {
        printer.warn(warning);
    }
    if let Some(tree) = cached {
        // Under the lock: `cache prune` keeps the tree from now (see `cache::reach`).
        dx_py_core::cache::roots::record_mount(&cache.roots_dir(), venv, &tree);
        let plan = MountPlan {
            tree,
            later: None,
            built: None,
            warnings: Vec::new(),
            remote_pairs: Vec::new(),
        };
        return Ok((plan, remote_names(&store, &dpl_path)));
    }
    let client = settings::sources(&args.sources, None, &interp, settings, printer)
        .ok()
        .map(|s| settings::client(settings, s, &args.sources))
        .transpose()?;
    let find_links = args
        .sources
        .find_links
        .iter()
        .map(|d| absolute(Path::new(d)))
        .collect::<Result<Vec<PathBuf>>>()?;
    let lock_dir = dpl_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let plan = plan_mount(MountRequest {
        lock: &dpl_path,
        lock_bytes: bytes,
        venv,
        interp: &interp,
        cache: &cache,
        store: &store,
        sources: WheelSources {
            client: client.as_ref(),
            find_links: &find_links,
            lock_dir: &lock_dir,
            // A mount serves wheels; packages locked as sdists are built by `install`.
            builder: None,
        },
        planned: plans.into_inner().unwrap_or_else(|e| e.into_inner()),
    })?;
    print_plan(&plan, printer);
    dx_py_core::cache::roots::record_mount(&cache.roots_dir(), venv, &plan.tree);
    Ok((plan, remote_names(&store, &dpl_path)))
}

/// The lock's packages (as the plan left the lock at `dpl`) that the store lacks, named.
fn remote_names(store: &dx_py_core::store::PackageStore, dpl: &Path) -> RemoteNames {
    if store.remote().is_none() {
        return Vec::new();
    }
    let lock = std::fs::read(dpl).ok().and_then(|bytes| {
        dx_py_core::dpl::DplReader::from_bytes(bytes.as_slice())
            .ok()?
            .to_lock()
            .ok()
    });
    let Some(lock) = lock else {
        return Vec::new();
    };
    dx_py_core::mount::unfetched_names(store, &lock)
        .into_iter()
        .map(|(hash, name)| (hash.to_hex().to_string(), name))
        .collect()
}

fn print_plan(plan: &MountPlan, printer: &Printer) {
    for warning in &plan.warnings {
        printer.warn(warning);
    }
    let Some(built) = &plan.built else {
        return;
    };
    match &plan.later {
        Some(later) => {
            printer.verbose(format_args!(
                "Built {} ({}, {} stored now, {} after mounting; bytecode for {} compiled after mounting)",
                built.path.display(),
                count(built.packages, "package"),
                built.stored_now,
                later.planned,
                later.missing,
            ));
            if later.planned > 0 {
                printer.info(format_args!(
                    "{} {} stored after mounting (reading one waits for it)",
                    count(later.planned, "package"),
                    is_are(later.planned)
                ));
            }
            if later.missing > 0 {
                printer.info(format_args!(
                    "The bytecode of {} is compiled after mounting (imports until then compile in memory)",
                    count(later.missing, "package")
                ));
            }
        }
        None => printer.verbose(format_args!(
            "Built {} ({}, {} stored now)",
            built.path.display(),
            count(built.packages, "package"),
            built.stored_now,
        )),
    }
}

/// Without FUSE, the venv gets the symlink layout of the same lock.
fn fallback_install(args: &MountArgs, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    let install = InstallArgs {
        requirements: args.requirements.clone(),
        lock: args.lock.clone(),
        venv: args.venv.clone(),
        python: args.python.clone(),
        sources: args.sources.clone(),
        resolve: args.resolve.clone(),
        link_mode: LinkModeArg::Auto,
        no_compile_bytecode: false,
        store: args.store.clone(),
    };
    super::install::run(&install, settings, printer)
}

pub(crate) fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("Cannot resolve `{}`", path.display()))
}
