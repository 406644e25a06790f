//! Command-line arguments.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A Python package manager whose venvs cost almost nothing.
#[derive(Parser, Debug)]
#[command(name = "dx-py", version, about)]
pub(crate) struct Cli {
    /// Cache root (store and layouts); default: $DX_PY_CACHE_DIR, then the platform cache dir.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Package store location, e.g. a read-only shared store; default: {cache}/store.
    #[arg(long, global = true, value_name = "DIR", env = "DX_PY_STORE")]
    pub(crate) store: Option<PathBuf>,
    /// More output (per-phase timings, cache hits); repeat for debug logs.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Inspect and add to the package store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Inspect and clean the cache.
    #[command(subcommand)]
    Cache(CacheCommand),
}

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
}

#[derive(Subcommand, Debug)]
pub(crate) enum CacheCommand {
    /// Remove cached layouts, store objects, or both.
    Clean(CleanArgs),
    /// Count objects, layouts and bytes.
    Stats,
    /// Print the cache root.
    Dir,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub(crate) struct CleanArgs {
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
