//! Arguments of the commands over the store, the cache and DPL files.
use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub(crate) enum StoreCommand {
    /// Convert wheels into store objects; prints `<hash>  <name> <version>` per wheel.
    Add {
        /// Wheel files.
        #[arg(required = true)]
        wheels: Vec<PathBuf>,
    },
    /// Re-hash objects (all when none given); exit 1 listing any that are corrupt.
    Verify {
        /// Object hashes.
        hashes: Vec<String>,
    },
    /// Print an object's path.
    Path {
        /// Object hash.
        hash: String,
    },
    /// Publish what a lock needs (objects, wheel records, bytecode) to a remote store: an
    /// `s3://bucket/prefix`, or a directory (`file://…` or a path) that a web server serves.
    /// Files already there are skipped.
    Push {
        /// Where to publish.
        url: String,
        /// The lock (a `dx-py.dpl`); its packages must be in the local store.
        #[arg(long, value_name = "FILE", default_value = "dx-py.dpl")]
        lock: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum CacheCommand {
    /// Remove cached layouts, store objects, or both.
    Clean(CleanArgs),
    /// Count objects, layouts and bytes, and what `prune` would free.
    Stats,
    /// Remove what no live venv, mount or lock uses; with `--max-size`, then evict the least
    /// recently used entries until the cache fits.
    Prune(PruneArgs),
    /// Check objects, unpacked copies, layouts and mount trees against the objects' hashes.
    Verify {
        /// Mend what is damaged from verified objects (damaged objects are removed: the next
        /// install fetches them again).
        #[arg(long)]
        repair: bool,
    },
    /// Print the cache root.
    Dir,
}

#[derive(Args, Debug)]
pub(crate) struct PruneArgs {
    /// List what would be removed; remove nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Evict least recently used entries until the cache takes at most SIZE (e.g. `500M`,
    /// `2G`); never what a live mount serves.
    #[arg(long, value_name = "SIZE", value_parser = dx_py_core::cache::prune::parse_size)]
    pub(crate) max_size: Option<u64>,
}

#[derive(Args, Debug)]
pub(crate) struct CleanArgs {
    /// What to remove.
    #[command(flatten)]
    pub(crate) what: CleanWhat,
    /// Also remove what live venvs and mounts use (run `dx-py install` in them afterwards).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub(crate) struct CleanWhat {
    /// Remove the layout cache.
    #[arg(long)]
    pub(crate) layouts: bool,
    /// Remove the package store (and layouts, which link into it).
    #[arg(long)]
    pub(crate) store: bool,
    /// Remove everything.
    #[arg(long)]
    pub(crate) all: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum DplCommand {
    /// Build a DPL from a `pylock.toml`.
    Build {
        /// The PEP 751 lock.
        pylock: PathBuf,
        /// Output file.
        #[arg(short, long, default_value = "dx-py.dpl")]
        output: PathBuf,
    },
    /// Print every entry.
    Dump {
        /// The DPL file.
        dpl: PathBuf,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print one entry (name compared PEP 503-normalized).
    Get {
        /// The DPL file.
        dpl: PathBuf,
        /// The package name.
        name: String,
    },
}
