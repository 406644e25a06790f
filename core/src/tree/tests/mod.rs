//! Tree tests, one file per topic; here the synthetic packages and readers they share.

mod building;
mod planned_packs;
mod properties;
mod rejections;

use std::collections::{BTreeMap, BTreeSet};

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use super::format::{H_FLAGS, H_VERSION};
use super::*;
use crate::dxpkg::{DxpkgWriter, EntryKind, Scheme};
use crate::hash::ContentHash;
use crate::store::PackageStore;

/// One entry of a synthetic package.
struct E<'a>(Scheme, &'a str, EntryKind, u32, &'a [u8]);

/// A site-packages file with mode 0o644.
fn sp<'a>(path: &'a str, data: &'a [u8]) -> E<'a> {
    E(Scheme::SitePackages, path, EntryKind::File, 0o644, data)
}

/// Writes a package and stores it; returns its hash.
fn add_pack(store: &PackageStore, name: &str, entries: &[E<'_>]) -> ContentHash {
    let mut w = DxpkgWriter::new(name, "1.0", &format!("{name}-1.0.dist-info"));
    for E(scheme, path, kind, mode, data) in entries {
        w.add(*scheme, path, *kind, *mode, data.to_vec());
    }
    store.store(&w.finish().unwrap()).unwrap()
}

const SP: &str = "lib/python3.11/site-packages";

fn placement() -> PackPlacement {
    PackPlacement::venv(&crate::python::VenvShape::posix(3, 11), "demo")
}

/// The bytes of a leaf, read the way the file system does.
fn leaf_bytes<'a>(tree: &'a Tree<Vec<u8>>, store: &PackageStore, node: &Node<'a>) -> Vec<u8> {
    match node.source {
        DataSource::None => Vec::new(),
        DataSource::Inline { .. } => tree.inline_data(node).unwrap().unwrap().to_vec(),
        DataSource::Pack { pack, offset } => {
            let p = store.get(&tree.pack(pack).unwrap().hash).unwrap();
            p.reader().bytes()[offset as usize..(offset + node.size) as usize].to_vec()
        }
    }
}

fn file(tree: &Tree<Vec<u8>>, store: &PackageStore, path: &str) -> Vec<u8> {
    let node = tree
        .resolve(path)
        .unwrap()
        .unwrap_or_else(|| panic!("{path} missing"));
    assert_ne!(node.kind, NodeKind::Dir, "{path}");
    leaf_bytes(tree, store, &node)
}

fn names(tree: &Tree<Vec<u8>>, path: &str) -> Vec<String> {
    let dir = tree.resolve(path).unwrap().unwrap();
    (0..)
        .map_while(|i| tree.child(&dir, i).unwrap())
        .map(|n| String::from_utf8(n.name.to_vec()).unwrap())
        .collect()
}
