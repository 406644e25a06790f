#!/usr/bin/env python3
"""Side-by-side timings of `sync` of a local setuptools project (installed editable): dx-py
against uv.

Python 3 standard library only; shares its process, table and report helpers with compare_uv.py.
The project declares `[build-system]` setuptools and no dependencies, so what is measured is the
project's own install: its build environment (setuptools from the interpreter's pip default
index, given to uv with `--default-index`), the PEP 660 editable build and the venv. Both tools
use the same CPython (`--python`; uv with `UV_PYTHON_DOWNLOADS=never`). Metrics, each a whole
process, tools alternating which goes first:

- `cold`: empty cache, a fresh copy of the project: `dx-py sync` / `uv sync`.
- `new checkout`: the cache of a cold run kept, a fresh copy of the project (another path: the
  editable wheel is built again, its build environment comes from the cache).
- `warm`: the project synced, nothing changed, `sync` again (target: <= 10 ms for dx-py).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_uv as cu  # noqa: E402
from compare_uv_resolve import pip_index_url  # noqa: E402

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "benchproj"
version = "0.1"
requires-python = ">=3.8"
dependencies = []
"""


class Local:
    def __init__(self, python, dx, uv, index, work, args, log):
        self.py, self.dx, self.uv, self.index = python, dx, uv, index
        self.work, self.args, self.log = work, args, log
        self.env = cu.tool_env()
        self.rows: list[cu.Row] = []
        self.n = 0

    def fresh(self, stem: str) -> Path:
        self.n += 1
        p = self.work / f"{stem}-{self.n}"
        p.mkdir(parents=True)
        return p

    def project(self, tool: str) -> Path:
        p = self.fresh(f"{tool}-project")
        (p / "pyproject.toml").write_text(PYPROJECT)
        (p / "benchproj").mkdir()
        (p / "benchproj" / "__init__.py").write_text("GREETING = 'hello'\n")
        return p

    def sync(self, tool: str, cache: Path, project: Path) -> float:
        if tool == "dx-py":
            cmd = [self.dx, "--cache-dir", cache, "sync", "--python", self.py]
            return cu.must(cu.run(cmd, env=self.env, cwd=project, timeout=self.args.timeout), "dx-py sync")
        env = dict(self.env, UV_CACHE_DIR=str(cache))
        cmd = [self.uv, "sync", "--python", self.py, "--default-index", self.index]
        return cu.must(cu.run(cmd, env=env, cwd=project, timeout=self.args.timeout), "uv sync")

    def check(self, project: Path) -> None:
        """The project is installed editable: an edit shows without a sync."""
        (project / "benchproj" / "__init__.py").write_text("GREETING = 'edited'\n")
        code = "import benchproj; print(benchproj.GREETING)"
        python = str(project / ".venv" / "bin" / "python")
        p = subprocess.run([python, "-c", code], env=self.env, cwd=self.work, capture_output=True, text=True, timeout=60)
        if p.returncode != 0 or p.stdout.strip() != "edited":
            raise cu.TrialFailed(f"the project is not installed editable: {p.stdout}{p.stderr}")

    def add(self, metric: str, acc: cu.Trials, note: str = "") -> None:
        dx = acc.series("dx-py", "t") if self.dx else None
        uv = acc.series("uv", "t") if self.uv else None
        self.rows.append(cu.Row("local project", metric, dx, uv, note))

    def tools(self) -> list[str]:
        return [t for t, b in (("dx-py", self.dx), ("uv", self.uv)) if b]

    def bench(self) -> None:
        kept: dict[str, Path] = {}

        def cold(tool):
            def one(i):
                cache, project = self.fresh(f"{tool}-cache"), self.project(tool)
                t = self.sync(tool, cache, project)
                self.check(project)
                kept[tool] = cache
                return {"t": t}

            return one

        self.log("local project: cold")
        self.add("cold", cu.alternate(self.args.runs, {t: cold(t) for t in self.tools()}, cu.Trials(), self.log))

        def checkout(tool):
            return lambda i: {"t": self.sync(tool, kept[tool], self.project(tool))}

        self.log("local project: new checkout")
        acc = cu.alternate(self.args.runs, {t: checkout(t) for t in self.tools() if t in kept}, cu.Trials(), self.log)
        self.add("new checkout", acc, "cache kept, another path")

        projects = {}
        for t in self.tools():
            if t in kept:
                projects[t] = self.project(t)
                self.sync(t, kept[t], projects[t])

        def warm(tool):
            return lambda i: {"t": self.sync(tool, kept[tool], projects[tool])}

        self.log("local project: warm")
        acc = cu.alternate(self.args.runs, {t: warm(t) for t in projects}, cu.Trials(), self.log)
        self.add("warm", acc, "nothing changed")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dx-py", dest="dx_py")
    ap.add_argument("--uv", help="uv binary (default: target/bench-tools/uv-venv, installed when missing)")
    ap.add_argument("--skip-uv-install", action="store_true")
    ap.add_argument("--tools", default="dx-py,uv")
    ap.add_argument("--python")
    ap.add_argument("--sets-dir", default=str(cu.DEFAULT_SETS_DIR))
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    tools = [t for t in args.tools.split(",") if t]
    python = cu.find_python(args.python)
    index = pip_index_url(python)
    setup_failures: list[str] = []
    uv = dx = None
    if "uv" in tools:
        uv, note = cu.install_uv(args, python, cu.readme_uv_version(Path(args.sets_dir)), log)
        if uv is None:
            setup_failures.append(f"uv unavailable: {note}")
    if "dx-py" in tools:
        dx, note = cu.ensure_dx_py(args, log)
        if dx is None:
            setup_failures.append(f"dx-py unavailable: {note}")
    parent = cu.TARGET / "bench-tmp"
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="compare-local-", dir=parent)).resolve()
    now = _dt.datetime.now()
    meta = {
        "date": now.isoformat(timespec="seconds"),
        "host": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)",
        "python": str(python),
        "uv": cu.version_of([uv, "--version"], work) if uv else "unavailable",
        "dx-py": cu.version_of([dx, "--version"], work) if dx else "unavailable",
        "index": "the interpreter's pip default (both tools)",
        "runs": args.runs,
        "load average at start": "%.2f %.2f %.2f" % os.getloadavg(),
        "process spawn floor (/bin/true, median)": f"{cu.spawn_floor(args.runs, work) * 1000:.2f} ms",
    }
    b = Local(python, dx, uv, index, work, args, log)
    try:
        b.bench()
    finally:
        if not args.keep:
            cu.rmtree(work)
    meta["load average at end"] = "%.2f %.2f %.2f" % os.getloadavg()
    md = cu.markdown(meta, b.rows, setup_failures).replace("# dx-py vs uv", "# dx-py vs uv: local project sync", 1)
    out = Path(args.out) if args.out else cu.TARGET / "bench-results" / f"compare-local-{now:%Y-%m-%d-%H%M%S}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(md)
    out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "rows": [{"set": r.set, "metric": r.metric, "ratio": cu.ratio(r) or None,
                                             "dx-py": r.dx.to_json() if r.dx else None,
                                             "uv": r.uv.to_json() if r.uv else None} for r in b.rows]}, indent=2)
    )
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
