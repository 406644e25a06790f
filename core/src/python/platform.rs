//! Platforms named on the command line (`--platform windows`, `aarch64-macos`): the PEP 508
//! marker values of CPython there, so that a lock made on one machine can be read for another
//! (`dx-py export --platform win32 --python-version 3.9`) without an interpreter of it.
use std::fmt;
use std::str::FromStr;

use pep440_rs::VersionParseError;
use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};

use super::TargetVersion;

/// An operating system and architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    /// The operating system.
    pub os: Os,
    /// The architecture.
    pub arch: Arch,
}

/// An operating system, as `sys.platform` tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Os {
    /// `linux`.
    Linux,
    /// `darwin`.
    Macos,
    /// `win32`.
    Windows,
}

/// An architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86-64 / AMD64.
    X86_64,
    /// 64-bit ARM.
    Aarch64,
}

/// A platform name that is none of those this module knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Unknown platform `{0}`: expected `linux`, `macos` (`darwin`) or `windows` (`win32`), \
     optionally with an architecture, e.g. `aarch64-macos` or `windows-x86_64`"
)]
pub struct PlatformError(pub String);

impl FromStr for Platform {
    type Err = PlatformError;

    /// `OS`, `ARCH-OS` or `OS-ARCH`; the architecture defaults to x86-64 (arm64 on macOS).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PlatformError(s.to_string());
        let lower = s.to_ascii_lowercase();
        let (mut os, mut arch) = (None, None);
        for part in lower.split(['-', '_']).filter(|p| !p.is_empty()) {
            match part {
                "linux" | "manylinux" => os = Some(Os::Linux),
                "macos" | "darwin" | "macosx" | "apple" => os = Some(Os::Macos),
                "windows" | "win32" | "win" => os = Some(Os::Windows),
                "x86" | "64" | "x86_64" | "amd64" | "x64" => arch = Some(Arch::X86_64),
                "aarch64" | "arm64" => arch = Some(Arch::Aarch64),
                _ => return Err(bad()),
            }
        }
        let os = os.ok_or_else(bad)?;
        let arch = arch.unwrap_or(match os {
            Os::Macos => Arch::Aarch64,
            Os::Linux | Os::Windows => Arch::X86_64,
        });
        Ok(Self { os, arch })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = match self.os {
            Os::Linux => "linux",
            Os::Macos => "macos",
            Os::Windows => "windows",
        };
        let arch = match self.arch {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        };
        write!(f, "{arch}-{os}")
    }
}

impl Platform {
    /// The platform this program runs on, when it is one of those named here.
    pub fn this_machine() -> Option<Self> {
        let os = match std::env::consts::OS {
            "linux" => Os::Linux,
            "macos" => Os::Macos,
            "windows" => Os::Windows,
            _ => return None,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => Arch::X86_64,
            "aarch64" => Arch::Aarch64,
            _ => return None,
        };
        Some(Self { os, arch })
    }

    /// The marker values of CPython `version` on this platform (`python_full_version` is
    /// `X.Y.0` when no patch level is given; release strings are empty: nothing can know them).
    pub fn markers(&self, version: TargetVersion) -> Result<MarkerEnvironment, VersionParseError> {
        let (os_name, sys_platform, system) = match self.os {
            Os::Linux => ("posix", "linux", "Linux"),
            Os::Macos => ("posix", "darwin", "Darwin"),
            Os::Windows => ("nt", "win32", "Windows"),
        };
        let machine = match (self.os, self.arch) {
            (Os::Windows, Arch::X86_64) => "AMD64",
            (Os::Windows, Arch::Aarch64) => "ARM64",
            (Os::Macos, Arch::Aarch64) => "arm64",
            (_, Arch::X86_64) => "x86_64",
            (Os::Linux, Arch::Aarch64) => "aarch64",
        };
        let short = format!("{}.{}", version.major, version.minor);
        let full = format!("{short}.{}", version.patch.unwrap_or(0));
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &full,
            os_name,
            platform_machine: machine,
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: system,
            platform_version: "",
            python_full_version: &full,
            python_version: &short,
            sys_platform,
        })
    }
}

#[cfg(test)]
mod tests {
    use pep508_rs::MarkerTree;

    use super::*;

    fn holds(marker: &str, platform: &str, version: &str) -> bool {
        let env = Platform::from_str(platform)
            .unwrap()
            .markers(version.parse().unwrap())
            .unwrap();
        MarkerTree::from_str(marker).unwrap().evaluate(&env, &[])
    }

    #[test]
    fn names_and_defaults() {
        for (name, want) in [
            ("linux", "x86_64-linux"),
            ("win32", "x86_64-windows"),
            ("Windows-ARM64", "aarch64-windows"),
            ("darwin", "aarch64-macos"),
            ("x86_64-macos", "x86_64-macos"),
            ("aarch64-unknown-linux", ""),
            ("solaris", ""),
            ("", ""),
        ] {
            match Platform::from_str(name) {
                Ok(p) => assert_eq!(p.to_string(), want, "{name}"),
                Err(e) => assert!(want.is_empty(), "{name}: {e}"),
            }
        }
    }

    #[test]
    fn markers_as_cpython_reports_them() {
        assert!(holds(
            "sys_platform == 'win32' and os_name == 'nt'",
            "windows",
            "3.12"
        ));
        assert!(holds("platform_machine == 'AMD64'", "windows", "3.12"));
        assert!(holds(
            "sys_platform == 'darwin' and platform_machine == 'arm64'",
            "macos",
            "3.9"
        ));
        assert!(holds("platform_system == 'Linux'", "linux", "3.11"));
        assert!(holds("python_version < '3.10'", "linux", "3.9"));
        assert!(holds("python_full_version == '3.9.18'", "linux", "3.9.18"));
        assert!(!holds("implementation_name == 'pypy'", "linux", "3.9"));
    }
}
