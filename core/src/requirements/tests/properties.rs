//! Properties over generated files: written pins and lines parse back, the inputs hash, no panics.
use super::*;

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9]{0,6}([-_.][A-Za-z0-9]{1,4})?"
}

fn version() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(0u32..30, 1..4),
        prop::option::of(prop_oneof![
            Just("a1"),
            Just("rc2"),
            Just(".post3"),
            Just(".dev1")
        ]),
    )
        .prop_map(|(parts, suffix)| {
            let mut v = parts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(".");
            v.push_str(suffix.unwrap_or_default());
            v
        })
}

fn marker() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop_oneof![
        Just("python_version < '3.12'"),
        Just("sys_platform == 'linux'"),
        Just("os_name == 'nt' and platform_machine == 'x86_64'"),
    ])
}

#[derive(Clone, Debug)]
struct Pin {
    name: String,
    version: String,
    extras: Vec<String>,
    marker: Option<&'static str>,
    hashes: Vec<String>,
}

fn pin(with_hashes: bool) -> impl Strategy<Value = Pin> {
    let hashes = if with_hashes { 1..3usize } else { 0..1usize };
    (
        name(),
        version(),
        prop::collection::vec("[a-z]{1,5}", 0..3),
        marker(),
        prop::collection::vec("[0-9a-f]{64}", hashes),
    )
        .prop_map(|(name, version, extras, marker, hashes)| Pin {
            name,
            version,
            extras,
            marker,
            hashes,
        })
}

fn pin_list() -> impl Strategy<Value = Vec<Pin>> {
    any::<bool>()
        .prop_flat_map(|h| prop::collection::vec(pin(h), 0..8))
        .prop_map(|mut v| {
            let mut seen = HashSet::new();
            v.retain(|p| seen.insert(normalize_name(&p.name)));
            v
        })
}

fn write(pins: &[Pin], comments: bool) -> String {
    let mut out = String::new();
    for p in pins {
        if comments {
            out.push_str("# pinned by hand\n\n");
        }
        out.push_str(&p.name);
        if !p.extras.is_empty() {
            out.push_str(&format!("[{}]", p.extras.join(",")));
        }
        out.push_str(&format!("=={}", p.version));
        if let Some(m) = p.marker {
            out.push_str(&format!("; {m}"));
        }
        for h in &p.hashes {
            out.push_str(&format!(" \\\n  --hash=sha256:{h}"));
        }
        if comments {
            out.push_str("  # why");
        }
        out.push('\n');
    }
    out
}

/// One line of any kind this module reads, written as a person might.
fn any_line() -> impl Strategy<Value = String> {
    let spec = prop_oneof![
        Just(String::new()),
        version().prop_map(|v| format!(">={v}")),
        (version(), version()).prop_map(|(a, b)| format!(" >= {a}, <{b}")),
        version().prop_map(|v| format!("~={v}.0")),
        version().prop_map(|v| format!("!={v}")),
        (0u32..9).prop_map(|v| format!("=={v}.*")),
    ];
    let extras = prop::collection::vec("[a-z]{1,5}", 0..3).prop_map(|x| {
        if x.is_empty() {
            String::new()
        } else {
            format!("[{}]", x.join(","))
        }
    });
    let marker = || marker().prop_map(|m| m.map(|m| format!(" ; {m}")).unwrap_or_default());
    let hashes = prop::collection::vec("[0-9a-f]{64}", 0..2).prop_map(|hs| {
        hs.iter()
            .map(|h| format!(" --hash=sha256:{h}"))
            .collect::<String>()
    });
    prop_oneof![
        (name(), extras.clone(), spec, marker(), hashes.clone())
            .prop_map(|(n, x, s, m, h)| format!("{n}{x}{s}{m}{h}")),
        (
            "[a-z]{1,5}",
            name(),
            version(),
            extras.clone(),
            marker(),
            hashes
        )
            .prop_map(|(d, n, v, x, m, h)| format!("./{d}/{n}-{v}-py3-none-any.whl{x}{m}{h}")),
        (name(), extras.clone(), "[a-z]{1,5}", marker())
            .prop_map(|(n, x, d, m)| format!("{n}{x} @ file:///abs/{d}{m}")),
        ("[a-z]{1,5}", extras).prop_map(|(d, x)| format!("-e ../{d}{x}")),
    ]
}

