#!/usr/bin/env python3
"""A/B of two dx-py binaries: the first `import` right after a fresh `dx-py mount`, alternating.

Standard library only; run as root with /dev/fuse. Each binary gets its own cache and project
(one `dx-py install` of the set, then one mount that builds the tree); then, per pair, each
binary in turn (order alternating) mounts, the import runs once in the mount, the mount
server's CPU time (user+sys from /proc) is read, and it unmounts. Prints medians, and the
per-pair ratio B/A, which is what a shared, noisy machine can still compare.

    python3 benches/scripts/ab_first_import.py --a OLD/dx-py --b NEW/dx-py --pairs 20 \\
        --wheels target/bench-wheels/large --reqs /work/shared/bench-sets/large.txt
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="the baseline dx-py binary")
    ap.add_argument("--b", required=True, help="the dx-py binary under test")
    ap.add_argument("--wheels", required=True, help="directory of the set's wheels")
    ap.add_argument("--reqs", required=True, help="the set's pinned requirements")
    ap.add_argument("--python", default=str(max(Path.home().glob(".pyenv/versions/3.12.*/bin/python3.12"), default="python3.12")))
    ap.add_argument("--import", dest="imp", default="import numpy, pandas")
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--work-dir", help="parent of the temporary directory")
    args = ap.parse_args()
    # Commands run in their own directories: every path absolute.
    for key in ("a", "b", "wheels", "reqs"):
        setattr(args, key, str(Path(getattr(args, key)).resolve()))
    if args.work_dir:
        args.work_dir = str(Path(args.work_dir).resolve())
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "DX_PY_")) and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "VIRTUAL_ENV")}

    def sh(cmd, cwd):
        p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        if p.returncode:
            sys.exit(f"{' '.join(map(str, cmd))}: {p.stderr[-2000:]}")
        return p.stdout

    work = Path(tempfile.mkdtemp(prefix="ab-first-import-", dir=args.work_dir))
    sides = {}
    for name, binary in (("a", args.a), ("b", args.b)):
        d = work / name
        d.mkdir()
        sides[name] = (binary, d, d / "cache")

    def mount(name):
        binary, d, cache = sides[name]
        sh([binary, "--cache-dir", cache, "mount", d / "mnt", "--lock", d / "dx-py.dpl", "--find-links",
            args.wheels, "--no-index", "--python", args.python], d)

    def unmount(name):
        binary, d, cache = sides[name]
        sh([binary, "--cache-dir", cache, "unmount", d / "mnt"], d)

    def server_cpu(mnt: Path, cache: Path) -> float:
        # The server's pid is recorded in {cache}/mounts/<key>.pid as "<pid>\n<mount point>\n"
        # (its command line names no mount point: it reads its spec on stdin).
        for rec in (Path(cache) / "mounts").glob("*.pid"):
            try:
                pid, point = rec.read_text().split("\n")[:2]
                if Path(point) != Path(mnt).resolve() and point != str(mnt):
                    continue
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, ValueError):
                continue
        return float("nan")

    wall = {"a": [], "b": []}
    cpu = {"a": [], "b": []}
    try:
        for name, (binary, d, cache) in sides.items():
            sh([binary, "--cache-dir", cache, "install", "-r", args.reqs, "--find-links", args.wheels,
                "--no-index", "--venv", d / "venv", "--python", args.python], d)
        for name in sides:  # the first mount builds the tree
            mount(name)
            unmount(name)
        for i in range(args.pairs):
            for name in ("a", "b") if i % 2 == 0 else ("b", "a"):
                mount(name)
                try:
                    t = time.perf_counter()
                    sh([sides[name][1] / "mnt/bin/python", "-c", args.imp], sides[name][1])
                    wall[name].append(time.perf_counter() - t)
                    cpu[name].append(server_cpu(sides[name][1] / "mnt", sides[name][2]))
                finally:
                    unmount(name)
    finally:
        for name in sides:
            subprocess.run(["umount", "-l", str(sides[name][1] / "mnt")], capture_output=True)
        subprocess.run(["rm", "-rf", str(work)], capture_output=True)
    ms = lambda xs: " ".join(f"{x * 1000:.0f}" for x in xs)  # noqa: E731
    for name, binary in (("a", args.a), ("b", args.b)):
        print(f"{name} ({binary}): wall median {statistics.median(wall[name]) * 1000:.0f} ms, min {min(wall[name]) * 1000:.0f} ms; "
              f"server CPU median {statistics.median(cpu[name]) * 1000:.0f} ms  [{ms(wall[name])}]")
    ratios = sorted(b / a for a, b in zip(wall["a"], wall["b"]))
    print(f"per-pair wall b/a: median {statistics.median(ratios):.3f}  [{' '.join(f'{r:.2f}' for r in ratios)}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
