#!/usr/bin/env python3
"""Cold install from a remote store served by nginx on loopback, against uv installing the same
wheels from the same nginx (a find-links page).

Python 3 standard library only; shares its setup with compare_uv.py (uv, dx-py, the set's wheels).
See benches/scripts/README.md.

1. A seed cache installs the set from the local wheels (with bytecode) and `dx-py store push`es
   the lock into `served/store/`; the wheels are linked into `served/wheels/`.
2. nginx (one foreground process, loopback, a free port) serves `served/` with an autoindex
   page for `wheels/` and logs the bytes of every response.
3. Trial by trial, alternating which tool goes first, each on an empty cache and a new venv:
   - dx-py: `install --lock dx-py.dpl --no-index --store-url http://…/store` (objects and
     bytecode packs fetched, nothing compiled);
   - uv: `uv venv` + `uv pip install --no-index --find-links http://…/wheels/ -r SET.txt`,
     without and with `--compile-bytecode`.
   The table gives wall times (median, min–max) and the bytes nginx sent per trial.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_uv as cu  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx serving `root` on 127.0.0.1; stopped by its pid."""

    def __init__(self, root: Path, work: Path):
        self.port = free_port()
        self.log = work / "access.log"
        conf = work / "nginx.conf"
        conf.write_text(
            f"daemon off;\nmaster_process off;\npid {work}/nginx.pid;\nerror_log {work}/error.log;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "  log_format bytes '$request_uri $status $body_bytes_sent';\n"
            f"  access_log {self.log} bytes;\n"
            f"  client_body_temp_path {work}/body;\n  proxy_temp_path {work}/proxy;\n"
            f"  fastcgi_temp_path {work}/fastcgi;\n  uwsgi_temp_path {work}/uwsgi;\n"
            f"  scgi_temp_path {work}/scgi;\n"
            "  sendfile on;\n  keepalive_requests 10000;\n"
            f"  server {{\n    listen 127.0.0.1:{self.port};\n    root {root};\n"
            "    location /wheels/ { autoindex on; }\n  }\n}\n"
        )
        self.proc = subprocess.Popen(
            ["nginx", "-p", str(work), "-e", str(work / "error.log"), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"nginx did not start: {(work / 'error.log').read_text()}")
                time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bytes_since(self, offset: int) -> tuple[int, int]:
        """(bytes sent, requests) logged after `offset`; and the new offset via `offset()`."""
        with open(self.log, "rb") as f:
            f.seek(offset)
            lines = f.read().decode().splitlines()
        return sum(int(ln.rsplit(" ", 1)[1]) for ln in lines if ln), len(lines)

    def offset(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def parser(doc: str) -> argparse.ArgumentParser:
    """The options both remote benchmarks take."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default="large", help="benchmark set (default: %(default)s)")
    ap.add_argument("--runs", type=int, default=3, help="trials per tool (default: %(default)s)")
    ap.add_argument("--dx-py", dest="dx_py", help=f"dx-py binary (default: {cu.DEFAULT_DX_PY})")
    ap.add_argument("--uv", help="use this uv binary instead of installing one")
    ap.add_argument("--skip-uv-install", action="store_true", help="reuse target/bench-tools/uv-venv")
    ap.add_argument("--python", help="CPython 3.12 interpreter (default: newest ~/.pyenv/versions/3.12.*)")
    ap.add_argument("--sets-dir", default=str(cu.DEFAULT_SETS_DIR))
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    return ap


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def seeded(args, prefix: str) -> SimpleNamespace:
    """uv, dx-py and the set's wheels found; a work directory whose `served/` holds the wheels
    (`served/wheels/`) and the lock pushed by a seed install (`served/store/`); `exe` runs a
    timed command there. Exits when something is missing."""
    if not shutil.which("nginx"):
        sys.exit("nginx is not installed (apt-get install nginx)")
    reqs = Path(args.sets_dir) / f"{args.set}.txt"
    python = cu.find_python(args.python)
    uv, uv_note = cu.install_uv(args, python, cu.readme_uv_version(Path(args.sets_dir)), log)
    dx, dx_note = cu.ensure_dx_py(args, log)
    if uv is None or dx is None:
        sys.exit(f"setup failed: uv: {uv_note}; dx-py: {dx_note}")
    wheels, _ = cu.ensure_wheels(args.set, reqs, python, args, log)
    if wheels is None:
        sys.exit("the set's wheels could not be downloaded")

    (cu.TARGET / "bench-tmp").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=cu.TARGET / "bench-tmp"))
    env = cu.tool_env()

    def exe(cmd, cwd=work, extra=None) -> float:
        p = cu.run(cmd, env=dict(env, **(extra or {})), cwd=cwd, timeout=args.timeout)
        return cu.must(p, " ".join(str(c) for c in cmd[:4]))

    served = work / "served"
    (served / "wheels").mkdir(parents=True)
    for w in wheels.glob("*.whl"):
        os.link(w, served / "wheels" / w.name)
    seed = work / "seed"
    seed.mkdir()
    log("seeding: install into a seed cache, then store push")
    exe([dx, "--cache-dir", seed / "cache", "install", "-r", reqs, "--find-links", wheels,
         "--no-index", "--venv", seed / "venv", "--python", python], cwd=seed)
    exe([dx, "--cache-dir", seed / "cache", "store", "push", served / "store", "--lock", "dx-py.dpl"], cwd=seed)
    return SimpleNamespace(reqs=reqs, python=python, uv=uv, uv_note=uv_note, dx=dx, work=work, env=env,
                           exe=exe, served=served, lock=seed / "dx-py.dpl")


def trials(runs: int, tools, work: Path):
    """`(trial, tool, run_dir)` for every trial of every tool, alternating which tool goes
    first (the machine is shared: the noise falls on both); `run_dir` is new and empty."""
    for trial in range(runs):
        order = list(tools)
        if trial % 2:
            order.reverse()
        for tool in order:
            run_dir = work / f"{tool.replace(' ', '_')}-{trial}"
            run_dir.mkdir()
            os.sync()
            yield trial, tool, run_dir


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    s = seeded(args, "remote-")
    reqs, python, uv, uv_note, dx, work, exe, served, lock = (
        s.reqs, s.python, s.uv, s.uv_note, s.dx, s.work, s.exe, s.served, s.lock)
    server = Nginx(served, work)
    samples: dict[str, list[tuple[float, int, int]]] = {"dx-py remote": [], "uv": [], "uv --compile-bytecode": []}
    try:
        for trial, tool, run_dir in trials(args.runs, samples, work):
            cache, venv = run_dir / "cache", run_dir / "venv"
            before = server.offset()
            if tool == "dx-py remote":
                shutil.copy(lock, run_dir / "dx-py.dpl")
                cmd = [dx, "--cache-dir", cache, "install", "--lock", "dx-py.dpl", "--no-index",
                       "--store-url", f"{server.url}/store", "--venv", venv, "--python", python]
                secs = exe(cmd, cwd=run_dir)
            else:
                uvenv = {"UV_CACHE_DIR": str(cache)}
                secs = exe([uv, "venv", venv, "--python", python], extra=uvenv)
                cmd = [uv, "pip", "install", "--no-index", "--find-links", f"{server.url}/wheels/",
                       "-r", reqs, "--python", venv / "bin" / "python"]
                if "compile" in tool:
                    cmd.append("--compile-bytecode")
                secs += exe(cmd, extra=uvenv)
            sent, requests = server.bytes_since(before)
            exe([venv / "bin" / "python", "-c", "import " + ", ".join(cu.CHECK_MODULES[args.set])])
            samples[tool].append((secs, sent, requests))
            log(f"trial {trial + 1}: {tool}: {secs:.2f} s, {sent / 1e6:.1f} MB in {requests} requests")
            shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\nCold install of the {args.set} set over loopback nginx ({args.runs} trials, alternating)\n")
    print(f"dx-py: {cu.version_of([dx, '--version'], cu.REPO)}; uv: {cu.version_of([uv, '--version'], cu.REPO)} ({uv_note})\n")
    print("| tool | wall median (min–max) | bytes fetched | requests |")
    print("|---|---|---|---|")
    for tool, rows in samples.items():
        secs = [r[0] for r in rows]
        print(
            f"| {tool} | {statistics.median(secs):.2f} s ({min(secs):.2f}–{max(secs):.2f}) "
            f"| {statistics.median([r[1] for r in rows]) / 1e6:.1f} MB | {rows[0][2]} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
