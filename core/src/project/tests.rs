//! Projects: reading, discovery, root requirements, the inputs hash, and editing.
use std::path::Path;

use proptest::prelude::*;

use super::*;

const PATH: &str = "/p/pyproject.toml";

fn project(text: &str) -> Project {
    Project::parse_str(text, Path::new(PATH)).unwrap()
}

fn project_err(text: &str) -> String {
    Project::parse_str(text, Path::new(PATH))
        .unwrap_err()
        .to_string()
}

fn roots(p: &Project, extras: ExtrasSelection, groups: GroupsSelection) -> Vec<String> {
    p.requirements(&extras, &groups)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect()
}

const DEMO: &str = r#"
[project]
name = "Demo_Proj"
version = "1.0"
requires-python = ">=3.9"
dependencies = ["requests>=2", "attrs"]

[project.optional-dependencies]
CLI = ["click>=8"]
docs = ["sphinx ; python_version >= '3.10'"]
all = ["demo-proj[cli,docs]"]
recursive = ["demo.proj[recursive,cli]"]

[dependency-groups]
dev = ["pytest", {include-group = "lint"}]
lint = ["ruff"]
typing = ["mypy", "demo_proj[docs] ; sys_platform == 'linux'"]

[tool.dx-py]
environments = ["sys_platform == 'linux'", "sys_platform == 'darwin'"]
constraint-dependencies = ["urllib3<2"]
override-dependencies = ["attrs>=23"]
"#;

#[test]
fn reads_the_project() {
    let p = project(DEMO);
    assert_eq!(p.name, "Demo_Proj");
    assert_eq!(p.normalized_name, "demo-proj");
    assert_eq!(p.root, Path::new("/p"));
    assert_eq!(p.requires_python.as_ref().unwrap().to_string(), ">=3.9");
    assert_eq!(p.dependencies.len(), 2);
    let extras: Vec<&String> = p.optional_dependencies.keys().collect();
    assert_eq!(extras, ["all", "cli", "docs", "recursive"]);
    assert_eq!(p.dependency_groups["dev"].len(), 2);
    assert_eq!(p.environments.len(), 2);
    assert_eq!(p.constraint_dependencies[0].to_string(), "urllib3<2");
    assert_eq!(p.override_dependencies[0].to_string(), "attrs>=23");
}

#[test]
fn roots_follow_extras_and_groups_as_uv_does() {
    let p = project(DEMO);
    // By default: the dependencies and the `dev` group (with its include).
    assert_eq!(
        roots(&p, ExtrasSelection::None, GroupsSelection::default()),
        ["requests>=2", "attrs", "pytest", "ruff"]
    );
    let no_dev = GroupsSelection {
        dev: DevGroup::Exclude,
        ..GroupsSelection::default()
    };
    assert_eq!(
        roots(&p, ExtrasSelection::None, no_dev.clone()),
        ["requests>=2", "attrs"]
    );
    // An extra that names the project's own extras stands for them.
    assert_eq!(
        roots(
            &p,
            ExtrasSelection::Some(vec!["ALL".into()]),
            no_dev.clone()
        ),
        [
            "requests>=2",
            "attrs",
            "click>=8",
            "sphinx ; python_full_version >= '3.10'"
        ]
    );
    // One that names itself ends.
    assert_eq!(
        roots(
            &p,
            ExtrasSelection::Some(vec!["recursive".into()]),
            no_dev.clone()
        ),
        ["requests>=2", "attrs", "click>=8"]
    );
    // A group naming the project's extra under a marker: that extra's requirements under it.
    let typing = GroupsSelection {
        groups: vec!["typing".into()],
        dev: DevGroup::Exclude,
        ..GroupsSelection::default()
    };
    let got = roots(&p, ExtrasSelection::None, typing);
    assert_eq!(got[..3], ["requests>=2", "attrs", "mypy"]);
    assert!(
        got[3].starts_with("sphinx ;")
            && got[3].contains("sys_platform == 'linux'")
            && got[3].contains("3.10"),
        "{got:?}"
    );
    assert_eq!(got.len(), 4);
    // --all-extras --all-groups --no-dev: everything but `dev`.
    let all = GroupsSelection {
        all: true,
        dev: DevGroup::Exclude,
        ..GroupsSelection::default()
    };
    let got = roots(&p, ExtrasSelection::All, all);
    assert!(got.contains(&"ruff".to_string()) && !got.contains(&"pytest".to_string()));
    assert!(got.contains(&"mypy".to_string()) && got.contains(&"click>=8".to_string()));
    // --no-dev --group dev: named wins.
    let named = GroupsSelection {
        groups: vec!["Dev".into()],
        dev: DevGroup::Exclude,
        ..GroupsSelection::default()
    };
    assert!(roots(&p, ExtrasSelection::None, named).contains(&"pytest".to_string()));
}

