//! Python interpreters: finding one and describing it ([`Interpreter`]), the wheel tags it
//! accepts, creating venvs for it ([`create_venv`]) and compiling bytecode with it
//! ([`compile_sources`]).
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
mod bytecode;
pub(crate) mod interpreter;
mod plan;
mod run;
mod session;
mod tags;
mod venv;

pub use bytecode::{
    Answers, BytecodeError, Pyc, compile_dir, compile_each, compile_sources, compile_sources_with,
    default_jobs, write_pycs,
};
pub use interpreter::{
    Interpreter, InterpreterError, InterpreterInfo, Libc, MarkerValues, PythonVersion, SchemePaths,
};
pub use plan::compile_plan;
pub use run::{RunError, run_replacing, venv_command};
pub use session::{CompileSession, SessionSource};
pub use venv::{
    ExistingVenv, Venv, VenvError, VenvOptions, VenvShape, create_venv, venv_text_files,
};
