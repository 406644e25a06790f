#!/usr/bin/env python3
"""Side-by-side timings of resolution: `dx-py lock` against uv on the unpinned benchmark sets.

Python 3 standard library only; shares its process, table and report helpers with compare_uv.py.
Both tools resolve `SET.in` for the same CPython 3.12 against the same index: the one the
interpreter's pip uses (dx-py's default; uv is given it with `--default-index`, read from pip the
same way). Metrics, each a whole process, tools alternating which goes first:

- `cold`: empty cache, `dx-py lock -r SET.in` / `uv pip compile SET.in` (one environment each).
- `warm`: the cache of a cold run kept, the output removed (pages revalidated as HTTP caching says).
- `offline`: the warm cache, `--offline`.
- `unchanged lock`: a project whose pyproject.toml lists SET.in, locked once; then `dx-py lock` /
  `uv lock` again with nothing changed (uv's lock is universal: it checks more, see README).
- `universal cold` / `universal warm`: one lock for every platform and Python from 3.9 on, `dx-py lock
  --universal -r SET.in --python-version 3.9` / `uv pip compile --universal --python-version 3.9
  SET.in`, with an empty cache and with the cache of a cold run kept.
- `project cold` / `project warm`: a project whose pyproject.toml lists SET.in with
  `requires-python = ">=3.9"`, locked for every platform and Python it allows: `dx-py lock` /
  `uv lock` (both universal), each trial in a new project without a lock, with an empty cache and
  with the cache of a cold run kept.
- `unchanged run`: the project synced; `dx-py run python -c pass` / `uv run python -c pass`, next to
  the floor of the venv's own `python -c pass` measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_uv as cu  # noqa: E402

METRICS = ("cold", "warm", "offline", "unchanged", "universal", "project")


# A universal lock for every platform and every Python from 3.9 on.
UNIVERSAL = ("--universal", "--python-version", "3.9")


def pip_index_url(python: Path) -> str:
    """The index the interpreter's pip uses by default (never written in this repository)."""
    code = "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    if out.returncode != 0 or not out.stdout.strip():
        sys.exit(f"cannot read pip's default index from {python}: {out.stderr.strip()}")
    return out.stdout.strip()