#[test]
fn unknown_extras_and_groups_name_the_choices() {
    let p = project(DEMO);
    let e = p
        .requirements(
            &ExtrasSelection::Some(vec!["nope".into()]),
            &GroupsSelection::default(),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Project `Demo_Proj` has no extra `nope` (extras: `all`, `cli`, `docs`, `recursive`)"
    );
    let e = p
        .requirements(
            &ExtrasSelection::None,
            &GroupsSelection {
                groups: vec!["tests".into()],
                ..GroupsSelection::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Project `Demo_Proj` has no dependency group `tests` (groups: `dev`, `lint`, `typing`)"
    );
    let bare = project("[project]\nname = 'x'\n");
    let e = bare
        .requirements(
            &ExtrasSelection::Some(vec!["a".into()]),
            &GroupsSelection::default(),
        )
        .unwrap_err();
    assert!(e.to_string().ends_with("(extras: none)"), "{e}");
    // A project without a `dev` group needs none.
    assert!(
        bare.requirements(&ExtrasSelection::None, &GroupsSelection::default())
            .unwrap()
            .is_empty()
    );
    // A self-reference to an extra that does not exist.
    let p = project("[project]\nname = 'x'\n[dependency-groups]\ndev = ['x[nope]']\n");
    let e = p
        .requirements(&ExtrasSelection::None, &GroupsSelection::default())
        .unwrap_err();
    assert!(e.to_string().contains("no extra `nope`"), "{e}");
}

#[test]
fn dynamic_dependencies_are_refused_when_needed() {
    let p = project("[project]\nname = 'x'\ndynamic = ['version', 'dependencies']\n");
    let e = p
        .requirements(&ExtrasSelection::None, &GroupsSelection::default())
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("`project.dependencies` of `/p/pyproject.toml` is dynamic"),
        "{e}"
    );
    let p = project("[project]\nname = 'x'\ndynamic = ['optional-dependencies']\n");
    assert!(
        p.requirements(&ExtrasSelection::None, &GroupsSelection::default())
            .is_ok()
    );
    assert!(matches!(
        p.requirements(&ExtrasSelection::All, &GroupsSelection::default()),
        Err(ProjectError::Dynamic { .. })
    ));
}

#[test]
fn invalid_fields_are_named() {
    for (text, want) in [
        (
            "[project]\nname = 'x'\ndependencies = ['ok', 'bad>=']\n",
            "Invalid `project.dependencies[1]` in `/p/pyproject.toml`: `bad>=`",
        ),
        (
            "[project]\nname = 'x'\nrequires-python = '>=three'\n",
            "Invalid `project.requires-python`",
        ),
        (
            "[project]\nname = 'x'\n[project.optional-dependencies]\ncli = ['a[']\n",
            "Invalid `project.optional-dependencies.cli[0]`",
        ),
        (
            "[project]\nname = 'x'\n[project.optional-dependencies]\nCli = []\ncli = []\n",
            "`Cli` and `cli` in `project.optional-dependencies`",
        ),
        ("[project]\nname = 'x_'\n", "Invalid `project.name`"),
        (
            "[project]\nname = 'x'\n[tool.dx-py]\nenvironments = ['sys_platform = 1']\n",
            "Invalid `tool.dx-py.environments[0]`",
        ),
        (
            "[project]\nname = 'x'\n[tool.dx-py]\nenvironments = [\"os_name == '\u{e9}'\"]\n",
            "non-ASCII",
        ),
        (
            "[project]\nname = 'x'\n[tool.dx-py]\noverride-dependencies = ['?']\n",
            "Invalid `tool.dx-py.override-dependencies[0]`",
        ),
        ("[tool.black]\nx = 1\n", "has no `[project]` table"),
        (
            "[project]\nname = 'x'\ndependencies = 'a'\n",
            "Invalid `/p/pyproject.toml`",
        ),
    ] {
        let e = project_err(text);
        assert!(e.contains(want), "{text}: {e}");
    }
}

