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
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_uv as cu  # noqa: E402
from compare_uv_resolve import Resolve, setup  # noqa: E402

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


class Local(Resolve):
    """The local project's rows; the process helpers are those of the resolution script."""

    def __init__(self, python, dx, uv, index, work, args, log):
        super().__init__("local project", None, python, dx, uv, index, work, args, log)

    def project(self, tool: str) -> Path:
        p = self.fresh(f"{tool}-project")
        (p / "pyproject.toml").write_text(PYPROJECT)
        (p / "benchproj").mkdir()
        (p / "benchproj" / "__init__.py").write_text("GREETING = 'hello'\n")
        return p

    def sync(self, tool: str, cache: Path, project: Path) -> float:
        if tool == "dx-py":
            cmd = self.dx_cmd(cache, "sync", "--python", self.py)
            return cu.must(self.dx_run(cmd, cwd=project), "dx-py sync")
        cmd = ["sync", "--python", self.py, "--default-index", self.index]
        return cu.must(self.uv_run(cache, cmd, cwd=project), "uv sync")

    def check(self, project: Path) -> None:
        """The project is installed editable: an edit shows without a sync."""
        (project / "benchproj" / "__init__.py").write_text("GREETING = 'edited'\n")
        code = "import benchproj; print(benchproj.GREETING)"
        python = str(project / ".venv" / "bin" / "python")
        p = subprocess.run([python, "-c", code], env=self.env, cwd=self.work, capture_output=True, text=True, timeout=60)
        if p.returncode != 0 or p.stdout.strip() != "edited":
            raise cu.TrialFailed(f"the project is not installed editable: {p.stdout}{p.stderr}")

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
    cu.side_by_side_args(ap)
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    python, index, uv, dx, setup_failures, work, meta = setup(args, "compare-local-", log)
    b = Local(python, dx, uv, index, work, args, log)
    try:
        b.bench()
    finally:
        if not args.keep:
            cu.rmtree(work)
    print(cu.write_side_by_side(meta, b.rows, setup_failures, "local project sync", "compare-local", args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
