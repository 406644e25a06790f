//! One target environment for tests: CPython 3.11.7 on x86_64 Linux (manylinux).
use crate::wheel::Tag;

/// The marker environment of CPython 3.11.7 on x86_64 Linux.
pub fn linux_cp311_markers() -> pep508_rs::MarkerEnvironment {
    pep508_rs::MarkerEnvironmentBuilder {
        implementation_name: "cpython",
        implementation_version: "3.11.7",
        os_name: "posix",
        platform_machine: "x86_64",
        platform_python_implementation: "CPython",
        platform_release: "6.1.0",
        platform_system: "Linux",
        platform_version: "#1 SMP",
        python_full_version: "3.11.7",
        python_version: "3.11",
        sys_platform: "linux",
    }
    .try_into()
    .expect("a valid marker environment")
}

/// The tag priority of cp311 on manylinux x86_64 (a short list, best first), as
/// `Interpreter::tag_priority` gives one.
pub fn cp311_tag_priority(tags: &[Tag]) -> Option<usize> {
    const SUPPORTED: [&str; 5] = [
        "cp311-cp311-manylinux_2_17_x86_64",
        "cp311-abi3-manylinux_2_17_x86_64",
        "cp311-none-any",
        "py3-none-manylinux_2_17_x86_64",
        "py3-none-any",
    ];
    tags.iter()
        .filter_map(|t| SUPPORTED.iter().position(|s| *s == t.to_string()))
        .min()
}