#[test]
fn discovery_walks_up_to_a_project_table() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proj");
    let tool_only = root.join("sub");
    let deep = tool_only.join("deeper");
    fs_err::create_dir_all(&deep).unwrap();
    fs_err::write(root.join(PYPROJECT_TOML), "[project]\nname = 'proj'\n").unwrap();
    // A pyproject.toml with tool settings only is passed over.
    fs_err::write(
        tool_only.join(PYPROJECT_TOML),
        "[tool.black]\nline-length = 100\n",
    )
    .unwrap();
    let p = Project::discover(&deep).unwrap();
    assert_eq!(p.root, root);
    assert_eq!(p.name, "proj");
    let outside = tempfile::tempdir().unwrap();
    let e = Project::discover(outside.path()).unwrap_err();
    assert!(
        matches!(&e, ProjectError::NotFound { start } if start == outside.path()),
        "{e}"
    );
    // A broken one on the way is an error, not skipped.
    fs_err::write(tool_only.join(PYPROJECT_TOML), "[tool.black\n").unwrap();
    assert!(matches!(
        Project::discover(&deep),
        Err(ProjectError::Toml { .. })
    ));
}

#[test]
fn inputs_hash_sees_inputs_not_formatting() {
    let base = project(DEMO).inputs_hash();
    let reformatted = DEMO
        .replace(
            "dependencies = [\"requests>=2\", \"attrs\"]",
            "dependencies = [\n  'attrs',   # why\n  'Requests >= 2',\n]",
        )
        .replace("[build-system]", "")
        + "\n[tool.other]\nx = 1\n";
    assert_eq!(project(&reformatted).inputs_hash(), base);
    // A version in another spelling of its normal form.
    assert_eq!(
        project(&DEMO.replace("version = \"1.0\"", "version = \"V1.0\"")).inputs_hash(),
        base
    );
    for (from, to) in [
        ("requests>=2", "requests>=3"),
        (
            "requires-python = \">=3.9\"",
            "requires-python = \">=3.10\"",
        ),
        ("CLI = [", "cli2 = ["),
        ("lint = [\"ruff\"]", "lint = [\"ruff\", \"black\"]"),
        ("urllib3<2", "urllib3<3"),
        ("attrs>=23", "attrs>=24"),
        ("'darwin'", "'win32'"),
        ("version = \"1.0\"", "version = \"1.1\""),
        ("name = \"Demo_Proj\"", "name = \"other\""),
    ] {
        assert!(DEMO.contains(from), "{from}");
        assert_ne!(project(&DEMO.replace(from, to)).inputs_hash(), base, "{to}");
    }
}

// --- editing ------------------------------------------------------------------------------

fn editor(text: &str) -> PyprojectEditor {
    PyprojectEditor::parse_str(text, Path::new(PATH)).unwrap()
}

const FORMATTED: &str = r#"# The project.
[project]
name = "demo"   # its name
dependencies = [
    "attrs",  # first
    # a comment line
    "httpx>=0.27",
    "zope.interface",
]
[project.optional-dependencies]
cli = ["click", "rich>=13"]
docs = [ ]

[dependency-groups]
dev = [
  "pytest",
  {include-group = "lint"},
  "coverage"
]
lint = ['ruff']

[tool.other]
keep = "me"
"#;

