//! The wheel tags a target accepts, best first, as `packaging.tags.sys_tags()` lists them: a pure
//! function of a [`TagTarget`] (implementation, Python version, ABI, platform), so that a lock can
//! target a Python version or platform without running its interpreter.
//! [`Interpreter`](super::Interpreter) builds its own target and calls these.
//!
//! For CPython on Linux with glibc 2.36 (x86_64) the order is:
//!
//! ```text
//! cp311-cp311-{platforms}          the interpreter's own ABI (cp313t free-threaded, cp311d debug)
//! cp311-abi3-{platforms}           the stable ABI (not for free-threaded builds)
//! cp311-none-{platforms}
//! cp310-abi3-{platforms} … cp32-abi3-{platforms}
//! py311-none-{platforms}, py3-none-{platforms}, py310-none-{platforms} … py30-none-{platforms}
//! cp311-none-any
//! py311-none-any, py3-none-any, py310-none-any … py30-none-any
//!
//! platforms = manylinux_2_36_x86_64 … manylinux_2_17_x86_64, manylinux2014_x86_64,
//!             manylinux_2_16_x86_64 … manylinux_2_12_x86_64, manylinux2010_x86_64, …,
//!             manylinux_2_5_x86_64, manylinux1_x86_64, linux_x86_64
//! ```
//!
//! (`manylinux` goes down to 2.17 on other architectures; musl systems get
//! `musllinux_1_N_arch` … `musllinux_1_0_arch` instead.)
use std::collections::HashMap;

use super::interpreter::Libc;
use crate::wheel::Tag;

/// What the supported wheel tags depend on, and nothing else.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TagTarget {
    /// `sys.implementation.name`: `cpython`, `pypy`, …
    pub implementation: String,
    /// The Python language version, `(major, minor)` (the patch level does not change tags).
    pub python: (u32, u32),
    /// The interpreter's own ABI.
    pub abi: TargetAbi,
    /// Operating system, architecture and C library.
    pub platform: TargetPlatform,
}

/// The ABI binary wheels must be built for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TargetAbi {
    /// CPython's ABI (`cp311`, `cp313t`, `cp37m`, `cp311d`) with its build flags.
    CPython {
        /// A free-threaded build (3.13 and newer; `t`): no stable ABI.
        free_threaded: bool,
        /// A debug build (`d`); it also loads extensions built for the normal ABI.
        debug: bool,
        /// Built with pymalloc (`m`, before 3.8).
        pymalloc: bool,
    },
    /// Another implementation's ABI tag as its `EXT_SUFFIX` gives it (`pypy310_pp73`), if any.
    Other(Option<String>),
}

/// Where wheels must run: the platform part of their tags.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TargetPlatform {
    /// Linux on `arch` as platform tags spell it (`x86_64`, `aarch64`; 32-bit interpreters on
    /// 64-bit kernels are `i686` / `armv8l`), with its C library.
    Linux {
        /// The architecture.
        arch: String,
        /// The C library and its version: which `manylinux`/`musllinux` tags apply.
        libc: Libc,
    },
    /// Any other system, by its one platform tag (`win_amd64`, `macosx_11_0_arm64`; macOS
    /// version ranges are not expanded).
    Other(String),
}

/// The oldest glibc 2.x minor that `manylinux` tags go down to on x86 and on other
/// architectures (manylinux1 was x86-only; manylinux2014 = 2.17 added the others).
const OLDEST_GLIBC_MINOR_X86: u32 = 5;
const OLDEST_GLIBC_MINOR_OTHER: u32 = 17;

/// A tag component as `packaging` spells it: `-`, `.` and spaces become `_`.
pub(crate) fn normalize(s: &str) -> String {
    s.replace(['-', '.', ' '], "_")
}

fn tag(python: &str, abi: &str, platform: &str) -> Tag {
    Tag {
        python: python.to_string(),
        abi: abi.to_string(),
        platform: platform.to_string(),
    }
}

