//! Python interpreters: finding one and describing it ([`Interpreter`]), the wheel tags and
//! markers of a target ([`TagTarget`], [`Target`]; pure, no interpreter needed), creating venvs
//! ([`create_venv`]) and compiling bytecode ([`compile`]).
//!
//! A venv made by [`create_venv`]:
//!
//! ```text
//! .venv/
//! ├── pyvenv.cfg               home, implementation, version, executable, command
//! ├── bin/
//! │   ├── python -> {base executable}
//! │   ├── python3 -> python
//! │   ├── python3.X -> python
//! │   ├── activate             bash/zsh
//! │   ├── activate.fish
//! │   └── activate.csh
//! ├── lib/pythonX.Y/site-packages/
//! └── lib64 -> lib             on 64-bit POSIX other than macOS
//! ```
pub mod compile;
mod discovery;
pub(crate) mod interpreter;
mod platform;
mod pyenv;
mod query_cache;
mod run;
mod tags;
mod target;
mod venv;

pub use compile::{
    Answers, BytecodeError, CompileSession, Pyc, SessionSource, compile_dir, compile_each,
    compile_plan, compile_sources, compile_sources_with, default_jobs, write_pycs,
};
pub use interpreter::{
    Interpreter, InterpreterError, InterpreterInfo, Libc, MarkerValues, PythonVersion,
    QueryAnswerError, SchemePaths,
};
pub use platform::{Arch, Os, Platform, PlatformError};
pub use run::{RunError, run_replacing, venv_command};
pub use tags::{TagPriorities, TagTarget, TargetAbi, TargetPlatform};
pub use target::{Target, TargetVersion, TargetVersionError};
pub use venv::{
    ExistingVenv, Venv, VenvError, VenvOptions, VenvShape, create_venv, venv_text_files,
};