#[test]
fn add_keeps_formatting_and_sorts_into_sorted_lists() {
    let mut e = editor(FORMATTED);
    assert_eq!(
        e.add("numpy>=2", &DependencyTarget::Project).unwrap(),
        AddOutcome::Added
    );
    assert_eq!(
        e.add("mypy", &DependencyTarget::Group("DEV".into()))
            .unwrap(),
        AddOutcome::Added
    );
    e.add("typer", &DependencyTarget::Optional("cli".into()))
        .unwrap();
    e.add("aaa", &DependencyTarget::Optional("cli".into()))
        .unwrap();
    e.add("furo", &DependencyTarget::Optional("docs".into()))
        .unwrap();
    let want = FORMATTED
        .replace(
            "    \"httpx>=0.27\",\n",
            "    \"httpx>=0.27\",\n    \"numpy>=2\",\n",
        )
        .replace("  \"coverage\"\n]", "  \"coverage\",\n  \"mypy\"\n]")
        .replace(
            "cli = [\"click\", \"rich>=13\"]",
            "cli = [\"aaa\", \"click\", \"rich>=13\", \"typer\"]",
        )
        .replace("docs = [ ]", "docs = [\"furo\" ]");
    assert_eq!(e.to_string(), want);
}

#[test]
fn add_replaces_a_requirement_on_the_same_package() {
    let mut e = editor(FORMATTED);
    let outcome = e.add("HTTPX>=0.28", &DependencyTarget::Project).unwrap();
    assert_eq!(
        outcome,
        AddOutcome::Replaced {
            previous: "httpx>=0.27".into()
        }
    );
    assert_eq!(
        e.to_string(),
        FORMATTED.replace("\"httpx>=0.27\"", "\"HTTPX>=0.28\"")
    );
    // Under another marker it is another requirement.
    let mut e = editor(FORMATTED);
    assert_eq!(
        e.add(
            "attrs<23 ; python_version < '3.9'",
            &DependencyTarget::Project
        )
        .unwrap(),
        AddOutcome::Added
    );
    assert!(e.to_string().contains("\"attrs\",  # first"));
}

#[test]
fn add_creates_missing_tables_and_arrays() {
    let mut e = editor("[project]\nname = \"x\"\n\n[tool.other]\nkeep = 1\n");
    e.add("requests", &DependencyTarget::Project).unwrap();
    e.add("pytest", &DependencyTarget::Group("dev".into()))
        .unwrap();
    e.add("click", &DependencyTarget::Optional("cli".into()))
        .unwrap();
    let text = e.to_string();
    assert_eq!(
        text,
        "[project]\nname = \"x\"\ndependencies = [\n    \"requests\",\n]\n\n\
         [project.optional-dependencies]\ncli = [\n    \"click\",\n]\n\n\
         [tool.other]\nkeep = 1\n\n\
         [dependency-groups]\ndev = [\n    \"pytest\",\n]\n"
    );
    // What it wrote reads back as a project with those requirements.
    let p = project(&text);
    let roots = p
        .requirements(&ExtrasSelection::All, &GroupsSelection::default())
        .unwrap();
    let names: Vec<String> = roots.iter().map(|r| r.name.to_string()).collect();
    assert_eq!(names, ["requests", "click", "pytest"]);
}

