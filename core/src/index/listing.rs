//! A project's files as the resolver reads them: pages parsed in this run are held as
//! [`IndexFile`]s, pages kept from an earlier run are read in place from their parsed form (see
//! `listing_cache`), and an [`IndexFile`] is made only for a file that is looked at. A page of
//! thousands of files (pydantic-core's lists some 4,000) then costs no string copies, and its
//! versions are read from the groups kept with it instead of by parsing every file name.
use std::collections::HashMap;

use super::listing_cache::CachedListing;
use super::{DistFilename, IndexFile};

/// Every distribution file of one project, from each source in order; a file is named by its
/// position, from 0 to [`Listing::len`].
#[derive(Debug, Default)]
pub struct Listing {
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Owned(Vec<IndexFile>),
    Cached(CachedListing),
}

impl Part {
    fn len(&self) -> usize {
        match self {
            Self::Owned(files) => files.len(),
            Self::Cached(cached) => cached.len(),
        }
    }
}

impl From<Vec<IndexFile>> for Listing {
    fn from(files: Vec<IndexFile>) -> Self {
        let mut listing = Self::default();
        listing.push_files(files);
        listing
    }
}

impl Listing {
    /// Appends files held in memory.
    pub(super) fn push_files(&mut self, files: Vec<IndexFile>) {
        if !files.is_empty() {
            self.parts.push(Part::Owned(files));
        }
    }

    /// Appends a page kept from an earlier run.
    pub(super) fn push_cached(&mut self, cached: CachedListing) {
        if cached.len() > 0 {
            self.parts.push(Part::Cached(cached));
        }
    }

    /// How many files there are.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Part::len).sum()
    }

    /// Whether no source lists a file.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|p| p.len() == 0)
    }

    /// The part holding position `i`, and the position within it.
    fn locate(&self, mut i: usize) -> Option<(&Part, usize)> {
        for part in &self.parts {
            let len = part.len();
            if i < len {
                return Some((part, i));
            }
            i -= len;
        }
        None
    }

    /// The file at position `i`.
    pub fn file(&self, i: usize) -> Option<IndexFile> {
        match self.locate(i)? {
            (Part::Owned(files), j) => files.get(j).cloned(),
            (Part::Cached(cached), j) => cached.file(j),
        }
    }

    /// Every file, in order.
    pub fn to_vec(&self) -> Vec<IndexFile> {
        (0..self.len()).filter_map(|i| self.file(i)).collect()
    }

    /// The files of the project `normalized_name`, grouped by the version their names give as
    /// written: `each(version, positions)`, positions ascending within a call. A version may be
    /// given more than once (by several sources, or written in two ways); files of another
    /// project, and names that do not parse, are left out.
    pub fn versions(&self, normalized_name: &str, mut each: impl FnMut(&str, &[usize])) {
        let mut start = 0;
        let mut positions = Vec::new();
        for part in &self.parts {
            match part {
                Part::Owned(files) => each_group(files, normalized_name, start, &mut each),
                // Grouped when the page was kept, for the name it was kept for; another name
                // (never asked of one page in practice) reads the names again.
                Part::Cached(cached) if cached.name() == normalized_name => {
                    for group in cached.groups() {
                        positions.clear();
                        positions.extend(group.members.map(|m| m + start));
                        each(group.version, &positions);
                    }
                }
                Part::Cached(cached) => {
                    each_group(&cached.to_vec(), normalized_name, start, &mut each);
                }
            }
            start += part.len();
        }
    }
}

/// [`group_by_version`] of `files`, which start at position `start`, given to `each`.
fn each_group(
    files: &[IndexFile],
    normalized_name: &str,
    start: usize,
    each: &mut impl FnMut(&str, &[usize]),
) {
    for (version, mut members) in group_by_version(files, normalized_name) {
        for m in &mut members {
            *m += start;
        }
        each(&version, &members);
    }
}

