//! Requirements files: parsing, the pinned view, the inputs hash and writing back, one file per
//! topic; here the hashes and parse shortcuts they share.

mod includes;
mod inputs_hash;
mod merging;
mod parsing;
mod properties;
mod refusals;
mod write_back;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use pep440_rs::Version;
use pep508_rs::VersionOrUrl;
use proptest::prelude::*;

use super::*;
use crate::names::normalize_name;

const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const H2: &str = "abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdef0123";

fn parse(text: &str) -> Result<Requirements, RequirementsError> {
    Requirements::parse_str(text, Path::new("/nonexistent/requirements.txt"))
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn pins(text: &str) -> Vec<PinnedRequirement> {
    parse(text).unwrap().pinned().unwrap()
}

fn hex(h: [u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// The entries without their line numbers (a written file puts them on other lines).
fn strip(r: &Requirements) -> Vec<RequirementEntry> {
    r.entries
        .iter()
        .cloned()
        .map(|mut e| {
            e.location.line = 0;
            e
        })
        .collect()
}