impl TargetPlatform {
    /// The target of `sysconfig.get_platform()` (`linux-x86_64`, `win-amd64`) for an
    /// interpreter of `pointer_bits` with `libc`: 32-bit interpreters on 64-bit Linux kernels are
    /// mapped to `i686` / `armv8l`, as `packaging` does.
    pub fn from_sysconfig(platform: &str, pointer_bits: u32, libc: Libc) -> Self {
        let platform = normalize(platform);
        let Some(arch) = platform.strip_prefix("linux_") else {
            return Self::Other(platform);
        };
        let arch = match arch {
            "x86_64" if pointer_bits == 32 => "i686",
            "aarch64" if pointer_bits == 32 => "armv8l",
            other => other,
        };
        Self::Linux {
            arch: arch.to_string(),
            libc,
        }
    }

    /// The platform tags, best first (see the module docs for Linux).
    pub fn tags(&self) -> Vec<String> {
        let (arch, libc) = match self {
            Self::Linux { arch, libc } => (arch.as_str(), *libc),
            Self::Other(platform) => return vec![platform.clone()],
        };
        let archs: &[&str] = if arch == "armv8l" {
            &["armv8l", "armv7l"]
        } else {
            &[arch]
        };
        let mut out = Vec::new();
        match libc {
            Libc::Glibc { major: 2, minor } => {
                for arch in archs {
                    let oldest = if matches!(*arch, "x86_64" | "i686") {
                        OLDEST_GLIBC_MINOR_X86
                    } else {
                        OLDEST_GLIBC_MINOR_OTHER
                    };
                    for m in (oldest..=minor).rev() {
                        out.push(format!("manylinux_2_{m}_{arch}"));
                        let legacy = match m {
                            17 => Some("manylinux2014"),
                            12 => Some("manylinux2010"),
                            5 => Some("manylinux1"),
                            _ => None,
                        };
                        if let Some(legacy) = legacy {
                            out.push(format!("{legacy}_{arch}"));
                        }
                    }
                }
            }
            Libc::Musl { major, minor } => {
                for arch in archs {
                    for m in (0..=minor).rev() {
                        out.push(format!("musllinux_{major}_{m}_{arch}"));
                    }
                }
            }
            Libc::Glibc { .. } | Libc::None => {}
        }
        for arch in archs {
            out.push(format!("linux_{arch}"));
        }
        out
    }
}

impl TargetAbi {
    /// The ABI of an implementation other than CPython, from its `EXT_SUFFIX`
    /// (`packaging`'s `_generic_abi`: the second dot-part, shortened per implementation).
    /// `None` when the suffix has too few parts: `packaging` then assumes CPython's ABI.
    pub fn from_ext_suffix(suffix: Option<&str>) -> Option<Self> {
        let Some(suffix) = suffix else {
            return Some(Self::Other(None));
        };
        let parts: Vec<&str> = suffix.split('.').collect();
        let soabi = parts.get(1).filter(|_| parts.len() >= 3)?;
        let dash: Vec<&str> = soabi.split('-').collect();
        let abi = if soabi.starts_with("cpython") {
            format!("cp{}", dash.get(1).unwrap_or(&""))
        } else if soabi.starts_with("cp") {
            dash.first().unwrap_or(&"").to_string()
        } else if soabi.starts_with("pypy") {
            dash.get(..2)
                .map_or_else(|| soabi.to_string(), |p| p.join("-"))
        } else if soabi.starts_with("graalpy") {
            dash.get(..3)
                .map_or_else(|| soabi.to_string(), |p| p.join("-"))
        } else if !soabi.is_empty() {
            soabi.to_string()
        } else {
            return Some(Self::Other(None));
        };
        Some(Self::Other(Some(normalize(&abi))))
    }
}

impl TagTarget {
    /// `cp`, `pp`, … as `packaging.tags.interpreter_name()` abbreviates implementations.
    fn short_name(&self) -> &str {
        match self.implementation.as_str() {
            "cpython" => "cp",
            "pypy" => "pp",
            "ironpython" => "ip",
            "jython" => "jy",
            "python" => "py",
            other => other,
        }
    }