#[test]
fn remove_takes_out_every_entry_on_the_package() {
    let mut e = editor(FORMATTED);
    assert_eq!(e.remove("HTTPX", &DependencyTarget::Project).unwrap(), 1);
    // Its comment line (above it) goes with it; `# first` stays on `attrs`.
    assert_eq!(
        e.to_string(),
        FORMATTED.replace("    # a comment line\n    \"httpx>=0.27\",\n", "")
    );
    let mut e = editor(FORMATTED);
    assert_eq!(e.remove("attrs", &DependencyTarget::Project).unwrap(), 1);
    // `# first` was on its line and goes with it; the comment line above `httpx` stays.
    assert_eq!(
        e.to_string(),
        FORMATTED.replace("    \"attrs\",  # first\n", "")
    );
    let mut e = editor(FORMATTED);
    assert_eq!(
        e.remove("coverage", &DependencyTarget::Group("dev".into()))
            .unwrap(),
        1
    );
    assert!(
        e.to_string().contains("  {include-group = \"lint\"}\n]"),
        "{e}"
    );
    let mut e = editor(FORMATTED);
    e.remove("click", &DependencyTarget::Optional("cli".into()))
        .unwrap();
    assert!(e.to_string().contains("cli = [\"rich>=13\"]"), "{e}");
    // Nothing there: the error says where it looked.
    let msg = e
        .remove("nope", &DependencyTarget::Group("lint".into()))
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "`nope` is not a dependency in `dependency-groups.lint` of `/p/pyproject.toml`"
    );
    let msg = editor("[project]\nname = 'x'\n")
        .remove("a", &DependencyTarget::Optional("cli".into()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("`project.optional-dependencies.cli`"), "{msg}");
}

#[test]
fn edit_errors_name_the_file_and_key() {
    let mut e = editor("name = 1\n");
    assert!(matches!(
        e.add("a", &DependencyTarget::Project),
        Err(EditError::NoProjectTable { .. })
    ));
    let mut e = editor("[project]\nname = 'x'\ndependencies = 'a'\n");
    let msg = e
        .add("b", &DependencyTarget::Project)
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "Cannot edit `project.dependencies` in `/p/pyproject.toml`: it is not an array"
    );
    let mut e = editor("dependency-groups = 1\n");
    let msg = e
        .add("b", &DependencyTarget::Group("dev".into()))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`dependency-groups`") && msg.contains("a table"),
        "{msg}"
    );
    assert!(matches!(
        editor("[project]\nname='x'\n").add("b>=", &DependencyTarget::Project),
        Err(EditError::InvalidRequirement { .. })
    ));
    assert!(matches!(
        PyprojectEditor::parse_str("[project\n", Path::new(PATH)),
        Err(EditError::Toml { .. })
    ));
}

#[test]
fn edits_are_written_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(PYPROJECT_TOML);
    fs_err::write(&path, FORMATTED).unwrap();
    let mut e = PyprojectEditor::from_path(&path).unwrap();
    e.add("six", &DependencyTarget::Project).unwrap();
    e.write().unwrap();
    let p = Project::from_path(&path).unwrap();
    assert!(p.dependencies.iter().any(|r| r.name.as_ref() == "six"));
}

/// Arrays as people write them: one line or several, with or without a trailing comma,
/// comments on lines and between them, entries sorted or not.
fn array_text() -> impl Strategy<Value = String> {
    let entry = prop_oneof![
        "[a-m][a-z]{0,5}".prop_map(|n| format!("\"{n}\"")),
        "[a-m][a-z]{0,5}".prop_map(|n| format!("'{n}>=1'")),
        "[a-m][a-z]{0,5}".prop_map(|n| format!("\"{n} ; os_name == 'nt'\"")),
    ];
    (
        prop::collection::vec((entry, prop::option::of("[a-z ]{0,8}")), 0..6),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec!["", " ", "  ", "    ", "\t"]),
    )
        .prop_map(|(entries, multiline, trailing_comma, indent)| {
            let mut out = String::from("[");
            let n = entries.len();
            for (i, (entry, comment)) in entries.into_iter().enumerate() {
                if multiline {
                    out.push('\n');
                    out.push_str(indent);
                } else if i > 0 {
                    out.push(' ');
                }
                out.push_str(&entry);
                if i + 1 < n || trailing_comma {
                    out.push(',');
                }
                if multiline && let Some(c) = comment {
                    out.push_str(&format!("  # {c}"));
                }
            }
            if multiline {
                out.push('\n');
            }
            out.push(']');
            out
        })
}

