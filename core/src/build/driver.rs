//! Running one PEP 517 hook: the embedded Python driver (`driver.py`), written once into the
//! cache under a name that is its hash, run by the build interpreter with a timeout, its output
//! captured in a log and its answer read back as JSON from a file. Each hook process leads its own
//! process group, stopped as a whole on a timeout or Ctrl-C (`stop.rs`).
//!
//! ```text
//! {build dir}/hook-{n}.json         the request: hook, backend, source tree, output dir, settings
//! {build dir}/hook-{n}.answer.json  written by the driver only when the hook returned
//! {build dir}/build.log             stdout and stderr of every hook, appended
//! ```
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{BuildError, BuildSystem};

/// The driver's source; its hash names the file it is written to.
const DRIVER: &str = include_str!("driver.py");

/// How many lines of the log a failure shows.
const TAIL_LINES: usize = 20;

/// A PEP 517 hook (PEP 660's for editable builds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Extra build requirements for a wheel.
    GetRequiresForBuildWheel,
    /// The wheel's `.dist-info` without building (a built wheel when the backend lacks it).
    PrepareMetadataForBuildWheel,
    /// The wheel.
    BuildWheel,
    /// Extra build requirements for an editable wheel (PEP 660).
    GetRequiresForBuildEditable,
    /// An editable wheel's `.dist-info` (PEP 660).
    PrepareMetadataForBuildEditable,
    /// The editable wheel (PEP 660).
    BuildEditable,
}

impl Hook {
    /// The hook's name in the backend.
    pub fn name(self) -> &'static str {
        match self {
            Self::GetRequiresForBuildWheel => "get_requires_for_build_wheel",
            Self::PrepareMetadataForBuildWheel => "prepare_metadata_for_build_wheel",
            Self::BuildWheel => "build_wheel",
            Self::GetRequiresForBuildEditable => "get_requires_for_build_editable",
            Self::PrepareMetadataForBuildEditable => "prepare_metadata_for_build_editable",
            Self::BuildEditable => "build_editable",
        }
    }
}

/// `--config-settings KEY=VALUE` pairs, passed to every hook (a key given several times becomes
/// a list, as pip passes it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigSettings(BTreeMap<String, Vec<String>>);

impl ConfigSettings {
    /// Adds `KEY=VALUE`; `None` when there is no `=`.
    pub fn add(&mut self, pair: &str) -> Option<()> {
        let (k, v) = pair.split_once('=')?;
        self.0.entry(k.to_string()).or_default().push(v.to_string());
        Some(())
    }