class Resolve:
    def __init__(self, name, reqs_in, python, dx, uv, index, work, args, log):
        self.name, self.reqs, self.py, self.dx, self.uv = name, reqs_in, python, dx, uv
        self.index, self.work, self.args, self.log = index, work, args, log
        self.env = cu.tool_env()
        self.rows: list[cu.Row] = []
        self.n = 0

    def fresh(self, stem: str) -> Path:
        self.n += 1
        p = self.work / f"{stem}-{self.n}"
        p.mkdir(parents=True)
        return p

    def dx_cmd(self, cache: Path, *rest) -> list:
        return [self.dx, "--cache-dir", cache, *rest]

    def uv_run(self, cache: Path, cmd: list, cwd: Path | None = None) -> cu.Proc:
        env = dict(self.env, UV_CACHE_DIR=str(cache))
        return cu.run([self.uv, *cmd], env=env, cwd=cwd or self.work, timeout=self.args.timeout)

    def dx_run(self, cmd: list, cwd: Path | None = None) -> cu.Proc:
        return cu.run(cmd, env=self.env, cwd=cwd or self.work, timeout=self.args.timeout)

    def dx_lock(self, cache: Path, out: Path, *extra) -> float:
        cmd = self.dx_cmd(cache, "lock", "-r", self.reqs, "--python", self.py, "-o", out, *extra)
        return cu.must(self.dx_run(cmd), "dx-py lock")

    def uv_compile(self, cache: Path, out: Path, *extra) -> float:
        cmd = ["pip", "compile", self.reqs, "--python", self.py, "--default-index", self.index]
        cmd += ["-o", out / "requirements.txt", "--quiet", *extra]
        return cu.must(self.uv_run(cache, cmd), "uv pip compile")

    def add(self, metric: str, acc: cu.Trials, note: str = "", part: str = "t") -> None:
        dx = acc.series("dx-py", part) if self.dx else None
        uv = acc.series("uv", part) if self.uv else None
        self.rows.append(cu.Row(self.name, metric, dx, uv, note))

    def trials(self) -> dict:
        out = {}
        if self.dx:
            out["dx-py"] = None
        if self.uv:
            out["uv"] = None
        return out

    def bench_cold_warm_offline(self, metrics: list[str]) -> None:
        cold = {}
        if self.dx:
            cold["dx-py"] = lambda i: {"t": self.dx_lock(self.fresh("dx-py-cache"), self.fresh("dx-out"))}
        if self.uv:
            cold["uv"] = lambda i: {"t": self.uv_compile(self.fresh("uv-cache"), self.fresh("uv-out"))}
        if "cold" in metrics:
            self.add("lock cold", cu.alternate(self.args.runs, cold, cu.Trials(), self.log))
        # One kept cache per tool for the warm and offline rows.
        kept = {t: self.fresh(f"{t}-cache") for t in cold}
        acc = cu.Trials()
        for t in kept:
            try:
                (self.dx_lock if t == "dx-py" else self.uv_compile)(kept[t], self.fresh(f"{t}-out"))
            except cu.TrialFailed as e:
                acc.fail(t, f"priming the cache: {e}")
        warm = {}
        if self.dx:
            warm["dx-py"] = lambda i: {"t": self.dx_lock(kept["dx-py"], self.fresh("dx-out"))}
        if self.uv:
            warm["uv"] = lambda i: {"t": self.uv_compile(kept["uv"], self.fresh("uv-out"))}
        if "warm" in metrics:
            self.add("lock warm", cu.alternate(self.args.runs, warm, acc, self.log))
        offline = {}
        if self.dx:
            offline["dx-py"] = lambda i: {"t": self.dx_lock(kept["dx-py"], self.fresh("dx-out"), "--offline")}
        if self.uv:
            offline["uv"] = lambda i: {"t": self.uv_compile(kept["uv"], self.fresh("uv-out"), "--offline")}
        if "offline" in metrics:
            self.add("lock offline", cu.alternate(self.args.runs, offline, cu.Trials(), self.log))

    def bench_universal(self) -> None:
        runs = {}
        if self.dx:
            runs["dx-py"] = lambda cache: self.dx_lock(cache, self.fresh("dx-out"), *UNIVERSAL)
        if self.uv:
            runs["uv"] = lambda cache: self.uv_compile(cache, self.fresh("uv-out"), *UNIVERSAL)
        cold = {t: (lambda i, f=f, t=t: {"t": f(self.fresh(f"{t}-ucache"))}) for t, f in runs.items()}
        self.add("universal cold", cu.alternate(self.args.runs, cold, cu.Trials(), self.log))
        # The cache of one more cold lock, kept for the warm rows.
        kept = {t: self.fresh(f"{t}-ucache-kept") for t in runs}
        for t, f in runs.items():
            f(kept[t])
        warm = {t: (lambda i, f=f, t=t: {"t": f(kept[t])}) for t, f in runs.items()}
        self.add("universal warm", cu.alternate(self.args.runs, warm, cu.Trials(), self.log))

    def project(self, tool: str, requires_python: str = ">=3.12") -> Path:
        proj = self.fresh(f"{tool}-project")
        deps = [ln.strip() for ln in Path(self.reqs).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        body = "\n".join(f'    "{d}",' for d in deps)
        (proj / "pyproject.toml").write_text(
            f'[project]\nname = "bench-{self.name}"\nversion = "0.1.0"\nrequires-python = "{requires_python}"\n'
            f"dependencies = [\n{body}\n]\n"
        )
        return proj

    def bench_project_lock(self) -> None:
        """`dx-py lock` / `uv lock` of a new project from Python 3.9 on, cold then warm."""
        runs = {}
        if self.dx:
            runs["dx-py"] = lambda cache: cu.must(
                self.dx_run(self.dx_cmd(cache, "lock", "--python", self.py), cwd=self.project("dx-py", ">=3.9")),
                "dx-py lock (project)",
            )
        if self.uv:
            runs["uv"] = lambda cache: cu.must(
                self.uv_run(cache, ["lock", "--python", self.py, "--default-index", self.index],
                            cwd=self.project("uv", ">=3.9")),
                "uv lock",
            )
        cold = {t: (lambda i, f=f, t=t: {"t": f(self.fresh(f"{t}-pcache"))}) for t, f in runs.items()}
        self.add("project lock cold", cu.alternate(self.args.runs, cold, cu.Trials(), self.log))
        kept = {t: self.fresh(f"{t}-pcache-kept") for t in runs}
        acc = cu.Trials()
        for t, f in runs.items():
            try:
                f(kept[t])
            except cu.TrialFailed as e:
                acc.fail(t, f"priming the cache: {e}")
        warm = {t: (lambda i, f=f, t=t: {"t": f(kept[t])}) for t, f in runs.items()}
        self.add("project lock warm", cu.alternate(self.args.runs, warm, acc, self.log))

    def bench_unchanged(self) -> None:
        setup = cu.Trials()
        projects, caches = {}, {}
        for t in self.trials():
            projects[t], caches[t] = self.project(t), self.fresh(f"{t}-cache")
            p = projects[t]
            if t == "dx-py":
                steps = [self.dx_cmd(caches[t], "sync", "--python", self.py)]
                go = lambda c, p=p: self.dx_run(c, cwd=p)  # noqa: E731
            else:
                steps = [["sync", "--python", self.py, "--default-index", self.index]]
                go = lambda c, t=t, p=p: self.uv_run(caches[t], c, cwd=p)  # noqa: E731
            for step in steps:
                proc = go(step)
                if not proc.ok:
                    setup.fail(t, f"setting up the project: {proc.tail}")
        lock, run, floor = {}, {}, {}
        for t in self.trials():
            p = projects[t]
            if t == "dx-py":
                lock[t] = lambda i, p=p: {"t": cu.must(self.dx_run(self.dx_cmd(caches["dx-py"], "lock"), cwd=p), "dx-py lock")}
                run[t] = lambda i, p=p: {
                    "t": cu.must(self.dx_run(self.dx_cmd(caches["dx-py"], "run", "python", "-c", "pass"), cwd=p), "dx-py run")
                }
            else:
                lock[t] = lambda i, p=p: {
                    "t": cu.must(self.uv_run(caches["uv"], ["lock", "--default-index", self.index], cwd=p), "uv lock")
                }
                run[t] = lambda i, p=p: {
                    "t": cu.must(self.uv_run(caches["uv"], ["run", "--default-index", self.index, "python", "-c", "pass"], cwd=p), "uv run")
                }
            floor[t] = lambda i, p=p: {"t": cu.must(self.dx_run([p / ".venv" / "bin" / "python", "-c", "pass"], cwd=p), "python -c pass")}
        acc_lock = cu.Trials()
        acc_lock.error = dict(setup.error)
        self.add("unchanged lock", cu.alternate(self.args.runs, lock, acc_lock, self.log))
        acc_run = cu.Trials()
        acc_run.error = dict(setup.error)
        self.add("unchanged run python -c pass", cu.alternate(self.args.runs, run, acc_run, self.log))
        acc_floor = cu.Trials()
        acc_floor.error = dict(setup.error)
        self.add("floor: venv python -c pass", cu.alternate(self.args.runs, floor, acc_floor, self.log), "no tool")


def setup(args, prefix: str, log):
    """The interpreter, its pip's index, the tools, setup failures, a work directory under
    target/bench-tmp and the report's header."""
    python = cu.find_python(args.python)
    index = pip_index_url(python)
    uv, dx, failures = cu.side_by_side_tools(args, python, log)
    parent = cu.TARGET / "bench-tmp"
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent)).resolve()
    meta = cu.side_by_side_meta(_dt.datetime.now(), python, uv, dx, args.runs, work)
    return python, index, uv, dx, failures, work, meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="small,medium,large")
    ap.add_argument("--metrics", default=",".join(METRICS))
    cu.side_by_side_args(ap)
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    metrics = [m for m in args.metrics.split(",") if m]
    python, index, uv, dx, setup_failures, work, meta = setup(args, "compare-resolve-", log)
    rows: list[cu.Row] = []
    try:
        for s in [x for x in args.sets.split(",") if x]:
            reqs = Path(args.sets_dir) / f"{s}.in"
            w = work / s
            w.mkdir()
            b = Resolve(s, reqs, python, dx, uv, index, w, args, log)
            if {"cold", "warm", "offline"} & set(metrics):
                b.bench_cold_warm_offline(metrics)
            if "unchanged" in metrics:
                b.bench_unchanged()
            if "universal" in metrics:
                b.bench_universal()
            if "project" in metrics:
                b.bench_project_lock()
            rows += b.rows
            print(cu.markdown(None, b.rows, []), file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            cu.rmtree(work)
    print(cu.write_side_by_side(meta, rows, setup_failures, "resolution", "compare-resolve", args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
