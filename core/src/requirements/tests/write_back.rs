//! Writing a file back: option values, markers and every kind of entry read back as themselves.
use super::*;

/// Found by the `requirements` fuzz target: `--index-url=#x` was written back as
/// `--index-url #x`, which reads as an option without a value and a comment.
#[test]
fn option_values_that_start_like_comments_are_written_back() {
    let r = parse("--index-url=#x\n--extra-index-url=#y\n-f=#z\nfoo==1.0\n").unwrap();
    assert_eq!(r.index_url.as_deref(), Some("#x"));
    let again = parse(&r.to_requirements_txt()).unwrap();
    assert_eq!(again.index_url.as_deref(), Some("#x"));
    assert_eq!(again.extra_index_urls, ["#y"]);
    assert_eq!(again.find_links, r.find_links);
}

/// Found by the `requirements` fuzz target: pep508_rs displays `python_version < '0'` in a
/// form that reads back as another (`python_full_version < '0'`); the written marker is
/// the settled form, so a written file reads back to the same markers and inputs hash.
#[test]
fn markers_are_written_in_a_form_that_reads_back_as_itself() {
    let r = parse("foo==1.0 ; python_version < '0'\n").unwrap();
    let again = parse(&r.to_requirements_txt()).unwrap();
    assert_eq!(
        again.entries[0].marker_string(),
        r.entries[0].marker_string()
    );
    assert_eq!(again.inputs_hash(), r.inputs_hash());
}

#[test]
fn every_kind_of_entry_is_written_back() {
    let text = format!(
        "--pre\n--only-binary=a,b\n--prefer-binary\n\
         foo[x]>=1,!=1.5 ; os_name == 'nt' --hash=sha256:{H1}\n\
         ./dist/w-1.0-py3-none-any.whl[e] ; python_version >= '3.9' --hash=sha256:{H2}\n\
         -e ./proj#egg=proj[dev]\n\
         ./other-dir[e]\n\
         named @ file:///abs/named\n\
         remote @ https://h.invalid/remote-1.0.tar.gz ; os_name == 'posix'\n\
         https://h.invalid/x/y/z-2.0-py3-none-any.whl --hash=sha256:{H1}\n"
    );
    let r = parse(&text).unwrap();
    let written = r.to_requirements_txt();
    let again = parse(&written).unwrap();
    assert_eq!(strip(&again), strip(&r), "{written}");
    assert_eq!(
        (again.pre, again.prefer_binary, &again.only_binary),
        (true, true, &r.only_binary)
    );
    assert_eq!(again.inputs_hash(), r.inputs_hash());
}
