//! The rules of the read-only volume, as plain functions over the numbers Dokan passes on from
//! `ZwCreateFile`: which opens succeed, which are refused and why, how names compare and which
//! names Windows can show at all.
//!
//! Nothing here touches Dokan or the tree, so the rules compile on every platform and their
//! tests run on Linux; the constants are checked against the Windows bindings when the crate is
//! built for Windows.

/// `FILE_READ_DATA` (also `FILE_LIST_DIRECTORY`).
pub const FILE_READ_DATA: u32 = 0x0001;
/// `FILE_WRITE_DATA` (also `FILE_ADD_FILE`).
pub const FILE_WRITE_DATA: u32 = 0x0002;
/// `FILE_APPEND_DATA` (also `FILE_ADD_SUBDIRECTORY`).
pub const FILE_APPEND_DATA: u32 = 0x0004;
/// `FILE_WRITE_EA`.
pub const FILE_WRITE_EA: u32 = 0x0010;
/// `FILE_DELETE_CHILD`.
pub const FILE_DELETE_CHILD: u32 = 0x0040;
/// `FILE_READ_ATTRIBUTES`.
pub const FILE_READ_ATTRIBUTES: u32 = 0x0080;
/// `FILE_WRITE_ATTRIBUTES`.
pub const FILE_WRITE_ATTRIBUTES: u32 = 0x0100;
/// `DELETE`.
pub const DELETE: u32 = 0x0001_0000;
/// `SYNCHRONIZE`.
pub const SYNCHRONIZE: u32 = 0x0010_0000;
/// `WRITE_DAC`.
pub const WRITE_DAC: u32 = 0x0004_0000;
/// `WRITE_OWNER`.
pub const WRITE_OWNER: u32 = 0x0008_0000;
/// `GENERIC_ALL`.
pub const GENERIC_ALL: u32 = 0x1000_0000;
/// `GENERIC_WRITE`.
pub const GENERIC_WRITE: u32 = 0x4000_0000;

/// Every access right that could change a file, its attributes, its security or its directory.
pub const WRITE_ACCESS: u32 = FILE_WRITE_DATA
    | FILE_APPEND_DATA
    | FILE_WRITE_EA
    | FILE_DELETE_CHILD
    | FILE_WRITE_ATTRIBUTES
    | DELETE
    | WRITE_DAC
    | WRITE_OWNER
    | GENERIC_ALL
    | GENERIC_WRITE;

/// Create disposition `FILE_SUPERSEDE`: replace or create.
pub const FILE_SUPERSEDE: u32 = 0;
/// Create disposition `FILE_OPEN`: open an existing file, fail otherwise.
pub const FILE_OPEN: u32 = 1;
/// Create disposition `FILE_CREATE`: create a new file, fail if it exists.
pub const FILE_CREATE: u32 = 2;
/// Create disposition `FILE_OPEN_IF`: open, or create when missing.
pub const FILE_OPEN_IF: u32 = 3;
/// Create disposition `FILE_OVERWRITE`: truncate an existing file, fail otherwise.
pub const FILE_OVERWRITE: u32 = 4;
/// Create disposition `FILE_OVERWRITE_IF`: truncate, or create when missing.
pub const FILE_OVERWRITE_IF: u32 = 5;

/// Create option `FILE_DIRECTORY_FILE`: the target must be a directory.
pub const FILE_DIRECTORY_FILE: u32 = 0x0001;
/// Create option `FILE_NON_DIRECTORY_FILE`: the target must not be a directory.
pub const FILE_NON_DIRECTORY_FILE: u32 = 0x0040;
/// Create option `FILE_DELETE_ON_CLOSE`.
pub const FILE_DELETE_ON_CLOSE: u32 = 0x1000;

/// File attribute `FILE_ATTRIBUTE_READONLY`.
pub const FILE_ATTRIBUTE_READONLY: u32 = 0x0001;
/// File attribute `FILE_ATTRIBUTE_DIRECTORY`.
pub const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x0010;

