#!/usr/bin/env python3
"""Side-by-side timings of building and installing an sdist-only package: dx-py against uv.

Python 3 standard library only; shares its process, table and report helpers with compare_uv.py.
The package (default `six==1.16.0`) is fetched once with `pip download --no-binary :all:`, its
build backend (setuptools, wheel) with `pip download --only-binary :all:`; both are served by a
local PEP 503 index (`python -m http.server` on 127.0.0.1, stopped by its pid at the end), the one
index both tools are given. Every process gets UV_PYTHON_DOWNLOADS=never and the same CPython.
Metrics, each a whole process (or the sum of uv's two), tools alternating which goes first:

- `cold`: empty cache, new project directory: `dx-py install -r req.txt` (locks, builds, installs,
  makes the venv) / `uv venv` + `uv pip install -r req.txt` (builds, installs).
- `warm, new project`: the cache of a cold run kept (the built wheel cached), a new project
  directory: the same commands.
- `warm, same project`: the project of a warm run, its venv removed: the same commands again (dx-py
  finds its lock fresh and the layout cached).
- `warm, venv in sync`: the same command once more with nothing changed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_uv as cu  # noqa: E402
import compare_uv_resolve as cur  # noqa: E402

BACKEND = ("setuptools==75.3.0", "wheel==0.45.1")


def download(python: Path, dest: Path, args: list[str], timeout: float) -> None:
    """`pip download` into `dest` once (a `.complete` marker names what it holds)."""
    marker = dest / ".complete"
    want = " ".join(args)
    if marker.exists() and marker.read_text().strip() == want:
        return
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-m", "pip", "download", "-q", "--no-deps", "-d", dest, *args]
    p = cu.run(cmd, env=cu.pip_env(), cwd=cu.REPO, timeout=timeout)
    if not p.ok:
        sys.exit(f"pip download {want} failed: {p.tail}")
    marker.write_text(want + "\n")


def simple_index(files: list[Path], root: Path) -> None:
    """A PEP 503 tree under `root`: `simple/{name}/index.html` linking `files/{file}#sha256=…`."""
    by_project: dict[str, list[Path]] = {}
    for f in files:
        stem = f.name.split("-")[0]
        by_project.setdefault(stem.lower().replace("_", "-").replace(".", "-"), []).append(f)
    (root / "files").mkdir(parents=True, exist_ok=True)
    for project, fs in by_project.items():
        d = root / "simple" / project
        d.mkdir(parents=True, exist_ok=True)
        links = []
        for f in fs:
            shutil.copy(f, root / "files" / f.name)
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            links.append(f'<a href="../../files/{f.name}#sha256={digest}">{f.name}</a><br/>')
        (d / "index.html").write_text("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bench(cur.Resolve):
    """The resolution benchmark's tools, work directory and rows, timing installs instead."""

    def __init__(self, python, dx, uv, index, reqs, work, args, log):
        super().__init__(args.package, reqs, python, dx, uv, index, work, args, log)

    def project(self, tool: str) -> Path:
        p = self.fresh(f"{tool}-project")
        shutil.copy(self.reqs, p / "requirements.txt")
        return p

    def dx_install(self, cache: Path, project: Path) -> float:
        cmd = [self.dx, "--cache-dir", cache, "install", "-r", "requirements.txt", "--python", self.py]
        cmd += ["--index-url", self.index, "--venv", ".venv"]
        return cu.must(cu.run(cmd, env=self.env, cwd=project, timeout=self.args.timeout), "dx-py install")

    def uv_install(self, cache: Path, project: Path) -> float:
        env = dict(self.env, UV_CACHE_DIR=str(cache))
        t = 0.0
        if not (project / ".venv").exists():
            venv = [self.uv, "venv", "--python", self.py, ".venv"]
            t += cu.must(cu.run(venv, env=env, cwd=project, timeout=self.args.timeout), "uv venv")
        cmd = [self.uv, "pip", "install", "-r", "requirements.txt", "--python", ".venv/bin/python"]
        cmd += ["--index-url", self.index]
        return t + cu.must(cu.run(cmd, env=env, cwd=project, timeout=self.args.timeout), "uv pip install")

    def install(self, tool: str, cache: Path, project: Path) -> float:
        return (self.dx_install if tool == "dx-py" else self.uv_install)(cache, project)

    def run(self) -> None:
        tools = list(self.trials())
        cold = {t: (lambda i, t=t: {"t": self.install(t, self.fresh(f"{t}-cache"), self.project(t))}) for t in tools}
        self.add("cold (build + install)", cu.alternate(self.args.runs, cold, cu.Trials(), self.log))
        kept = {t: self.fresh(f"{t}-cache-kept") for t in tools}
        prime = cu.Trials()
        for t in tools:
            try:
                self.install(t, kept[t], self.project(t))
            except cu.TrialFailed as e:
                prime.fail(t, f"priming the cache: {e}")
        new = {t: (lambda i, t=t: {"t": self.install(t, kept[t], self.project(t))}) for t in tools}
        acc = cu.Trials()
        acc.error = dict(prime.error)
        self.add("warm, new project", cu.alternate(self.args.runs, new, acc, self.log), "built wheel cached")
        projects = {t: self.project(t) for t in tools}
        for t in tools:
            try:
                self.install(t, kept[t], projects[t])
            except cu.TrialFailed as e:
                prime.fail(t, f"priming the project: {e}")

        def again(t: str) -> float:
            cu.rmtree(projects[t] / ".venv")
            return self.install(t, kept[t], projects[t])

        acc = cu.Trials()
        acc.error = dict(prime.error)
        same = {t: (lambda i, t=t: {"t": again(t)}) for t in tools}
        self.add("warm, same project", cu.alternate(self.args.runs, same, acc, self.log), "venv removed")
        acc = cu.Trials()
        acc.error = dict(prime.error)
        synced = {t: (lambda i, t=t: {"t": self.install(t, kept[t], projects[t])}) for t in tools}
        self.add("warm, venv in sync", cu.alternate(self.args.runs, synced, acc, self.log), "nothing to do")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default="six==1.16.0", help="an sdist-only requirement (pinned)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--python", help="CPython to use (default: newest ~/.pyenv 3.12)")
    ap.add_argument("--dx-py", help="dx-py binary (default: target/release/dx-py, built if missing)")
    ap.add_argument("--uv", help="uv binary (default: pip install uv into target/bench-tools/uv-venv)")
    ap.add_argument("--skip-uv-install", action="store_true", help="reuse target/bench-tools/uv-venv")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--out", help="write the markdown report here (and .json next to it)")
    args = ap.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731

    python = cu.find_python(args.python)
    dx, dx_note = cu.ensure_dx_py(args, log)
    dx = dx.resolve() if dx else None  # the tools run in project directories
    uv, uv_note = cu.install_uv(args, python, None, log)
    if dx is None and uv is None:
        sys.exit(f"neither tool is available: dx-py: {dx_note}; uv: {uv_note}")
    dl = cu.TARGET / "bench-sdist"
    download(python, dl / "sdist", ["--no-binary", ":all:", args.package], args.timeout)
    download(python, dl / "backend", ["--only-binary", ":all:", *BACKEND], args.timeout)
    files = [f for d in ("sdist", "backend") for f in (dl / d).iterdir() if f.name != ".complete"]

    with tempfile.TemporaryDirectory(prefix="dx-py-bench-sdist-") as tmp:
        work = Path(tmp)
        simple_index(files, work / "index")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", work / "index"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            index = f"http://127.0.0.1:{port}/simple/"
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            reqs = work / "requirements.txt"
            reqs.write_text(args.package + "\n")
            bench = Bench(python, dx, uv, index, reqs, work, args, log)
            bench.run()
        finally:
            server.terminate()
            server.wait(timeout=10)

    meta = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": f"{python} ({cu.version_of([python, '--version'], cu.REPO)})",
        "dx-py": f"{cu.version_of([dx, '--version'], cu.REPO) if dx else 'n/a'} {dx_note}",
        "uv": f"{cu.version_of([uv, '--version'], cu.REPO) if uv else 'n/a'} {uv_note}",
        "package": f"{args.package} from its sdist; backend {', '.join(BACKEND)}; a local index on 127.0.0.1",
        "command": "python3 benches/scripts/compare_uv_sdist.py " + " ".join(argv or sys.argv[1:]),
    }
    report = cu.markdown(meta, bench.rows, [])
    print(report)
    if args.out:
        Path(args.out).write_text(report)
        rows = [
            {"metric": r.metric, "dx-py": r.dx.to_json() if r.dx else None, "uv": r.uv.to_json() if r.uv else None}
            for r in bench.rows
        ]
        Path(args.out).with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