proptest! {
    /// Adding a requirement on a package not in the list, then removing it, gives back the
    /// document byte for byte.
    #[test]
    fn add_then_remove_is_byte_identical(
        deps in array_text(),
        group in array_text(),
        new in "[n-z][a-z]{0,5}",
        spec in prop::sample::select(vec!["", ">=1", " ; sys_platform == 'linux'"]),
        target in 0..3usize,
    ) {
        let text = format!(
            "# top\n[project]\nname = \"demo\"\ndependencies = {deps}\n\n\
             [project.optional-dependencies]\ncli = {group}\n\n[dependency-groups]\ndev = {group}  # trailing\n"
        );
        let target = match target {
            0 => DependencyTarget::Project,
            1 => DependencyTarget::Optional("cli".into()),
            _ => DependencyTarget::Group("dev".into()),
        };
        let mut e = editor(&text);
        prop_assert_eq!(e.to_string(), text.clone());
        let requirement = format!("{new}{spec}");
        prop_assert_eq!(e.add(&requirement, &target).unwrap(), AddOutcome::Added);
        let added = e.to_string();
        // The result is a valid project holding the new requirement.
        let p = project(&added);
        let roots = p
            .requirements(&ExtrasSelection::All, &GroupsSelection::default())
            .unwrap();
        prop_assert!(roots.iter().any(|r| r.name.as_ref() == new));
        prop_assert_eq!(e.remove(&new, &target).unwrap(), 1);
        prop_assert_eq!(e.to_string(), text);
    }
}

proptest! {
    /// Whatever the file holds, reading and editing it fail with an error, never a panic.
    #[test]
    fn arbitrary_pyprojects_never_panic(
        body in "(\\[project\\]\nname = 'x'\n|\\[dependency-groups\\]\n|\\[tool.dx-py\\]\n|\\[tool.dx-py.sources\\]\n|\\[tool.uv.sources\\]\n|x = \\{ path = '\\.\\./x' \\}\n|editable = true|dependencies = \\['x @ file:///x'\\]\n|[a-z-]{1,12} = |\\[|\\]|\\{|\\}|'[a-zA-Z0-9<>=!~;. \\[\\]\u{e9}-]{0,12}'|, |\n|include-group = ){0,30}"
    ) {
        if let Ok(p) = Project::parse_str(&body, Path::new(PATH)) {
            let _ = p.requirements(&ExtrasSelection::All, &GroupsSelection {
                all: true,
                ..GroupsSelection::default()
            });
            let _ = p.inputs_hash();
        }
        if let Ok(mut e) = PyprojectEditor::parse_str(&body, Path::new(PATH)) {
            for target in [
                DependencyTarget::Project,
                DependencyTarget::Optional("x".into()),
                DependencyTarget::Group("dev".into()),
            ] {
                let _ = e.add("abc>=1", &target);
                let _ = e.add_source("abc", "../abc", true);
                let _ = e.remove("abc", &target);
                let _ = e.remove_source_if_unused("abc");
            }
        }
    }
}

#[test]
fn direct_references_name_wheels_or_local_source() {
    let with = |dep: &str| {
        project(&format!(
            "[project]\nname = 'x'\ndependencies = [\"{dep}\"]\n"
        ))
        .requirements(&ExtrasSelection::None, &GroupsSelection::default())
        .map(|r| r.iter().map(ToString::to_string).collect::<Vec<_>>())
        .map_err(|e| e.to_string())
    };
    assert_eq!(
        with("w @ file:///abs/w-1.0-py3-none-any.whl")
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        with("w @ https://h.invalid/w-1.0-py3-none-any.whl")
            .unwrap()
            .len(),
        1
    );
    // Local source: the requirement names the package alone, the project the source.
    assert_eq!(
        with("lib[x] @ file:///abs/lib ; python_version >= '3.9'").unwrap(),
        ["lib[x] ; python_full_version >= '3.9'"]
    );
    let p =
        project("[project]\nname = 'x'\ndependencies = [\"lib @ file:///abs/lib-1.0.tar.gz\"]\n");
    assert_eq!(p.local_dependencies.len(), 1);
    assert_eq!(
        p.local_dependencies[0].kind,
        crate::requirements::BuildKind::Archive
    );
    assert_eq!(p.local_dependencies[0].field, "project.dependencies[0]");
    let e = with("s @ https://h.invalid/s-1.0.tar.gz").unwrap_err();
    assert!(
        e.contains("names a remote source archive, which is not supported yet"),
        "{e}"
    );
    let e = with("v @ git+https://h.invalid/v.git").unwrap_err();
    assert!(e.contains("version control URLs are not supported"), "{e}");
}