    /// True when no setting was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The settings as the hooks take them.
    pub fn to_json(&self) -> serde_json::Value {
        self.0
            .iter()
            .map(|(k, v)| {
                let value = match v.as_slice() {
                    [one] => serde_json::Value::String(one.clone()),
                    many => many
                        .iter()
                        .cloned()
                        .map(serde_json::Value::String)
                        .collect(),
                };
                (k.clone(), value)
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// A short stable text for keys (built-wheel cache, lock inputs).
    pub fn fingerprint(&self) -> String {
        let text = self.to_json().to_string();
        blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
    }
}

/// What a hook answered.
#[derive(Debug, serde::Deserialize)]
pub struct Answer {
    /// `get_requires_*`: the extra requirements.
    #[serde(default)]
    pub requires: Vec<String>,
    /// `prepare_metadata_*`: the `.dist-info` directory made.
    pub metadata: Option<PathBuf>,
    /// `build_*` (and `prepare_metadata_*` without that hook): the wheel made.
    pub wheel: Option<PathBuf>,
    /// `build_*`: set to the hook's name when the backend lacks it (PEP 660 makes
    /// `build_editable` optional).
    pub missing: Option<String>,
    /// Any hook: the import error when the backend's module is not installed.
    pub missing_backend: Option<String>,
}

/// Where and how hooks run for one build.
pub struct HookRunner<'a> {
    /// The interpreter of the build environment (or the target's, without isolation).
    pub python: PathBuf,
    /// Its `bin` directory, put first on `PATH` (backends run tools their requirements install).
    pub bin: Option<PathBuf>,
    /// The written driver.
    pub driver: &'a Path,
    /// The source tree.
    pub tree: &'a Path,
    /// The build system.
    pub system: &'a BuildSystem,
    /// Settings for every hook.
    pub config_settings: &'a ConfigSettings,
    /// The build's scratch directory (requests, answers, the log).
    pub dir: &'a Path,
    /// The longest a hook may run.
    pub timeout: Duration,
    /// `name==version`, for errors.
    pub package: &'a str,
}

impl HookRunner<'_> {
    /// The build log (every hook's output): `build.log` in the scratch directory.
    pub fn log(&self) -> PathBuf {
        self.dir.join("build.log")
    }

    /// Runs `hook` with output directory `out`; a failure carries the log's last lines.
    pub fn run(
        &self,
        hook: Hook,
        out: &Path,
        metadata_directory: Option<&Path>,
    ) -> Result<Answer, BuildError> {
        self.run_request(hook, out, metadata_directory, None)
    }

    /// Runs the `get_requires_*` hook `requires` (output in `out`) and, in the same process when
    /// it asks for nothing, `then` with output directory `then_out`: one interpreter start and
    /// one import of the backend instead of two. The answer holds `then`'s wheel (or
    /// `missing`) only when it ran.
    pub fn run_then(
        &self,
        requires: Hook,
        out: &Path,
        then: Hook,
        then_out: &Path,
    ) -> Result<Answer, BuildError> {
        self.run_request(requires, out, None, Some((then, then_out)))
    }

    fn run_request(
        &self,
        hook: Hook,
        out: &Path,
        metadata_directory: Option<&Path>,
        then: Option<(Hook, &Path)>,
    ) -> Result<Answer, BuildError> {
        fs_err::create_dir_all(out)?;
        // Errors name the hooks the process ran.
        let n = match then {
            Some((t, _)) => chained_name(hook, t),
            None => hook.name(),
        };
        let request_path = self.dir.join(format!("{}.json", hook.name()));
        let answer_path = self.dir.join(format!("{}.answer.json", hook.name()));
        let request = serde_json::json!({
            "hook": hook.name(),
            "backend": self.system.backend,
            "backend_path": self.system.backend_path,
            "source": self.tree,
            "out": out,
            "config_settings": self.config_settings.to_json(),
            "metadata_directory": metadata_directory,
            "then": then.map(|(t, o)| serde_json::json!({"hook": t.name(), "out": o})),
        });
        fs_err::write(&request_path, request.to_string())?;
        let log_path = self.log();
        let log = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut cmd = Command::new(&self.python);
        // -I: no PYTHONPATH, user site or current directory on sys.path: only the build
        // environment (and the backend path the driver adds). -B: no `.pyc` written, since the
        // environment is a shared layout (and the source tree is thrown away).
        cmd.arg("-I")
            .arg("-B")
            .arg(self.driver)
            .arg(&request_path)
            .arg(&answer_path)
            .current_dir(self.tree)
            .stdin(Stdio::null())
            .stdout(log.file().try_clone()?)
            .stderr(log.into_file())
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME");
        if let Some(bin) = &self.bin {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let joined = std::env::join_paths(
                std::iter::once(bin.clone()).chain(std::env::split_paths(&path)),
            )
            .unwrap_or(path);
            cmd.env("PATH", joined);
            if let Some(venv) = bin.parent() {
                cmd.env("VIRTUAL_ENV", venv);
            }
        }
        let start = Instant::now();
        tracing::debug!(
            "{}: running `{n}` with {}",
            self.package,
            self.python.display()
        );
        let spawn_error = |source| BuildError::Spawn {
            python: self.python.clone(),
            source,
        };
        let interrupted = || BuildError::Interrupted {
            package: self.package.to_string(),
            hook: n,
        };
        let mut running = super::stop::spawn(&mut cmd)
            .map_err(spawn_error)?
            .ok_or_else(interrupted)?;
        let child = &mut running.child;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            let timed_out = start.elapsed() > self.timeout;
            if timed_out || super::stop::is_stopping() {
                // The whole group: the backend's own children (compilers, subprocesses) would
                // otherwise go on running, and writing into the scratch directory.
                super::stop::stop(child, super::stop::GRACE);
                if !timed_out {
                    return Err(interrupted());
                }
                return Err(BuildError::Timeout {
                    package: self.package.to_string(),
                    hook: n,
                    seconds: self.timeout.as_secs(),
                    log: log_path,
                });
            }
            std::thread::sleep(super::stop::POLL);
        };
        drop(running);
        tracing::debug!(
            "{}: `{n}` took {:.0} ms",
            self.package,
            start.elapsed().as_secs_f64() * 1e3
        );
        if !status.success() {
            return Err(BuildError::Backend {
                package: self.package.to_string(),
                hook: n,
                status: status.to_string(),
                tail: tail(&log_path),
                log: log_path,
            });
        }
        let bad = |reason: String| BuildError::BadAnswer {
            package: self.package.to_string(),
            hook: n,
            reason,
        };
        let text = fs_err::read_to_string(&answer_path)
            .map_err(|e| bad(format!("no answer file ({e})")))?;
        let answer: Answer =
            serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON ({e})")))?;
        if let Some(error) = answer.missing_backend {
            return Err(BuildError::NoBackend {
                package: self.package.to_string(),
                backend: self.system.backend.clone(),
                python: self.python.clone(),
                error,
            });
        }
        Ok(answer)
    }
}

