//! The wheel tags an interpreter accepts, best first, as `packaging.tags.sys_tags()` lists them.
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

use super::interpreter::{Interpreter, Libc};
use crate::wheel::Tag;

/// Supported tags and their rank, built once per interpreter.
#[derive(Clone, Debug)]
pub(super) struct TagPriorities {
    ranks: HashMap<Tag, usize>,
}

/// The oldest glibc 2.x minor that `manylinux` tags go down to on x86 and on other
/// architectures (manylinux1 was x86-only; manylinux2014 = 2.17 added the others).
const OLDEST_GLIBC_MINOR_X86: u32 = 5;
const OLDEST_GLIBC_MINOR_OTHER: u32 = 17;

fn normalize(s: &str) -> String {
    s.replace(['-', '.', ' '], "_")
}

fn tag(python: &str, abi: &str, platform: &str) -> Tag {
    Tag {
        python: python.to_string(),
        abi: abi.to_string(),
        platform: platform.to_string(),
    }
}

impl Interpreter {
    /// `cp`, `pp`, … as `packaging.tags.interpreter_name()` abbreviates implementations.
    fn short_name(&self) -> String {
        match self.info().implementation.as_str() {
            "cpython" => "cp".to_string(),
            "pypy" => "pp".to_string(),
            "ironpython" => "ip".to_string(),
            "jython" => "jy".to_string(),
            "python" => "py".to_string(),
            other => other.to_string(),
        }
    }

    /// `311` for Python 3.11 (`py_version_nodot`, as `packaging` reads it).
    fn version_nodot(&self) -> String {
        match &self.info().py_version_nodot {
            Some(v) if !v.is_empty() => v.clone(),
            _ => format!("{}{}", self.info().version.major, self.info().version.minor),
        }
    }

    fn is_cpython(&self) -> bool {
        self.info().implementation == "cpython"
    }

    /// The interpreter's own ABI tags, best first: `cp311`, `cp313t`, `cp37m`, `cp311d` then
    /// `cp311` for debug builds; for other implementations the `EXT_SUFFIX`'s ABI.
    fn abi_tags(&self) -> Vec<String> {
        let info = self.info();
        let version = format!("{}{}", info.version.major, info.version.minor);
        let cpython_abis = || {
            let (major, minor) = (info.version.major, info.version.minor);
            let debug = if info.py_debug { "d" } else { "" };
            let threading = if (major, minor) >= (3, 13) && info.gil_disabled {
                "t"
            } else {
                ""
            };
            let mut abis = Vec::new();
            if (major, minor) < (3, 8) {
                let pymalloc = if info.pymalloc { "m" } else { "" };
                abis.push(format!("cp{version}{threading}{debug}{pymalloc}"));
            } else {
                abis.push(format!("cp{version}{threading}{debug}"));
                if info.py_debug {
                    // Debug builds also load extension modules built for the normal ABI.
                    abis.push(format!("cp{version}{threading}"));
                }
            }
            abis
        };
        if self.is_cpython() {
            return cpython_abis();
        }
        // packaging's `_generic_abi`: the second dot-part of EXT_SUFFIX.
        let Some(suffix) = info.ext_suffix.as_deref() else {
            return Vec::new();
        };
        let parts: Vec<&str> = suffix.split('.').collect();
        let Some(soabi) = parts.get(1).filter(|_| parts.len() >= 3) else {
            return cpython_abis();
        };
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
            return Vec::new();
        };
        vec![normalize(&abi)]
    }

    /// The architecture in platform tags: `sysconfig.get_platform()`'s, with 32-bit interpreters
    /// on 64-bit kernels mapped to `i686` / `armv8l` as `packaging` does.
    fn linux_arch(&self) -> Option<String> {
        let platform = normalize(&self.info().sysconfig_platform);
        let mut arch = platform.strip_prefix("linux_")?.to_string();
        if self.info().pointer_bits == 32 {
            if arch == "x86_64" {
                arch = "i686".to_string();
            } else if arch == "aarch64" {
                arch = "armv8l".to_string();
            }
        }
        Some(arch)
    }

    /// The platform tags, best first (see the module docs for Linux). Other systems get the one
    /// `sysconfig` platform (`win_amd64`, …); macOS version ranges are not expanded.
    pub fn platform_tags(&self) -> Vec<String> {
        let Some(arch) = self.linux_arch() else {
            return vec![normalize(&self.info().sysconfig_platform)];
        };
        let archs: Vec<&str> = if arch == "armv8l" {
            vec!["armv8l", "armv7l"]
        } else {
            vec![arch.as_str()]
        };
        let mut out = Vec::new();
        match self.info().libc {
            Libc::Glibc { major: 2, minor } => {
                for arch in &archs {
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
                for arch in &archs {
                    for m in (0..=minor).rev() {
                        out.push(format!("musllinux_{major}_{m}_{arch}"));
                    }
                }
            }
            Libc::Glibc { .. } | Libc::None => {}
        }
        for arch in &archs {
            out.push(format!("linux_{arch}"));
        }
        out
    }

    /// Every tag a wheel may carry to be installable here, best first, as
    /// `packaging.tags.sys_tags()` orders them.
    pub fn supported_tags(&self) -> Vec<Tag> {
        let platforms = self.platform_tags();
        let info = self.info();
        let (major, minor) = (info.version.major, info.version.minor);
        let interp = format!("{}{}", self.short_name(), self.version_nodot());
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
        match self.short_name().as_str() {
            "cp" => out.push(tag(&interp, "none", "any")),
            "pp" => out.push(tag(&format!("pp{major}"), "none", "any")),
            _ => {}
        }
        out.extend(py_versions.iter().map(|py| tag(py, "none", "any")));
        out
    }

    fn priorities(&self) -> &TagPriorities {
        self.tags.get_or_init(|| {
            let mut ranks = HashMap::new();
            for (rank, tag) in self.supported_tags().into_iter().enumerate() {
                ranks.entry(tag).or_insert(rank);
            }
            TagPriorities { ranks }
        })
    }

    /// The rank of the best of a wheel's `tags` (lower is better), or `None` when the wheel does
    /// not run here. O(1) per tag: the table is built on first use and kept.
    pub fn tag_priority(&self, tags: &[Tag]) -> Option<usize> {
        let ranks = &self.priorities().ranks;
        tags.iter().filter_map(|t| ranks.get(t).copied()).min()
    }

    /// A short key for layouts built for this interpreter, e.g. `cp311-linux_x86_64`,
    /// `cp313t-linux_x86_64`: the interpreter's ABI and its generic platform.
    pub fn tag(&self) -> String {
        let abi = self
            .abi_tags()
            .into_iter()
            .next()
            .unwrap_or_else(|| format!("{}{}", self.short_name(), self.version_nodot()));
        let platform = self
            .platform_tags()
            .pop()
            .unwrap_or_else(|| "any".to_string());
        format!("{abi}-{platform}")
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::python::interpreter::tests::pyenv_python;
    use crate::python::interpreter::{InterpreterInfo, MarkerValues, PythonVersion, SchemePaths};

    fn fake(minor: u32, libc: Libc, f: impl FnOnce(&mut InterpreterInfo)) -> Interpreter {
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
