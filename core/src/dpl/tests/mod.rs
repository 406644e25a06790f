//! Tests of the DPL format and of the pylock.toml round trip, one file per topic; here the
//! fixtures they share (a sample lock, builders, re-sealing forged bytes).

mod errors;
mod local;
mod properties;
mod pylock_toml;
mod read_back;
mod renderings;

use std::collections::BTreeSet;

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;

use super::format::*;
use super::*;
use crate::hash::ContentHash;
use crate::names::normalize_name;

fn canonical(lock: &Lock) -> Lock {
    let mut c = lock.clone();
    c.canonicalize();
    c
}

fn build(lock: &Lock) -> Vec<u8> {
    DplBuilder::from_lock(lock).to_bytes().unwrap()
}

/// Recomputes every checksum of a (deliberately edited) file, as a forger would.
fn reseal(bytes: &mut [u8]) {
    super::reseal(bytes);
}

fn wheel(name: &str, version: &str) -> LockedWheel {
    LockedWheel {
        filename: format!("{}-{version}-py3-none-any.whl", name.replace('-', "_")),
        url: None,
        path: None,
        sha256: [7; 32],
        size: Some(1234),
    }
}

fn package(name: &str, version: &str, deps: &[&str]) -> LockedPackage {
    LockedPackage {
        name: name.to_string(),
        version: version.to_string(),
        marker: None,
        requires_python: None,
        index_url: None,
        extras: Vec::new(),
        extras_bitmap: 0,
        wheel: wheel(name, version),
        sdist: None,
        local: None,
        store_hash: None,
        dependencies: deps.iter().map(|d| d.to_string()).collect(),
    }
}

fn sample() -> Lock {
    let mut requests = package(
        "Requests",
        "2.31.0",
        &["idna", "Charset_Normalizer", "certifi"],
    );
    requests.extras = vec!["socks".into(), "use_chardet_on_py3".into()];
    requests.extras_bitmap = 0b01;
    requests.marker = Some("python_version >= \"3.8\"".into());
    requests.requires_python = Some(">=3.7".into());
    requests.index_url = Some("http://127.0.0.1:3141/simple/".into());
    requests.wheel.url =
        Some("http://127.0.0.1:3141/files/requests-2.31.0-py3-none-any.whl".into());
    requests.store_hash = Some(ContentHash::of(b"requests"));
    Lock {
        meta: LockMeta {
            environment: "cp311-linux_x86_64".into(),
            python_version: "3.11.9".into(),
            requires_python: Some(">=3.9".into()),
            inputs_hash: ContentHash::of(b"inputs"),
        },
        packages: vec![
            requests,
            package("idna", "3.7", &[]),
            package("charset-normalizer", "3.3.2", &[]),
            package("certifi", "2024.2.2", &[]),
        ],
    }
}
