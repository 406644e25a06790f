//! The `dx-py` command line: a thin layer over `dx-py-core`.
#![forbid(unsafe_code)]
use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod printer;
mod reporter;
mod settings;
mod timeline;

use cli::{Cli, Command};
use printer::Printer;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(cli.verbose, cli.quiet);
    init_tracing(cli.verbose, cli.quiet);
    let settings = settings::Settings::from_cli(&cli);
    // A process that dies before `release_writer` below leaves its record: the next command
    // that writes to the cache then looks for its temporaries.
    // The mount server's cache is in the spec it reads: it records itself there.
    #[cfg(target_os = "linux")]
    let own_cache = !matches!(cli.command, Command::ServeMount);
    #[cfg(not(target_os = "linux"))]
    let own_cache = true;
    if own_cache {
        dx_py_core::temp::record_writers_in(&settings.cache_dir);
    }
    printer.timeline().mark("startup");
    let result = match &cli.command {
        Command::Venv(args) => commands::venv::run(args, &settings, &printer),
        Command::Lock(args) => commands::lock::run(args, &settings, &printer),
        Command::Install(args) => commands::install::run(args, &settings, &printer),
        Command::Sync(args) => commands::project::sync(args, &settings, &printer),
        Command::Add(args) => commands::project::add(args, &settings, &printer),
        Command::Remove(args) => commands::project::remove(args, &settings, &printer),
        Command::Run(args) => commands::project::run(args, &settings, &printer),
        Command::Export(args) => commands::export::run(args, &settings, &printer),
        Command::Dpl(cmd) => commands::dpl::run(cmd, &printer),
        #[cfg(target_os = "linux")]
        Command::Mount(args) => commands::mount::run_mount(args, &settings, &printer),
        #[cfg(target_os = "linux")]
        Command::Unmount(args) => commands::unmount::run_unmount(args, &settings, &printer),
        #[cfg(target_os = "linux")]
        Command::ServeMount => commands::mount_serve::run_serve(),
        #[cfg(target_os = "linux")]
        Command::WatchMount(args) => commands::mount_serve::run_watch(args),
        Command::Store(cmd) => commands::store::run(cmd, &settings, &printer),
        Command::Cache(cmd) => commands::cache::run(cmd, &settings, &printer),
    };
    // Ctrl-C during builds: the result is the interruption's echo; the thread that caught the
    // signal removes this process's temporaries and exits (130).
    dx_py_core::build::wait_if_stopping();
    // Every temporary of this process is gone by now: published, or dropped on an error path.
    dx_py_core::temp::release_writer();
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            printer.error(&err);
            ExitCode::from(commands::exit_code(&err))
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    // fuser's session warns when its own unmount at the end finds the mount already gone,
    // which is how every `dx-py unmount` ends a server: not worth a line in the log.
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn,fuser::session=error",
        (_, 1) => "warn,fuser::session=error",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("DX_PY_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .try_init();
}
