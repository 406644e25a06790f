#!/usr/bin/env python3
"""Time to first import through a lazy mount from a remote store served by nginx on loopback,
against uv installing the same wheels from the same nginx (a find-links page) then importing.

Python 3 standard library only; shares its setup with remote_install.py (nginx, the seed) and
compare_uv.py (uv, dx-py, the set's wheels). See benches/scripts/README.md.

1. A seed cache installs the set from the local wheels (with bytecode) and `dx-py store push`es
   the lock into `served/store/` (objects, sidecars, records); the wheels are linked into
   `served/wheels/`.
2. nginx (one foreground process, loopback, a free port) serves `served/` and logs the bytes of
   every response.
3. Trial by trial, alternating which tool goes first, each on an empty cache and a new venv:
   - dx-py: `mount VENV -r SET.txt --no-index --store-url http://…/store` (the seed's lock
     copied beside it: nothing is resolved), then
     `VENV/bin/python -c "import numpy, pandas"` (the objects those imports read are fetched by
     the mount's server on their first read), then unmount;
   - uv: `uv venv` + `uv pip install --no-index --find-links http://…/wheels/ -r SET.txt`, then
     the same import.
   The table gives the time to the first import's end (median, min–max), the command's own
   time, and the bytes nginx sent (by the time the command returned, and in all).
"""

from __future__ import annotations

import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_uv as cu  # noqa: E402
from remote_install import Nginx, log, parser, seeded, trials  # noqa: E402

IMPORTS = {"large": "numpy, pandas", "medium": "flask, django", "small": "requests"}


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    s = seeded(args, "remote-mount-")
    reqs, python, uv, uv_note, dx, work, env, exe, served, lock = (
        s.reqs, s.python, s.uv, s.uv_note, s.dx, s.work, s.env, s.exe, s.served, s.lock)
    imports = "import " + IMPORTS.get(args.set, ", ".join(cu.CHECK_MODULES[args.set]))
    server = Nginx(served, work)
    # tool -> [(command s, first import s, MB at command end, MB in all, requests in all)]
    samples: dict[str, list[tuple[float, float, int, int, int]]] = {"dx-py mount (lazy)": [], "uv": []}
    try:
        for trial, tool, run_dir in trials(args.runs, samples, work):
            cache, venv = run_dir / "cache", run_dir / "venv"
            before = server.offset()
            mounted = False
            try:
                if tool.startswith("dx-py"):
                    shutil.copy(lock, run_dir / "dx-py.dpl")
                    # The seed's lock is fresh for these requirements: `-r` resolves nothing.
                    cmd = [dx, "--cache-dir", cache, "mount", venv, "-r", reqs, "--no-index",
                           "--store-url", f"{server.url}/store", "--python", python]
                    mounted = True  # unmounted below, also when the command fails half-way
                    secs = exe(cmd, cwd=run_dir)
                else:
                    uvenv = {"UV_CACHE_DIR": str(cache)}
                    secs = exe([uv, "venv", venv, "--python", python], extra=uvenv)
                    secs += exe([uv, "pip", "install", "--no-index", "--find-links", f"{server.url}/wheels/",
                                 "-r", reqs, "--python", venv / "bin" / "python"], extra=uvenv)
                at_command, _ = server.bytes_since(before)
                first = exe([venv / "bin" / "python", "-c", imports])
                sent, requests = server.bytes_since(before)
            finally:
                if mounted:
                    cu.run([dx, "--cache-dir", cache, "unmount", venv], env=env, cwd=run_dir, timeout=60)
            samples[tool].append((secs, first, at_command, sent, requests))
            log(f"trial {trial + 1}: {tool}: command {secs:.2f} s + import {first:.2f} s, "
                f"{at_command / 1e6:.1f} MB at command end, {sent / 1e6:.1f} MB in {requests} requests")
            shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\nFirst `{imports}` of the {args.set} set from loopback nginx ({args.runs} trials, alternating)\n")
    print(f"dx-py: {cu.version_of([dx, '--version'], cu.REPO)}; uv: {cu.version_of([uv, '--version'], cu.REPO)} ({uv_note})\n")
    print("| tool | command + first import, median (min–max) | command | import | MB at command end | MB in all | requests |")
    print("|---|---|---|---|---|---|---|")
    totals = {}
    for tool, rows in samples.items():
        total = [r[0] + r[1] for r in rows]
        totals[tool] = statistics.median(total)
        print(
            f"| {tool} | {statistics.median(total):.2f} s ({min(total):.2f}–{max(total):.2f}) "
            f"| {statistics.median([r[0] for r in rows]):.2f} s | {statistics.median([r[1] for r in rows]):.2f} s "
            f"| {statistics.median([r[2] for r in rows]) / 1e6:.1f} | {statistics.median([r[3] for r in rows]) / 1e6:.1f} "
            f"| {rows[0][4]} |"
        )
    dx_total, uv_total = totals["dx-py mount (lazy)"], totals["uv"]
    print(f"\nratio (dx-py / uv, medians): {dx_total / uv_total:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