/// The name errors give two hooks run in one process.
fn chained_name(first: Hook, then: Hook) -> &'static str {
    match (first, then) {
        (Hook::GetRequiresForBuildEditable, Hook::BuildEditable) => {
            "get_requires_for_build_editable` then `build_editable"
        }
        (Hook::GetRequiresForBuildWheel, Hook::BuildWheel) => {
            "get_requires_for_build_wheel` then `build_wheel"
        }
        _ => first.name(),
    }
}

/// The last [`TAIL_LINES`] lines of the log at `path`.
pub fn tail(path: &Path) -> String {
    let text = fs_err::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(TAIL_LINES);
    lines[from..].join("\n")
}

/// Writes the driver into `dir` (once: its name is its hash) and returns its path.
pub fn write_driver(dir: &Path) -> std::io::Result<PathBuf> {
    let hash = blake3::hash(DRIVER.as_bytes()).to_hex();
    let path = dir.join(format!("driver-{}.py", &hash[..16]));
    if !path.is_file() {
        fs_err::create_dir_all(dir)?;
        crate::atomic::write_new(&path, DRIVER.as_bytes(), 0o644)?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_settings_become_strings_or_lists() {
        let mut c = ConfigSettings::default();
        c.add("a=1").unwrap();
        c.add("b=x").unwrap();
        c.add("b=y=z").unwrap();
        assert!(c.add("novalue").is_none());
        assert_eq!(c.to_json().to_string(), r#"{"a":"1","b":["x","y=z"]}"#);
        assert_ne!(c.fingerprint(), ConfigSettings::default().fingerprint());
    }

    /// A tree whose in-tree backend (`backend-path = ["."]`) is `code`, with a runner for it.
    fn with_backend(code: &str, test: impl FnOnce(&HookRunner<'_>, &Path)) {
        let Ok(python) = which::which("python3") else {
            eprintln!("skipped: no python3");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        std::fs::write(tree.join("fake_backend.py"), code).unwrap();
        let driver = write_driver(dir.path()).unwrap();
        let system = BuildSystem {
            requires: vec![],
            backend: "fake_backend".into(),
            backend_path: vec![".".into()],
        };
        let mut settings = ConfigSettings::default();
        settings.add("flavour=mint").unwrap();
        let runner = HookRunner {
            python,
            bin: None,
            driver: &driver,
            tree: &tree,
            system: &system,
            config_settings: &settings,
            dir: dir.path(),
            timeout: Duration::from_secs(2),
            package: "fake==1.0",
        };
        test(&runner, &dir.path().join("out"));
    }

    #[test]
    fn hooks_answer_and_optional_ones_fall_back() {
        let code = "def build_wheel(out, config_settings, metadata_directory=None):\n    \
                    name = 'fake-1.0-' + config_settings['flavour'] + '.whl'\n    \
                    open(out + '/' + name, 'w').close()\n    return name\n";
        with_backend(code, |runner, out| {
            let a = runner
                .run(Hook::GetRequiresForBuildWheel, out, None)
                .unwrap();
            assert!(
                a.requires.is_empty(),
                "a missing optional hook asks for nothing"
            );
            let a = runner
                .run(Hook::PrepareMetadataForBuildWheel, out, None)
                .unwrap();
            assert_eq!(
                a.wheel.unwrap(),
                out.join("fake-1.0-mint.whl"),
                "built instead"
            );
            let a = runner.run(Hook::BuildWheel, out, None).unwrap();
            assert!(a.wheel.unwrap().is_file());
        });
    }

    /// A hook chained after `get_requires_*` runs in the same process only when that asked
    /// for nothing (each driver process counts itself in `starts`).
    #[test]
    fn a_chained_hook_runs_only_after_an_empty_get_requires() {
        for (requires, chained) in [("[]", true), ("['cython']", false)] {
            let code = format!(
                "import os\n\
                 open('starts', 'a').write('x')\n\
                 def get_requires_for_build_wheel(config_settings=None):\n    \
                 return {requires}\n\
                 def prepare_metadata_for_build_wheel(out, config_settings=None):\n    \
                 os.makedirs(out + '/fake-1.0.dist-info')\n    return 'fake-1.0.dist-info'\n"
            );
            with_backend(&code, |runner, out| {
                let next = out.join("next");
                let a = runner
                    .run_then(
                        Hook::GetRequiresForBuildWheel,
                        out,
                        Hook::PrepareMetadataForBuildWheel,
                        &next,
                    )
                    .unwrap();
                assert_eq!(a.requires.is_empty(), chained);
                match a.metadata {
                    Some(metadata) => {
                        assert!(chained);
                        assert_eq!(metadata, next.join("fake-1.0.dist-info"));
                    }
                    None => assert!(!chained),
                }
                let starts = std::fs::read_to_string(runner.tree.join("starts")).unwrap();
                assert_eq!(starts, "x", "one process");
            });
        }
    }

    #[test]
    fn a_backend_without_build_editable_says_so() {
        let code = "def build_wheel(out, config_settings, metadata_directory=None):\n    \
                    raise RuntimeError('not called')\n";
        with_backend(code, |runner, out| {
            let a = runner
                .run(Hook::GetRequiresForBuildEditable, out, None)
                .unwrap();
            assert!(a.requires.is_empty());
            let a = runner.run(Hook::BuildEditable, out, None).unwrap();
            assert_eq!(a.missing.as_deref(), Some("build_editable"));
            assert!(a.wheel.is_none());
        });
    }

    #[test]
    fn a_hook_after_get_requires_runs_in_the_same_process_only_when_nothing_is_required() {
        let code = "import os\n\
                    def get_requires_for_build_editable(config_settings=None):\n    \
                    return [] if os.path.exists('none') else ['editables']\n\
                    def build_editable(out, config_settings=None, metadata_directory=None):\n    \
                    name = 'fake-1.0-py3-none-any.whl'\n    \
                    open(os.path.join(out, name), 'w').close()\n    return name\n";
        with_backend(code, |runner, out| {
            let then_out = out.join("then");
            let a = runner
                .run_then(
                    Hook::GetRequiresForBuildEditable,
                    out,
                    Hook::BuildEditable,
                    &then_out,
                )
                .unwrap();
            assert_eq!(a.requires, ["editables"]);
            assert!(a.wheel.is_none(), "the environment needs more first");
            std::fs::write(runner.tree.join("none"), "").unwrap();
            let a = runner
                .run_then(
                    Hook::GetRequiresForBuildEditable,
                    out,
                    Hook::BuildEditable,
                    &then_out,
                )
                .unwrap();
            assert!(a.requires.is_empty());
            assert_eq!(a.wheel.unwrap(), then_out.join("fake-1.0-py3-none-any.whl"));
        });
    }

    #[test]
    fn a_failing_hook_shows_its_last_lines() {
        let code = "def build_wheel(out, config_settings, metadata_directory=None):\n    \
                    print('compiling...')\n    raise RuntimeError('no compiler here')\n";
        with_backend(code, |runner, out| {
            let e = runner.run(Hook::BuildWheel, out, None).unwrap_err();
            let BuildError::Backend { tail, hook, .. } = &e else {
                panic!("{e}");
            };
            assert_eq!(*hook, "build_wheel");
            assert!(
                tail.contains("compiling...") && tail.contains("no compiler here"),
                "{e}"
            );
            assert!(e.to_string().contains("fake==1.0"), "{e}");
        });
    }

    /// A timed-out hook is stopped with what it started: the backend's child, which would
    /// outlive a killed driver, is gone too.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_hook_running_too_long_is_stopped_with_its_children() {
        let code = "import os, subprocess, time\n\
                    def build_wheel(out, config_settings, metadata_directory=None):\n    \
                    child = subprocess.Popen(['sleep', '300'])\n    \
                    open('pids.part', 'w').write(f'{os.getpid()} {child.pid}')\n    \
                    os.replace('pids.part', 'pids')\n    \
                    time.sleep(300)\n";
        with_backend(code, |runner, out| {
            let start = Instant::now();
            let e = runner.run(Hook::BuildWheel, out, None).unwrap_err();
            assert!(matches!(e, BuildError::Timeout { seconds: 2, .. }), "{e}");
            assert!(start.elapsed() < Duration::from_secs(20));
            let pids = std::fs::read_to_string(runner.tree.join("pids")).unwrap();
            let pids: Vec<&str> = pids.split_whitespace().collect();
            assert_eq!(pids.len(), 2, "{pids:?}");
            let alive = |pid: &str| super::super::stop::alive(pid.parse().unwrap());
            // The grandchild may take a moment to be reaped by whoever adopted it.
            let deadline = Instant::now() + Duration::from_secs(5);
            while pids.iter().any(|p| alive(p)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            for pid in &pids {
                assert!(!alive(pid), "process {pid} still runs after the timeout");
            }
        });
    }

    /// A backend that is not installed is named as such (with the way out); a backend that is
    /// there but imports something missing fails as any backend does, with its traceback.
    #[test]
    fn a_missing_backend_is_named() {
        with_backend("import not_installed_either\n", |runner, out| {
            let system = BuildSystem {
                backend: "no_such_backend.build_meta".into(),
                ..runner.system.clone()
            };
            let missing = HookRunner {
                system: &system,
                python: runner.python.clone(),
                bin: None,
                ..*runner
            };
            let e = missing.run(Hook::BuildWheel, out, None).unwrap_err();
            assert!(matches!(e, BuildError::NoBackend { .. }), "{e}");
            let text = e.to_string();
            assert!(
                text.contains("`no_such_backend.build_meta` is not installed")
                    && text.contains("--no-build-isolation")
                    && text.contains("fake==1.0"),
                "{text}"
            );
            let e = runner.run(Hook::BuildWheel, out, None).unwrap_err();
            assert!(
                matches!(&e, BuildError::Backend { tail, .. } if tail.contains("not_installed_either")),
                "{e}"
            );
        });
    }

    #[test]
    fn a_backend_path_outside_the_tree_is_refused() {
        with_backend("", |runner, out| {
            let system = BuildSystem {
                backend_path: vec!["..".into()],
                ..runner.system.clone()
            };
            let runner = HookRunner {
                system: &system,
                python: runner.python.clone(),
                bin: None,
                ..*runner
            };
            let e = runner.run(Hook::BuildWheel, out, None).unwrap_err();
            assert!(e.to_string().contains("outside the source tree"), "{e}");
        });
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let text: String = (0..50).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, text).unwrap();
        let t = tail(&log);
        assert!(t.starts_with("line 30\n") && t.ends_with("line 49"), "{t}");
    }
}
