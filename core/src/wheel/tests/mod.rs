//! Conversion tests: synthetic wheels built with [`super::testing`], one per refusal, properties
//! over generated wheels, and a real wheel when one can be had.

#[cfg(unix)]
mod against_python;
mod archive;
mod conversion;
mod entries;
mod properties;
mod record_refusals;

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::testing::{RawEntry, RawKind, WheelBuilder, record_for, with_record, zip_entries};
use super::*;
use crate::dxpkg::{DxpkgReader, EntryKind, Scheme};
use crate::hash::sha256_record;

fn demo() -> WheelBuilder {
    WheelBuilder::new("Demo.Pkg", "1.0")
        .file("demo_pkg/__init__.py", b"from .core import main\n")
        .file("demo_pkg/core.py", b"def main():\n    return 0\n")
        .executable("demo_pkg/tool.sh", b"#!/bin/sh\necho hi\n")
        .data_file("purelib", "demo_pkg/extra.py", b"EXTRA = 1\n")
        .data_file("platlib", "demo_pkg/_native.so", b"\x7fELF fake")
        .data_file("scripts", "demo-script", b"#!python\nprint('hi')\n")
        .data_file("scripts", "demo-sh", b"#!/bin/sh\necho sh\n")
        .data_file("headers", "demo.h", b"int demo(void);\n")
        .data_file("data", "share/man/man1/demo.1", b".TH DEMO 1\n")
        .dist_info_file("LICENSE", b"MIT\n")
        .console_script("demo", "demo_pkg.core:main")
        .gui_script("demo-gui", "demo_pkg.core:main [gui]")
        .requires_dist("six>=1.0")
        .requires_dist("attrs; extra == 'x'")
        .requires_python(">=3.8")
        .provides_extra("x")
}

fn entry_problem(result: Result<ConvertedWheel, WheelError>) -> (String, EntryProblem) {
    match result {
        Err(WheelError::Entry { entry, problem, .. }) => (entry, problem),
        other => panic!("expected an entry error, got {other:?}"),
    }
}

fn archive_problem(result: Result<ConvertedWheel, WheelError>) -> ArchiveProblem {
    match result {
        Err(WheelError::Archive { problem, .. }) => problem,
        other => panic!("expected an archive error, got {other:?}"),
    }
}

/// Converts `entries` zipped as the demo wheel's file name, after giving them a right RECORD.
fn convert_with_record(
    w: &WheelBuilder,
    entries: Vec<RawEntry>,
) -> Result<ConvertedWheel, WheelError> {
    let bytes = zip_entries(&with_record(entries, &w.record_path()));
    convert_wheel(&w.filename(), &bytes)
}

fn base_entries(w: &WheelBuilder) -> Vec<RawEntry> {
    let mut e = w.entries();
    e.pop(); // RECORD
    e
}

/// Positions of every local (`PK\3\4`, name at 30) and central (`PK\1\2`, name at 46) header
/// naming `name`.
fn header_positions(bytes: &[u8], name: &[u8]) -> (Vec<usize>, Vec<usize>) {
    let mut local = Vec::new();
    let mut central = Vec::new();
    for at in 0..bytes.len().saturating_sub(46) {
        let len =
            |off: usize| usize::from(u16::from_le_bytes([bytes[at + off], bytes[at + off + 1]]));
        if bytes[at..].starts_with(b"PK\x03\x04")
            && len(26) == name.len()
            && bytes.get(at + 30..at + 30 + name.len()) == Some(name)
        {
            local.push(at);
        }
        if bytes[at..].starts_with(b"PK\x01\x02")
            && len(28) == name.len()
            && bytes.get(at + 46..at + 46 + name.len()) == Some(name)
        {
            central.push(at);
        }
    }
    assert!(
        !local.is_empty() && !central.is_empty(),
        "no headers for {name:?}"
    );
    (local, central)
}

fn put_u16(bytes: &mut [u8], at: usize, v: u16) {
    bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
