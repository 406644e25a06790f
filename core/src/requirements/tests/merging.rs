//! Several lines on one pin: merges, conflicts, and hash-checking mode.
use super::*;

#[test]
fn duplicate_pins_merge_or_conflict() {
    let r = parse(&format!(
        "foo==1.0 --hash=sha256:{H1}\nFOO[x]==1.0.0 --hash=sha256:{H2}\n"
    ))
    .unwrap();
    // As written: two entries; pinned: one.
    assert_eq!(r.entries.len(), 2);
    let p = r.pinned().unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].hashes, [H1, H2]);
    assert_eq!(p[0].extras, ["x"]);
    assert_eq!(
        err("foo==1.0\nbar==2\nfoo==2.0\n"),
        "Conflicting pins for `foo`: `1.0` at `/nonexistent/requirements.txt:1` and `2.0` at \
         `/nonexistent/requirements.txt:3`"
    );
    // Different versions under markers that never hold together are fine.
    let p = pins("foo==1.0 ; python_version < '3.9'\nfoo==2.0 ; python_version >= '3.9'\n");
    assert_eq!(p.len(), 2);
    assert!(matches!(
        parse("foo==1.0 ; python_version < '3.10'\nfoo==2.0 ; python_version >= '3.9'\n"),
        Err(RequirementsError::Conflict(_))
    ));
    // Same version under two markers: one entry under either marker.
    let p = pins("foo==1.0 ; sys_platform == 'linux'\nfoo==1.0 ; sys_platform == 'win32'\n");
    assert_eq!(p.len(), 1);
    let m = p[0].marker_string().unwrap();
    assert!(m.contains("linux") && m.contains("win32"), "{m}");
    let p = pins("foo==1.0 ; sys_platform == 'linux'\nfoo==1.0\n");
    assert_eq!(p[0].marker, None);
    // A range beside a pin is for the resolver to intersect, not a conflict.
    assert!(parse("foo==1.0\nfoo>=2\n").is_ok());
}

#[test]
fn hash_checking_mode_needs_every_hash() {
    let msg = err(&format!("foo==1 --hash=sha256:{H1}\nbar>=2\n"));
    assert!(
        msg.contains("`bar` at `/nonexistent/requirements.txt:2` has no `--hash`"),
        "{msg}"
    );
    assert!(matches!(
        parse("--require-hashes\nfoo==1\n"),
        Err(RequirementsError::MissingHashes { .. })
    ));
    let r = parse(&format!("--require-hashes\nfoo==1 --hash=sha256:{H1}\n")).unwrap();
    assert!(r.require_hashes);
}

/// pip merges two lines on one pin, hashes included: a line without a hash is covered by
/// another with one (as `-r base.txt` without hashes beside the same pin with them).
#[test]
fn hash_checking_mode_merges_lines_on_one_pin() {
    let r = parse(&format!("foo==1.0\nFoo==1.0.0 --hash=sha256:{H1}\n")).unwrap();
    assert_eq!(r.pinned().unwrap()[0].hashes, [H1]);
    assert!(matches!(
        parse(&format!(
            "foo==1.0\nfoo==2 ; os_name == 'nt' --hash=sha256:{H1}\n"
        )),
        Err(RequirementsError::Conflict(_) | RequirementsError::MissingHashes { .. })
    ));
    assert!(matches!(
        parse(&format!("foo>=1\nfoo>=2 --hash=sha256:{H1}\n")),
        Err(RequirementsError::MissingHashes { .. })
    ));
}
