//! Parsing simple-API project pages (PEP 691 JSON, PEP 503 HTML) and pinned requirements files.
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dx_py_core::index::Url;
use dx_py_core::index::simple::{parse_html, parse_json};
use dx_py_core::requirements::Requirements;

const FILES: usize = 5000;
const FILES_ABSOLUTE: usize = 4000;
const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A project page the size of a big real project's: `FILES` wheels across many versions.
fn html_page() -> String {
    let mut html = String::from("<!DOCTYPE html>\n<html><body><h1>Links for foo</h1>\n");
    for i in 0..FILES {
        let f = format!(
            "foo-{}.{}.0-cp311-cp311-manylinux_2_17_x86_64.whl",
            i / 10,
            i % 10
        );
        html.push_str(&format!(
            "<a href=\"../../packages/ab/cd/{f}#sha256={HASH}\" \
             data-requires-python=\"&gt;=3.8\">{f}</a><br/>\n"
        ));
    }
    html.push_str("</body></html>\n");
    html
}

/// A page as a large index serves one: absolute file URLs, `data-requires-python` with
/// character references, PEP 714 metadata hashes and some yanked files (`FILES_ABSOLUTE` links).
fn html_page_absolute() -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.1\">\n           <title>Links for foo</title>\n  </head>\n  <body>\n    <h1>Links for foo</h1>\n",
    );
    for i in 0..FILES_ABSOLUTE {
        let f = format!(
            "foo-{}.{}.0-cp311-cp311-manylinux_2_17_x86_64.whl",
            i / 10,
            i % 10
        );
        let yanked = if i % 50 == 0 {
            " data-yanked=\"broken &quot;wheel&quot;\""
        } else {
            ""
        };
        html.push_str(&format!(
            "    <a href=\"https://files.index.invalid/packages/ab/cd/ef0123/{f}#sha256={HASH}\" \
             data-requires-python=\"&gt;=3.8, &lt;4\" data-dist-info-metadata=\"sha256={HASH}\" \
             data-core-metadata=\"sha256={HASH}\"{yanked}>{f}</a><br />\n"
        ));
    }
    html.push_str("  </body>\n</html>\n");
    html
}

fn json_page() -> String {
    let mut files = Vec::with_capacity(FILES);
    for i in 0..FILES {
        let f = format!(
            "foo-{}.{}.0-cp311-cp311-manylinux_2_17_x86_64.whl",
            i / 10,
            i % 10
        );
        files.push(format!(
            "{{\"filename\":\"{f}\",\"url\":\"../../packages/ab/cd/{f}\",\"hashes\":{{\"sha256\":\"{HASH}\"}},\
             \"requires-python\":\">=3.8\",\"yanked\":false,\"size\":123456}}"
        ));
    }
    format!(
        "{{\"meta\":{{\"api-version\":\"1.1\"}},\"name\":\"foo\",\"files\":[{}]}}",
        files.join(",")
    )
}

fn requirements_txt() -> String {
    let mut out = String::new();
    for i in 0..500 {
        out.push_str(&format!(
            "package-{i}[extra]==1.{i}.0 ; python_version >= \"3.8\" \\\n    --hash=sha256:{HASH}\n"
        ));
    }
    out
}

fn bench(c: &mut Criterion) {
    let page = Url::parse("https://index.invalid/simple/foo/").unwrap();
    let html = html_page();
    let json = json_page();
    let req = requirements_txt();
    let mut g = c.benchmark_group("index_pages");
    g.throughput(Throughput::Bytes(html.len() as u64));
    g.bench_function("html_5000_files", |b| {
        b.iter(|| black_box(parse_html(black_box(&html), &page)))
    });
    let absolute = html_page_absolute();
    g.throughput(Throughput::Bytes(absolute.len() as u64));
    g.bench_function("html_4000_absolute", |b| {
        b.iter(|| black_box(parse_html(black_box(&absolute), &page)))
    });
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("json_5000_files", |b| {
        b.iter(|| black_box(parse_json(black_box(json.as_bytes()), &page).unwrap()))
    });
    g.throughput(Throughput::Bytes(req.len() as u64));
    g.bench_function("requirements_500_pins", |b| {
        b.iter(|| {
            black_box(
                Requirements::parse_str(black_box(&req), Path::new("requirements.txt")).unwrap(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