proptest! {
    #[test]
    fn written_pins_parse_back(pins in pin_list()) {
        let r = parse(&write(&pins, false)).unwrap();
        let p = r.pinned().unwrap();
        prop_assert_eq!(p.len(), pins.len());
        for (want, e) in pins.iter().zip(&p) {
            prop_assert_eq!(&e.name, &want.name);
            prop_assert_eq!(&e.normalized, &normalize_name(&want.name));
            prop_assert_eq!(&e.pep440_version, &want.version.parse::<Version>().unwrap());
            let mut extras = want.extras.clone();
            extras.sort();
            extras.dedup();
            prop_assert_eq!(&e.extras, &extras);
            prop_assert_eq!(e.marker.is_some(), want.marker.is_some());
            let mut hashes = want.hashes.clone();
            hashes.sort();
            hashes.dedup();
            prop_assert_eq!(&e.hashes, &hashes);
        }
        // And our own writer round-trips exactly.
        let again = parse(&r.to_requirements_txt()).unwrap();
        prop_assert_eq!(strip(&again), strip(&r));
        prop_assert_eq!(again.inputs_hash(), r.inputs_hash());
    }

    /// Writing a parsed file and reading it back gives the same requirements, whatever their
    /// kinds, and the same inputs hash.
    #[test]
    fn written_requirements_parse_back(lines in prop::collection::vec(any_line(), 0..8)) {
        let text = lines.join("\n");
        // Hash-checking mode needs every requirement hashed: such inputs are refused, fine.
        let Ok(r) = parse(&text) else { return Ok(()) };
        prop_assert_eq!(r.entries.len(), lines.len());
        let written = r.to_requirements_txt();
        let again = parse(&written).unwrap();
        prop_assert_eq!(strip(&again), strip(&r), "{}", written);
        prop_assert_eq!(again.inputs_hash(), r.inputs_hash());
    }

    #[test]
    fn inputs_hash_ignores_order_and_comments(
        pins in pin_list(),
        seed in any::<u64>(),
    ) {
        let base = parse(&write(&pins, false)).unwrap().inputs_hash();
        let mut shuffled = pins.clone();
        // A deterministic shuffle driven by the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(parse(&write(&shuffled, true)).unwrap().inputs_hash(), base);
    }

    #[test]
    fn inputs_hash_sees_every_pin_and_hash(
        pins in pin_list().prop_filter("non-empty", |p| !p.is_empty()),
        which in any::<prop::sample::Index>(),
        change_hash in any::<bool>(),
    ) {
        let base = parse(&write(&pins, false)).unwrap().inputs_hash();
        let mut changed = pins.clone();
        let p = which.get_mut(&mut changed);
        if change_hash && !p.hashes.is_empty() {
            let h = &mut p.hashes[0];
            let flipped = if h.starts_with('0') { "1" } else { "0" };
            h.replace_range(0..1, flipped);
        } else {
            p.version.insert(0, '9');
        }
        prop_assert_ne!(parse(&write(&changed, false)).unwrap().inputs_hash(), base);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(\\PC{0,40}\n?){0,5}") {
        let _ = parse(&text);
    }

    #[test]
    fn arbitrary_requirement_like_text_never_panics(
        text in "[a-zA-Z_.\\-\\[\\],;<>=!~*@ '\"()0-9:/+#\u{e9}\u{4e2d}]{0,40}"
    ) {
        if let Ok(r) = parse(&text) {
            let _ = r.to_pep508();
            let _ = r.to_requirements_txt();
        }
    }

    #[test]
    fn arbitrary_markers_never_panic(
        marker in "(python_version|os_name|extra|sys_platform|and|or|in|not| |'|\"|<|=|>|!|~|\\(|\\)|3\\.1|[a-z_.0-9*]){0,20}"
    ) {
        let _ = parse(&format!("foo==1 ; {marker}"));
        let _ = parse(&format!("./x.whl ; {marker}"));
    }
}