    fn is_cpython(&self) -> bool {
        self.implementation == "cpython"
    }

    /// The target's own ABI tags, best first: `cp311`, `cp313t`, `cp37m`, `cp311d` then `cp311`
    /// for debug builds; for other implementations their `EXT_SUFFIX`'s ABI.
    pub fn abi_tags(&self) -> Vec<String> {
        let (major, minor) = self.python;
        match &self.abi {
            TargetAbi::CPython {
                free_threaded,
                debug,
                pymalloc,
            } => {
                let version = format!("{major}{minor}");
                let debug_flag = if *debug { "d" } else { "" };
                let threading = if (major, minor) >= (3, 13) && *free_threaded {
                    "t"
                } else {
                    ""
                };
                if (major, minor) < (3, 8) {
                    let pymalloc = if *pymalloc { "m" } else { "" };
                    vec![format!("cp{version}{threading}{debug_flag}{pymalloc}")]
                } else if *debug {
                    // Debug builds also load extension modules built for the normal ABI.
                    vec![
                        format!("cp{version}{threading}{debug_flag}"),
                        format!("cp{version}{threading}"),
                    ]
                } else {
                    vec![format!("cp{version}{threading}")]
                }
            }
            TargetAbi::Other(abi) => abi.iter().cloned().collect(),
        }
    }

    /// Every tag a wheel may carry to be installable on this target, best first, as
    /// `packaging.tags.sys_tags()` orders them.
    pub fn supported_tags(&self) -> Vec<Tag> {
        let platforms = self.platform.tags();
        let (major, minor) = self.python;
        let interp = format!("{}{major}{minor}", self.short_name());
        let mut abis = self.abi_tags();
        abis.retain(|a| a != "abi3" && a != "none");
        let mut out = Vec::new();
        for abi in &abis {
            out.extend(platforms.iter().map(|p| tag(&interp, abi, p)));
        }
        if self.is_cpython() {
            let threaded = abis.first().is_some_and(|a| a.ends_with('t'));
            let use_abi3 = (major, minor) >= (3, 2) && !threaded;
            if use_abi3 {
                out.extend(platforms.iter().map(|p| tag(&interp, "abi3", p)));
            }
            out.extend(platforms.iter().map(|p| tag(&interp, "none", p)));
            if use_abi3 {
                for older in (2..minor).rev() {
                    let older = format!("cp{major}{older}");
                    out.extend(platforms.iter().map(|p| tag(&older, "abi3", p)));
                }
            }
        } else if !abis.iter().any(|a| a == "none") {
            out.extend(platforms.iter().map(|p| tag(&interp, "none", p)));
        }
        // compatible_tags: pyXY, py3, py3(Y-1) … py30 on each platform, then `any`.
        let mut py_versions = vec![format!("py{major}{minor}"), format!("py{major}")];
        py_versions.extend((0..minor).rev().map(|m| format!("py{major}{m}")));
        for py in &py_versions {
            out.extend(platforms.iter().map(|p| tag(py, "none", p)));
        }
        match self.short_name() {
            "cp" => out.push(tag(&interp, "none", "any")),
            "pp" => out.push(tag(&format!("pp{major}"), "none", "any")),
            _ => {}
        }
        out.extend(py_versions.iter().map(|py| tag(py, "none", "any")));
        out
    }

    /// A short key for layouts built for this target, e.g. `cp311-linux_x86_64`,
    /// `cp313t-linux_x86_64`: the ABI and the generic platform.
    pub fn key(&self) -> String {
        let (major, minor) = self.python;
        let abi = self
            .abi_tags()
            .into_iter()
            .next()
            .unwrap_or_else(|| format!("{}{major}{minor}", self.short_name()));
        let platform = self
            .platform
            .tags()
            .pop()
            .unwrap_or_else(|| "any".to_string());
        format!("{abi}-{platform}")
    }
}