/// The positions of `files` of the project `normalized_name` by the version their names give,
/// in order of first appearance.
pub(super) fn group_by_version(
    files: &[IndexFile],
    normalized_name: &str,
) -> Vec<(String, Vec<usize>)> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, file) in files.iter().enumerate() {
        let Some(dist) = DistFilename::parse_for(&file.filename, normalized_name) else {
            continue;
        };
        match seen.get(dist.version()) {
            Some(&g) => {
                if let Some((_, members)) = groups.get_mut(g) {
                    members.push(i);
                }
            }
            None => {
                seen.insert(dist.version().to_owned(), groups.len());
                groups.push((dist.version().to_owned(), vec![i]));
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(filename: &str) -> IndexFile {
        IndexFile {
            filename: filename.to_owned(),
            url: format!("https://example.invalid/{filename}"),
            ..IndexFile::default()
        }
    }

    #[test]
    fn positions_run_across_parts_and_versions_group_by_name() {
        let mut listing = Listing::from(vec![
            named("foo-1.0-py3-none-any.whl"),
            named("bar-1.0-py3-none-any.whl"),
            named("foo-1.0.tar.gz"),
        ]);
        listing.push_files(vec![named("foo-2.0-py3-none-any.whl")]);
        assert_eq!(listing.len(), 4);
        assert_eq!(
            listing.file(3).unwrap().filename,
            "foo-2.0-py3-none-any.whl"
        );
        assert_eq!(listing.file(4), None);
        let mut seen = Vec::new();
        listing.versions("foo", |v, p| seen.push((v.to_owned(), p.to_vec())));
        assert_eq!(
            seen,
            [("1.0".to_owned(), vec![0, 2]), ("2.0".to_owned(), vec![3])]
        );
        assert_eq!(listing.to_vec().len(), 4);
    }

    fn versions(listing: &Listing, name: &str) -> Vec<(String, Vec<usize>)> {
        let mut seen = Vec::new();
        listing.versions(name, |v, p| seen.push((v.to_owned(), p.to_vec())));
        seen
    }

    #[test]
    fn a_kept_part_reads_as_the_files_it_was_made_from() {
        let files = vec![
            named("foo-1.0-py3-none-any.whl"),
            named("foo-2.0.tar.gz"),
            named("foo-1.0.tar.gz"),
            named("bar-3.0.tar.gz"),
        ];
        let mut mixed = Listing::from(vec![named("foo-0.1.tar.gz")]);
        mixed.push_cached(CachedListing::of(&files, "foo").unwrap());
        let mut owned = Listing::from(vec![named("foo-0.1.tar.gz")]);
        owned.push_files(files.clone());
        assert_eq!(mixed.len(), 5);
        assert_eq!(mixed.to_vec(), owned.to_vec());
        assert_eq!(versions(&mixed, "foo"), versions(&owned, "foo"));
        assert_eq!(
            versions(&mixed, "foo"),
            [
                ("0.1".to_owned(), vec![0]),
                ("1.0".to_owned(), vec![1, 3]),
                ("2.0".to_owned(), vec![2])
            ]
        );
        // Kept for another name: the names are read again.
        assert_eq!(versions(&mixed, "bar"), [("3.0".to_owned(), vec![4])]);
    }

    #[test]
    fn a_page_kept_by_one_run_lists_as_parsed_in_the_next() {
        use crate::index::ClientOptions;
        use crate::index::fixture::Fixture;
        let fx = Fixture::serving(&[
            ("foo-1.0-py3-none-any.whl", b"x"),
            ("foo-1.0.tar.gz", b"y"),
            ("foo-2.0-py3-none-any.whl", b"z"),
        ]);
        fx.server.set_cache_control(Some("max-age=600"));
        let run = || {
            fx.client_with(ClientOptions {
                cache_dir: None,
                metadata_dir: None,
                ..fx.options()
            })
        };
        let first = run().listing("foo").unwrap();
        let second = run().listing("Foo").unwrap();
        assert_eq!(fx.server.requests_for("/simple/foo/").len(), 1);
        assert!(matches!(first.parts[..], [Part::Owned(_)]));
        assert!(matches!(second.parts[..], [Part::Cached(_)]));
        assert_eq!(first.to_vec(), second.to_vec());
        assert_eq!(versions(&first, "foo"), versions(&second, "foo"));
        assert_eq!(versions(&second, "foo").len(), 2);
    }

    #[test]
    fn a_kept_page_of_an_index_with_credentials_gets_them_on_its_urls() {
        use crate::index::fixture::Fixture;
        use crate::index::{IndexClient, PackageSources};
        let fx = Fixture::serving(&[("foo-1.0-py3-none-any.whl", b"x")]);
        fx.server.set_cache_control(Some("max-age=600"));
        let url = fx.server.index_url().replacen("://", "://u:pw@", 1);
        let run = || {
            let sources = PackageSources::with_index(&url).unwrap();
            IndexClient::new(sources, fx.options()).unwrap()
        };
        for _ in 0..2 {
            let files = run().listing("foo").unwrap().to_vec();
            assert!(files[0].url.contains("://u:pw@"), "{}", files[0].url);
        }
        assert_eq!(fx.server.requests_for("/simple/foo/").len(), 1);
    }
}