/// Why an open is refused. The Dokan handler turns each into an `NTSTATUS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It would write, create, truncate or delete: `STATUS_MEDIA_WRITE_PROTECTED`.
    WriteProtected,
    /// `FILE_CREATE` of a name that exists: `STATUS_OBJECT_NAME_COLLISION`.
    NameCollision,
    /// No such file: `STATUS_OBJECT_NAME_NOT_FOUND`.
    NotFound,
    /// `FILE_DIRECTORY_FILE` on a file: `STATUS_NOT_A_DIRECTORY`.
    NotADirectory,
    /// `FILE_NON_DIRECTORY_FILE` on a directory: `STATUS_FILE_IS_A_DIRECTORY`.
    IsADirectory,
    /// An unknown create disposition: `STATUS_INVALID_PARAMETER`.
    InvalidParameter,
}

/// The arguments of one create request that decide whether it may succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateRequest {
    /// `ACCESS_MASK` asked for.
    pub desired_access: u32,
    /// `FILE_SUPERSEDE` ..= `FILE_OVERWRITE_IF`.
    pub disposition: u32,
    /// `FILE_*` create options.
    pub options: u32,
}

/// Decides a create request on a read-only volume. `existing` is `None` when the name is
/// absent, else whether it is a directory.
///
/// Opening what exists for reading succeeds (also through `FILE_OPEN_IF`); everything that
/// would create, truncate, write, delete or change attributes or security is refused as
/// write-protected, except that `FILE_CREATE` of an existing name reports the collision and
/// opening a missing name with `FILE_OPEN`/`FILE_OVERWRITE` reports it missing, as on NTFS.
pub fn decide_open(req: CreateRequest, existing: Option<bool>) -> Result<(), Refusal> {
    if req.disposition > FILE_OVERWRITE_IF {
        return Err(Refusal::InvalidParameter);
    }
    let Some(is_dir) = existing else {
        return Err(match req.disposition {
            FILE_OPEN | FILE_OVERWRITE => Refusal::NotFound,
            _ => Refusal::WriteProtected,
        });
    };
    match req.disposition {
        FILE_CREATE => return Err(Refusal::NameCollision),
        FILE_OPEN | FILE_OPEN_IF => {}
        _ => return Err(Refusal::WriteProtected),
    }
    if req.options & FILE_DIRECTORY_FILE != 0 && !is_dir {
        return Err(Refusal::NotADirectory);
    }
    if req.options & FILE_NON_DIRECTORY_FILE != 0 && is_dir {
        return Err(Refusal::IsADirectory);
    }
    if req.desired_access & WRITE_ACCESS != 0 || req.options & FILE_DELETE_ON_CLOSE != 0 {
        return Err(Refusal::WriteProtected);
    }
    Ok(())
}

/// The attributes every entry shows: directories are plain directories, files are read-only.
pub fn attributes(is_dir: bool) -> u32 {
    if is_dir {
        FILE_ATTRIBUTE_DIRECTORY
    } else {
        FILE_ATTRIBUTE_READONLY
    }
}

/// True when `tree_name` (bytes from the tree) and `name` (from Windows) are equal ignoring
/// case, the way a case-insensitive volume compares them: ASCII fast path, else per character
/// lowercase (not full Unicode case folding, which Windows does not apply either).
pub fn eq_ignore_case(tree_name: &[u8], name: &str) -> bool {
    if tree_name.is_ascii() && name.is_ascii() {
        return tree_name.eq_ignore_ascii_case(name.as_bytes());
    }
    let Ok(tree_name) = std::str::from_utf8(tree_name) else {
        return false;
    };
    tree_name
        .chars()
        .flat_map(char::to_lowercase)
        .eq(name.chars().flat_map(char::to_lowercase))
}

/// True when Windows can name this entry: not empty, no character that Win32 paths reserve
/// (`<>:"/\|?*` and control characters), no trailing dot or space (Win32 strips them), at most
/// 255 UTF-16 units. Entries failing this are left out of listings and cannot be opened.
pub fn windows_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.encode_utf16().count() <= 255
        && !name.ends_with(['.', ' '])
        && !name.chars().any(|c| {
            c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*')
        })
}

