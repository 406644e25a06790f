//! Human renderings of a lock.
use super::*;

#[test]
fn renderings_show_every_field() {
    let r = DplReader::from_bytes(build(&sample())).unwrap();
    let requests = r.get("requests").unwrap().unwrap().index() as usize;
    let text = r.render_entry(requests).unwrap();
    for needle in [
        "Requests 2.31.0",
        "2.31.0",
        "[x] socks",
        "[ ] use_chardet_on_py3",
        "certifi [0]",
        "idna [2]",
        "requires-python  >=3.7",
        &ContentHash::of(b"requests").to_hex(),
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    assert!(r.render_header().contains("cp311-linux_x86_64"));

    let json = r.to_json().unwrap();
    assert_eq!(json["environment"], "cp311-linux_x86_64");
    assert_eq!(json["packages"].as_array().unwrap().len(), 4);
    let p = &json["packages"][requests];
    assert_eq!(p["version_minor"], 31);
    assert_eq!(p["selected_extras"][0], "socks");
    assert_eq!(p["dependencies"][1]["name"], "charset-normalizer");
    assert_eq!(p["wheel"]["sha256"], "07".repeat(32));
    assert_eq!(json["packages"][0]["store_hash"], serde_json::Value::Null);
}