/// Supported tags and their rank (lower is better), for O(1) lookups.
#[derive(Clone, Debug)]
pub struct TagPriorities {
    ranks: HashMap<Tag, usize>,
}

impl TagPriorities {
    /// The ranks of `target`'s supported tags.
    pub fn new(target: &TagTarget) -> Self {
        let mut ranks = HashMap::new();
        for (rank, tag) in target.supported_tags().into_iter().enumerate() {
            ranks.entry(tag).or_insert(rank);
        }
        Self { ranks }
    }

    /// The rank of the best of a wheel's `tags`, or `None` when the wheel does not run on the
    /// target.
    pub fn priority(&self, tags: &[Tag]) -> Option<usize> {
        tags.iter().filter_map(|t| self.ranks.get(t).copied()).min()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::python::Interpreter;
    use crate::python::interpreter::tests::pyenv_python;
    use crate::python::interpreter::{InterpreterInfo, MarkerValues, PythonVersion, SchemePaths};

    pub(in crate::python) fn fake(
        minor: u32,
        libc: Libc,
        f: impl FnOnce(&mut InterpreterInfo),
    ) -> Interpreter {
        let mut info = InterpreterInfo {
            version: PythonVersion {
                major: 3,
                minor,
                patch: 0,
            },
            implementation: "cpython".into(),
            executable: "/x/bin/python".into(),
            base_executable: "/x/bin/python".into(),
            prefix: "/x".into(),
            base_prefix: "/x".into(),
            sysconfig_platform: "linux-x86_64".into(),
            scheme: SchemePaths {
                purelib: "lib/python3.x/site-packages".into(),
                platlib: "lib/python3.x/site-packages".into(),
                scripts: "bin".into(),
                include: "include".into(),
                data: ".".into(),
            },
            cache_tag: Some(format!("cpython-3{minor}")),
            libc,
            markers: MarkerValues {
                implementation_name: "cpython".into(),
                implementation_version: format!("3.{minor}.0"),
                os_name: "posix".into(),
                platform_machine: "x86_64".into(),
                platform_python_implementation: "CPython".into(),
                platform_release: "6".into(),
                platform_system: "Linux".into(),
                platform_version: "#1".into(),
                python_full_version: format!("3.{minor}.0"),
                python_version: format!("3.{minor}"),
                sys_platform: "linux".into(),
            },
            pointer_bits: 64,
            abiflags: String::new(),
            gil_disabled: false,
            py_debug: false,
            pymalloc: true,
            ext_suffix: None,
            py_version_nodot: Some(format!("3{minor}")),
            pip_index_url: None,
        };
        f(&mut info);
        Interpreter::from_info("/x/bin/python".into(), info).unwrap()
    }

    fn strings(tags: &[Tag]) -> Vec<String> {
        tags.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn order_for_cpython_311_on_glibc() {
        let i = fake(
            11,
            Libc::Glibc {
                major: 2,
                minor: 36,
            },
            |_| {},
        );
        let platforms = i.platform_tags();
        // 2_36..2_5 plus three legacy aliases plus linux.
        assert_eq!(platforms.len(), 32 + 3 + 1);
        assert_eq!(platforms[0], "manylinux_2_36_x86_64");
        let p = |s: &str| platforms.iter().position(|x| x == s).unwrap();
        assert_eq!(p("manylinux2014_x86_64"), p("manylinux_2_17_x86_64") + 1);
        assert_eq!(p("manylinux2010_x86_64"), p("manylinux_2_12_x86_64") + 1);
        assert_eq!(p("manylinux1_x86_64"), p("manylinux_2_5_x86_64") + 1);
        assert_eq!(platforms.last().unwrap(), "linux_x86_64");

        let tags = strings(&i.supported_tags());
        let n = platforms.len();
        assert_eq!(tags[0], "cp311-cp311-manylinux_2_36_x86_64");
        assert_eq!(tags[n], "cp311-abi3-manylinux_2_36_x86_64");
        assert_eq!(tags[2 * n], "cp311-none-manylinux_2_36_x86_64");
        assert_eq!(tags[3 * n], "cp310-abi3-manylinux_2_36_x86_64");
        // cp310..cp32 abi3, then py311, py3, py310..py30 on platforms, then the `any` tags.
        let abi3_end = 3 * n + 9 * n;
        assert_eq!(tags[abi3_end - 1], "cp32-abi3-linux_x86_64");
        assert_eq!(tags[abi3_end], "py311-none-manylinux_2_36_x86_64");
        assert_eq!(tags[abi3_end + n], "py3-none-manylinux_2_36_x86_64");
        let any_start = abi3_end + 13 * n;
        assert_eq!(
            &tags[any_start..any_start + 3],
            ["cp311-none-any", "py311-none-any", "py3-none-any"]
        );
        assert_eq!(tags.last().unwrap(), "py30-none-any");
        assert_eq!(tags.len(), any_start + 1 + 13);
        assert_eq!(i.tag(), "cp311-linux_x86_64");
    }

    #[test]
    fn other_builds_and_platforms() {
        let musl = fake(12, Libc::Musl { major: 1, minor: 2 }, |i| {
            i.sysconfig_platform = "linux-aarch64".into();
        });
        assert_eq!(
            musl.platform_tags(),
            [
                "musllinux_1_2_aarch64",
                "musllinux_1_1_aarch64",
                "musllinux_1_0_aarch64",
                "linux_aarch64"
            ]
        );
        let arm = fake(
            12,
            Libc::Glibc {
                major: 2,
                minor: 18,
            },
            |i| {
                i.sysconfig_platform = "linux-aarch64".into();
            },
        );
        assert_eq!(
            arm.platform_tags(),
            [
                "manylinux_2_18_aarch64",
                "manylinux_2_17_aarch64",
                "manylinux2014_aarch64",
                "linux_aarch64"
            ]
        );
        let i686 = fake(12, Libc::None, |i| i.pointer_bits = 32);
        assert_eq!(i686.platform_tags(), ["linux_i686"]);

        let ft = fake(13, Libc::None, |i| i.gil_disabled = true);
        let tags = strings(&ft.supported_tags());
        assert_eq!(tags[0], "cp313-cp313t-linux_x86_64");
        assert!(
            !tags.iter().any(|t| t.contains("abi3")),
            "no abi3 when free-threaded"
        );
        assert_eq!(tags[1], "cp313-none-linux_x86_64");
        assert_eq!(ft.tag(), "cp313t-linux_x86_64");

        let old = fake(7, Libc::None, |_| {});
        assert_eq!(
            old.supported_tags()[0].to_string(),
            "cp37-cp37m-linux_x86_64"
        );
        let dbg = fake(12, Libc::None, |i| i.py_debug = true);
        assert_eq!(
            strings(&dbg.supported_tags()[..2]),
            ["cp312-cp312d-linux_x86_64", "cp312-cp312-linux_x86_64"]
        );

        let pypy = fake(10, Libc::None, |i| {
            i.implementation = "pypy".into();
            i.ext_suffix = Some(".pypy310-pp73-x86_64-linux-gnu.so".into());
        });
        let tags = strings(&pypy.supported_tags());
        assert_eq!(tags[0], "pp310-pypy310_pp73-linux_x86_64");
        assert_eq!(tags[1], "pp310-none-linux_x86_64");
        assert!(tags.contains(&"pp3-none-any".to_string()));
    }

    #[test]
    fn marker_env_accepts_dev_builds_and_refuses_garbage() {
        let dev = fake(13, Libc::None, |i| {
            i.markers.python_full_version = "3.13.0+".into();
        });
        assert_eq!(dev.marker_env().python_full_version().to_string(), "3.13.0");
        let mut info = dev.info().clone();
        info.markers.python_version = "three".into();
        let err = Interpreter::from_info("/x".into(), info).unwrap_err();
        assert!(err.to_string().contains("invalid marker version"), "{err}");
    }

    #[test]
    fn priority_is_the_best_rank_and_none_when_incompatible() {
        let i = fake(
            11,
            Libc::Glibc {
                major: 2,
                minor: 28,
            },
            |_| {},
        );
        let t = |s: &str| {
            let mut p = s.split('-');
            tag(p.next().unwrap(), p.next().unwrap(), p.next().unwrap())
        };
        let native = t("cp311-cp311-manylinux_2_17_x86_64");
        let pure = t("py3-none-any");
        let p_native = i.tag_priority(std::slice::from_ref(&native)).unwrap();
        let p_pure = i.tag_priority(std::slice::from_ref(&pure)).unwrap();
        assert!(p_native < p_pure);
        assert_eq!(
            i.tag_priority(&[pure.clone(), native.clone()]),
            Some(p_native)
        );
        assert_eq!(
            i.tag_priority(&[t("cp311-cp311-manylinux_2_34_x86_64")]),
            None
        );
        assert_eq!(
            i.tag_priority(&[t("cp312-cp312-manylinux_2_17_x86_64")]),
            None
        );
        assert_eq!(i.tag_priority(&[t("py3-none-win_amd64")]), None);
        assert_eq!(i.tag_priority(&[]), None);
        // Every supported tag's priority is its first position in the list.
        let all = i.supported_tags();
        for (rank, tag) in all.iter().enumerate() {
            assert_eq!(i.tag_priority(std::slice::from_ref(tag)), Some(rank));
        }
    }

    /// The newest `packaging` vendored by pip in any pyenv Python, importable as a top-level
    /// package by adding its `_vendor` directory to `sys.path` (packaging 24 runs on 3.8+).
    fn vendored_packaging() -> Option<PathBuf> {
        let root = std::env::var_os("PYENV_ROOT")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))?;
        let mut best: Option<(Vec<u32>, PathBuf)> = None;
        for version in fs_err::read_dir(root.join("versions")).ok()?.flatten() {
            let Ok(libs) = fs_err::read_dir(version.path().join("lib")) else {
                continue;
            };
            for lib in libs.flatten() {
                let vendor = lib.path().join("site-packages/pip/_vendor");
                let Ok(init) = fs_err::read_to_string(vendor.join("packaging/__init__.py")) else {
                    continue;
                };
                let Some(v) = init
                    .lines()
                    .find_map(|l| l.strip_prefix("__version__ = "))
                    .map(|v| v.trim_matches(['"', '\'']))
                else {
                    continue;
                };
                let key: Vec<u32> = v.split('.').map(|p| p.parse().unwrap_or(0)).collect();
                if best.as_ref().is_none_or(|(k, _)| key > *k) {
                    best = Some((key, vendor));
                }
            }
        }
        best.map(|(_, p)| p)
    }

    fn reference_tags(python: &Path, vendor: &Path) -> Vec<String> {
        let script = format!(
            "import sys; sys.path.insert(0, {:?}); import packaging.tags as t; \
             print('\\n'.join(str(x) for x in t.sys_tags()))",
            vendor.display().to_string()
        );
        let out = Command::new(python)
            .args(["-I", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn matches_packaging_sys_tags() {
        let Some(vendor) = vendored_packaging() else {
            eprintln!("no pip-vendored packaging found, skipping");
            return;
        };
        let cache = tempfile::tempdir().unwrap();
        let mut checked = 0;
        for minor in [11, 12, 13, 8] {
            let Some(python) = pyenv_python(minor) else {
                continue;
            };
            let interp = Interpreter::find(python.to_str(), cache.path()).unwrap();
            let ours = strings(&interp.supported_tags());
            let theirs = reference_tags(&python, &vendor);
            assert_eq!(ours.len(), theirs.len(), "3.{minor}: tag count");
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert_eq!(a, b, "3.{minor}: tag #{i}");
            }
            checked += 1;
        }
        eprintln!("compared tag lists of {checked} interpreters");
    }
}