/// What may follow the project's tables: no tool tables, tool tables of others, our own
/// settings, sources of ours or of uv.
const TOOL_TAILS: [&str; 6] = [
    "",
    "\n[tool.ruff]\nline-length = 100\n",
    "\n[tool.dx-py]\nenvironments = [\"sys_platform == 'linux'\"]\n",
    "\n[tool.dx-py.sources]\nother = { path = \"../other\" }  # kept\n",
    "\n[tool.uv.sources]\nother = { path = \"../other\", editable = true }\n",
    "\n[tool]\n",
];

proptest! {
    /// `add ./lib` then `remove lib` (a requirement and its source) gives back the document byte
    /// for byte, wherever the sources live.
    #[test]
    fn add_source_then_remove_is_byte_identical(
        deps in array_text(),
        new in "[n-z][a-z]{0,5}",
        tail in prop::sample::select(TOOL_TAILS.to_vec()),
        editable in any::<bool>(),
    ) {
        let other = if tail.contains("other") { ", \"other\"" } else { "" };
        let deps = if other.is_empty() {
            deps
        } else {
            // `other` must stay a dependency for its source to be valid.
            format!("[\"other\"{}", deps.strip_prefix('[').map(|d| if d.trim_start().starts_with(']') { d.to_owned() } else { format!(", {d}") }).unwrap_or_default())
        };
        let text = format!("# top\n[project]\nname = \"demo\"\ndependencies = {deps}\n{tail}");
        let mut e = editor(&text);
        e.add(&new, &DependencyTarget::Project).unwrap();
        e.add_source(&new, "../libs/new", editable).unwrap();
        let added = e.to_string();
        let p = project(&added);
        let local = p.local_dependencies.iter().find(|d| d.name == new).unwrap();
        prop_assert_eq!(local.editable, editable);
        prop_assert_eq!(&local.written, "../libs/new");
        // uv's table is used when the project keeps its sources there.
        prop_assert_eq!(
            local.field.starts_with("tool.uv."),
            tail.contains("tool.uv.sources")
        );
        e.remove(&new, &DependencyTarget::Project).unwrap();
        prop_assert!(e.remove_source_if_unused(&new));
        prop_assert_eq!(e.to_string(), text);
    }
}

#[test]
fn a_source_still_used_elsewhere_stays() {
    let text = "[project]\nname = 'demo'\ndependencies = ['lib']\n\n[dependency-groups]\ndev = ['lib']\n\n[tool.dx-py.sources]\nlib = { path = '../lib' }\n";
    let mut e = editor(text);
    e.remove("lib", &DependencyTarget::Project).unwrap();
    assert!(!e.remove_source_if_unused("lib"));
    assert!(e.to_string().contains("lib = { path = '../lib' }"));
    e.remove("lib", &DependencyTarget::Group("dev".into()))
        .unwrap();
    assert!(e.remove_source_if_unused("Lib"));
    assert!(!e.to_string().contains("tool.dx-py"), "{e}");
    // Adding again for the same package replaces its entry.
    e.add("lib", &DependencyTarget::Project).unwrap();
    e.add_source("lib", "../a", false).unwrap();
    e.add_source("LIB", "../b", true).unwrap();
    let p = project(&e.to_string());
    assert_eq!(p.local_dependencies.len(), 1);
    assert_eq!(p.local_dependencies[0].written, "../b");
    // A `tool` that is not a table is an error naming it.
    let mut e = editor("tool = 1\n[project]\nname = 'demo'\n");
    let err = e.add_source("lib", "../lib", false).unwrap_err();
    assert!(err.to_string().contains("Cannot edit `tool`"), "{err}");
}