/// Splits a Dokan path (`\dir\file`, `\` for the root) into its components, dropping empty
/// ones. `None` for a component Windows could not have produced for this volume (a stream
/// `name:stream`, a reserved character, `.` or `..` which Windows resolves before asking), so
/// it is answered as an invalid name.
pub fn components(path: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = path.split('\\').filter(|p| !p.is_empty()).collect();
    parts.iter().all(|p| windows_name_ok(p)).then_some(parts)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `FILE_GENERIC_READ`, what `CreateFileW(GENERIC_READ)` reaches the file system as.
    const GENERIC_READ_MAPPED: u32 = 0x0012_0089;

    fn req(desired_access: u32, disposition: u32, options: u32) -> CreateRequest {
        CreateRequest {
            desired_access,
            disposition,
            options,
        }
    }

    #[test]
    fn reads_of_existing_entries_succeed() {
        // open(path, "rb"): CreateFileW(GENERIC_READ, OPEN_EXISTING).
        let read = req(GENERIC_READ_MAPPED, FILE_OPEN, FILE_NON_DIRECTORY_FILE);
        assert_eq!(decide_open(read, Some(false)), Ok(()));
        // os.stat / os.listdir: attributes only, backup semantics (no directory option).
        let stat = req(FILE_READ_ATTRIBUTES | SYNCHRONIZE, FILE_OPEN, 0);
        assert_eq!(decide_open(stat, Some(false)), Ok(()));
        assert_eq!(decide_open(stat, Some(true)), Ok(()));
        let list = req(FILE_READ_DATA | SYNCHRONIZE, FILE_OPEN, FILE_DIRECTORY_FILE);
        assert_eq!(decide_open(list, Some(true)), Ok(()));
        // OPEN_ALWAYS with read access opens what exists.
        let open_if = req(GENERIC_READ_MAPPED, FILE_OPEN_IF, 0);
        assert_eq!(decide_open(open_if, Some(false)), Ok(()));
    }

    #[test]
    fn writes_creates_and_deletes_are_write_protected() {
        let wp = Err(Refusal::WriteProtected);
        // open(path, "w") / "a" / "r+" on an existing file.
        assert_eq!(
            decide_open(req(GENERIC_WRITE, FILE_OVERWRITE_IF, 0), Some(false)),
            wp
        );
        assert_eq!(
            decide_open(req(FILE_APPEND_DATA, FILE_OPEN_IF, 0), Some(false)),
            wp
        );
        assert_eq!(
            decide_open(
                req(FILE_WRITE_DATA | FILE_READ_DATA, FILE_OPEN, 0),
                Some(false)
            ),
            wp
        );
        // A new file, a new directory, a truncation, a delete, a rename, an attribute change.
        assert_eq!(decide_open(req(GENERIC_WRITE, FILE_CREATE, 0), None), wp);
        assert_eq!(
            decide_open(req(FILE_READ_DATA, FILE_OPEN_IF, FILE_DIRECTORY_FILE), None),
            wp
        );
        assert_eq!(
            decide_open(req(FILE_READ_DATA, FILE_SUPERSEDE, 0), Some(false)),
            wp
        );
        assert_eq!(decide_open(req(DELETE, FILE_OPEN, 0), Some(false)), wp);
        assert_eq!(
            decide_open(req(DELETE | SYNCHRONIZE, FILE_OPEN, 0), Some(true)),
            wp
        );
        assert_eq!(
            decide_open(req(FILE_WRITE_ATTRIBUTES, FILE_OPEN, 0), Some(false)),
            wp
        );
        assert_eq!(decide_open(req(WRITE_DAC, FILE_OPEN, 0), Some(true)), wp);
        assert_eq!(
            decide_open(
                req(FILE_READ_DATA, FILE_OPEN, FILE_DELETE_ON_CLOSE),
                Some(false)
            ),
            wp
        );
    }

    #[test]
    fn names_and_kinds_are_reported_as_ntfs_would() {
        // os.makedirs(exist_ok=True) needs "exists", not "write-protected".
        let mkdir = req(
            FILE_READ_DATA | SYNCHRONIZE,
            FILE_CREATE,
            FILE_DIRECTORY_FILE,
        );
        assert_eq!(decide_open(mkdir, Some(true)), Err(Refusal::NameCollision));
        assert_eq!(
            decide_open(req(FILE_READ_DATA, FILE_OPEN, 0), None),
            Err(Refusal::NotFound)
        );
        assert_eq!(
            decide_open(req(FILE_READ_DATA, FILE_OVERWRITE, 0), None),
            Err(Refusal::NotFound)
        );
        assert_eq!(
            decide_open(
                req(FILE_READ_DATA, FILE_OPEN, FILE_DIRECTORY_FILE),
                Some(false)
            ),
            Err(Refusal::NotADirectory)
        );
        assert_eq!(
            decide_open(
                req(FILE_READ_DATA, FILE_OPEN, FILE_NON_DIRECTORY_FILE),
                Some(true)
            ),
            Err(Refusal::IsADirectory)
        );
        assert_eq!(
            decide_open(req(FILE_READ_DATA, 6, 0), Some(false)),
            Err(Refusal::InvalidParameter)
        );
    }

    proptest! {
        #[test]
        fn nothing_that_writes_is_ever_allowed(
            access in any::<u32>(), disposition in 0u32..8, options in any::<u32>(),
            existing in proptest::option::of(any::<bool>()),
        ) {
            let r = req(access, disposition, options);
            let writes = access & WRITE_ACCESS != 0
                || options & FILE_DELETE_ON_CLOSE != 0
                || !matches!(disposition, FILE_OPEN | FILE_OPEN_IF);
            if writes || existing.is_none() {
                prop_assert!(decide_open(r, existing).is_err());
            }
        }

        #[test]
        fn every_plain_read_of_an_existing_entry_is_allowed(
            access in any::<u32>(), open_if in any::<bool>(), is_dir in any::<bool>(),
            options in any::<u32>(),
        ) {
            let access = access & !WRITE_ACCESS;
            let mut options = options & !(FILE_DELETE_ON_CLOSE | FILE_DIRECTORY_FILE | FILE_NON_DIRECTORY_FILE);
            options |= if is_dir { FILE_DIRECTORY_FILE } else { FILE_NON_DIRECTORY_FILE };
            let disposition = if open_if { FILE_OPEN_IF } else { FILE_OPEN };
            prop_assert_eq!(decide_open(req(access, disposition, options), Some(is_dir)), Ok(()));
        }

        #[test]
        fn ascii_case_folding_matches_the_naive_oracle(a in "[a-zA-Z0-9_.]{0,12}", b in "[a-zA-Z0-9_.]{0,12}") {
            // Naive: fold A-Z by arithmetic, byte by byte.
            let fold = |c: u8| if c.is_ascii_uppercase() { c + 32 } else { c };
            let oracle = a.bytes().map(fold).eq(b.bytes().map(fold));
            prop_assert_eq!(eq_ignore_case(a.as_bytes(), &b), oracle);
            prop_assert!(eq_ignore_case(a.as_bytes(), &a.to_uppercase()));
        }

        #[test]
        fn case_folding_is_reflexive_and_symmetric(a in "\\PC{0,8}", b in "\\PC{0,8}") {
            prop_assert!(eq_ignore_case(a.as_bytes(), &a));
            prop_assert_eq!(eq_ignore_case(a.as_bytes(), &b), eq_ignore_case(b.as_bytes(), &a));
        }
    }

    #[test]
    fn case_folding_handles_non_ascii_and_bad_bytes() {
        assert!(eq_ignore_case("Ünïcode.py".as_bytes(), "üNÏCODE.PY"));
        assert!(!eq_ignore_case("Ünïcode.py".as_bytes(), "unicode.py"));
        assert!(!eq_ignore_case(b"\xffabc", "abc"));
        assert!(!eq_ignore_case(b"abc", "abcd"));
    }

    #[test]
    fn windows_names() {
        for ok in [
            "__init__.py",
            "numpy",
            "a b",
            "Ünïcode.txt",
            ".hidden",
            "x.tar.gz",
        ] {
            assert!(windows_name_ok(ok), "{ok}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            "trailing.",
            "trailing ",
            "a:b",
            "a*b",
            "a?b",
            "a|b",
            "a\"b",
            "a<b",
            "a\nb",
            "a\\b",
            "a/b",
            &long,
        ] {
            assert!(!windows_name_ok(bad), "{bad:?}");
        }
        assert!(windows_name_ok(&"a".repeat(255)));
    }

    #[test]
    fn dokan_paths_split_into_components() {
        assert_eq!(components("\\"), Some(vec![]));
        assert_eq!(components(""), Some(vec![]));
        assert_eq!(
            components("\\Lib\\site-packages\\six.py"),
            Some(vec!["Lib", "site-packages", "six.py"])
        );
        assert_eq!(components("\\a\\\\b\\"), Some(vec!["a", "b"]));
        assert_eq!(components("\\six.py:Zone.Identifier"), None);
        assert_eq!(components("\\a\\..\\b"), None);
    }
}
