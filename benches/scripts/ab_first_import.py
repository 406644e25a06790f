#!/usr/bin/env python3
"""A/B of the first `import` right after a fresh `dx-py mount`, alternating: two binaries, or one
binary with two environments (`--b-env DX_PY_MOUNT_PASSTHROUGH=0`), and optionally the layout venv.

Standard library only; run as root with /dev/fuse. Each binary gets its own cache and project
(one `dx-py install` of the set, which also leaves the layout venv, then one mount that builds
the tree and imports once, which leaves the trace later mounts prewarm from); then, per round,
each side in turn (order rotating) runs: a mount side mounts (timed: `mount + first import` is
reported too, against the layout's first import), the import runs once in the mount, the mount
server's CPU time (user+sys from /proc) is read, and it unmounts; the `layout` side (`--layout`: the venv `dx-py install` made with binary B) runs the
same import. With `--drop-caches`, `sync; echo 3 > /proc/sys/vm/drop_caches` comes before each
side's trial (a mount side: after the previous unmount, before mounting), so every side starts
from the same empty page cache. Mount servers run with `DX_PY_LOG=info` and their request counts
(lookups, opens, reads, ioctls, …: the line `requests: …` of the server's log) are reported,
and so is the prewarm's own time (the line `prewarmed: … in X ms`).
Prints medians, and the per-round ratio of each side to A, which is what a shared, noisy machine
can still compare.

    python3 benches/scripts/ab_first_import.py --a OLD/dx-py --b NEW/dx-py --pairs 20 \\
        --wheels target/bench-wheels/large --reqs /work/shared/bench-sets/large.txt
    python3 benches/scripts/ab_first_import.py --a NEW/dx-py --b NEW/dx-py \\
        --b-env DX_PY_MOUNT_PASSTHROUGH=0 --layout --drop-caches --pairs 10 \\
        --wheels target/bench-wheels/large --reqs /work/shared/bench-sets/large.txt
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mount_imports as mi  # noqa: E402  (our own helpers: page-cache eviction)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="the baseline dx-py binary")
    ap.add_argument("--b", required=True, help="the dx-py binary under test")
    ap.add_argument("--a-env", action="append", default=[], metavar="K=V", help="environment of side A's commands")
    ap.add_argument("--b-env", action="append", default=[], metavar="K=V", help="environment of side B's commands")
    ap.add_argument("--layout", action="store_true", help="also time the layout venv that `dx-py install` made (binary B)")
    ap.add_argument("--drop-caches", action="store_true", help="sync; echo 3 > /proc/sys/vm/drop_caches before each trial")
    ap.add_argument("--evict", action="store_true",
                    help="before each trial, evict every file of both caches (packs, unpacked copies, layouts) from the page cache "
                         "(posix_fadvise DONTNEED): the set's bytes cold, the interpreter and the rest of the machine left alone")
    ap.add_argument("--b-nice", type=int, metavar="N",
                    help="set side B's mount server threads to nice N after mounting (an experiment: does the server's priority matter?)")
    ap.add_argument("--warm", type=int, default=0, metavar="N", help="after the first import, time N more (warm) imports per trial")
    ap.add_argument("--wheels", required=True, help="directory of the set's wheels")
    ap.add_argument("--reqs", required=True, help="the set's pinned requirements")
    ap.add_argument("--python", default=str(max(Path.home().glob(".pyenv/versions/3.12.*/bin/python3.12"), default="python3.12")))
    ap.add_argument("--import", dest="imp", default="import numpy, pandas")
    ap.add_argument("--pairs", type=int, default=20, help="rounds (each side once per round)")
    ap.add_argument("--work-dir", help="parent of the temporary directory")
    args = ap.parse_args()
    # Commands run in their own directories: every path absolute.
    for key in ("a", "b", "wheels", "reqs"):
        setattr(args, key, str(Path(getattr(args, key)).resolve()))
    if args.work_dir:
        args.work_dir = str(Path(args.work_dir).resolve())
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("PIP_", "UV_", "DX_PY_")) and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "VIRTUAL_ENV")}
    base_env["DX_PY_LOG"] = "info"

    def env_of(pairs):
        env = dict(base_env)
        for kv in pairs:
            k, _, v = kv.partition("=")
            env[k] = v
        return env

    def sh(cmd, cwd, env):
        p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        if p.returncode:
            sys.exit(f"{' '.join(map(str, cmd))}: {p.stderr[-2000:]}")
        return p.stdout

    def drop_caches():
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")

    def evict():
        for _, _, cache, _ in sides.values():
            mi.evict(os.path.join(root, f) for root, _, files in os.walk(cache) for f in files)

    def before_trial():
        if args.drop_caches:
            drop_caches()
        if args.evict:
            evict()

    def timed_imports(python, d):
        t = time.perf_counter()
        sh([python, "-c", args.imp], d, base_env)
        first = time.perf_counter() - t
        warm = []
        for _ in range(args.warm):
            t = time.perf_counter()
            sh([python, "-c", args.imp], d, base_env)
            warm.append(time.perf_counter() - t)
        return first, warm

    work = Path(tempfile.mkdtemp(prefix="ab-first-import-", dir=args.work_dir))
    # name -> (binary, directory, cache, environment); the same binary gets one cache.
    sides = {}
    for name, binary, extra in (("a", args.a, args.a_env), ("b", args.b, args.b_env)):
        d = work / name
        d.mkdir()
        sides[name] = (binary, d, d / "cache", env_of(extra))

    def mount(name):
        binary, d, cache, env = sides[name]
        sh([binary, "--cache-dir", cache, "mount", d / "mnt", "--lock", d / "dx-py.dpl", "--find-links",
            args.wheels, "--no-index", "--python", args.python], d, env)

    def unmount(name):
        binary, d, cache, env = sides[name]
        sh([binary, "--cache-dir", cache, "unmount", d / "mnt"], d, env)

    def server(mnt: Path, cache: Path) -> tuple[str, Path] | None:
        # The server's pid is recorded in {cache}/mounts/<key>.pid as "<pid>\n<mount point>\n"
        # (its command line names no mount point: it reads its spec on stdin); its log beside it.
        for rec in (Path(cache) / "mounts").glob("*.pid"):
            try:
                pid, point = rec.read_text().split("\n")[:2]
            except (OSError, ValueError):
                continue
            if Path(point) == Path(mnt).resolve() or point == str(mnt):
                return pid, rec.with_suffix(".log")
        return None

    def server_cpu(pid: str) -> float:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            return float("nan")

    def requests_of(log: Path, pid: str) -> dict[str, int]:
        # The server writes the line as it exits, just after the unmount returns.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                lines = [l for l in log.read_text().splitlines() if "requests:" in l]
            except OSError:
                lines = []
            if lines and not Path(f"/proc/{pid}").exists():
                return {k: int(v) for k, v in re.findall(r"([a-z]+) (\d+)", lines[-1].split("requests:", 1)[1])}
            time.sleep(0.02)
        return {}

    def prewarm_of(log: Path) -> list[float]:
        # "prewarmed: N directories listed, M names looked up (K skipped) in X ms", this mount's
        # (the log is appended to by every mount of this mount point).
        try:
            lines = [l for l in log.read_text().splitlines() if "prewarmed:" in l]
        except OSError:
            return []
        m = re.search(r"in ([0-9.]+) ms", lines[-1]) if lines else None
        return [float(m.group(1)) / 1000] if m else []

    names = list(sides) + (["layout"] if args.layout else [])
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    counts = {n: [] for n in names}
    warm = {n: [] for n in names}
    mounted = {n: [] for n in names}  # how long `dx-py mount` took (0 for the layout)
    prewarms = {n: [] for n in names}  # the server's own replay time, from its log
    try:
        for name, (binary, d, cache, env) in sides.items():
            sh([binary, "--cache-dir", cache, "install", "-r", args.reqs, "--find-links", args.wheels,
                "--no-index", "--venv", d / "venv", "--python", args.python], d, env)
        for name in sides:  # the first mount builds the tree; an import leaves a prewarm trace
            mount(name)
            try:
                timed_imports(sides[name][1] / "mnt/bin/python", sides[name][1])
            finally:
                unmount(name)
        for i in range(args.pairs):
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                if name == "layout":
                    d = sides["b"][1]
                    before_trial()
                    first, more = timed_imports(d / "venv/bin/python", d)
                    wall[name].append(first)
                    mounted[name].append(0.0)
                    warm[name].extend(more)
                    continue
                binary, d, cache, env = sides[name]
                before_trial()
                t = time.perf_counter()
                mount(name)
                mounted[name].append(time.perf_counter() - t)
                rec = None
                try:
                    rec = server(d / "mnt", cache)
                    if rec and name == "b" and args.b_nice is not None:
                        for task in Path(f"/proc/{rec[0]}/task").iterdir():
                            os.setpriority(os.PRIO_PROCESS, int(task.name), args.b_nice)
                    first, more = timed_imports(d / "mnt/bin/python", d)
                    wall[name].append(first)
                    warm[name].extend(more)
                    cpu[name].append(server_cpu(rec[0]) if rec else float("nan"))
                finally:
                    unmount(name)
                if rec:
                    counts[name].append(requests_of(rec[1], rec[0]))
                    prewarms[name].extend(prewarm_of(rec[1]))
    finally:
        for name in sides:
            subprocess.run(["umount", "-l", str(sides[name][1] / "mnt")], capture_output=True)
        subprocess.run(["rm", "-rf", str(work)], capture_output=True)
    ms = lambda xs: " ".join(f"{x * 1000:.0f}" for x in xs)  # noqa: E731
    what = {"a": f"{args.a} {' '.join(args.a_env)}".strip(), "b": f"{args.b} {' '.join(args.b_env)}".strip(),
            "layout": f"layout venv ({args.b})"}
    how = ", caches dropped before each trial" if args.drop_caches else ", the caches' files evicted before each trial" if args.evict else ""
    print(f"{args.imp!r}, {args.pairs} rounds{how}")
    for name in names:
        line = f"{name} ({what[name]}): wall median {statistics.median(wall[name]) * 1000:.0f} ms, min {min(wall[name]) * 1000:.0f} ms"
        if cpu[name]:
            line += f"; server CPU median {statistics.median(cpu[name]) * 1000:.0f} ms"
        print(f"{line}  [{ms(wall[name])}]")
        if name != "layout":
            both = [m + w for m, w in zip(mounted[name], wall[name])]
            print(f"    mount: median {statistics.median(mounted[name]) * 1000:.0f} ms; mount + first import: median "
                  f"{statistics.median(both) * 1000:.0f} ms, min {min(both) * 1000:.0f} ms")
            if prewarms[name]:
                print(f"    prewarm (server log): median {statistics.median(prewarms[name]) * 1000:.1f} ms over {len(prewarms[name])} mounts")
        if warm[name]:
            print(f"    warm: median {statistics.median(warm[name]) * 1000:.0f} ms, min {min(warm[name]) * 1000:.0f} ms ({len(warm[name])} imports)")
        seen = [c for c in counts[name] if c]
        if seen:
            keys = list(seen[0])
            print("    requests (median): " + ", ".join(f"{k} {statistics.median(c.get(k, 0) for c in seen):.0f}" for k in keys))
    for name in names[1:]:
        ratios = sorted(x / a for a, x in zip(wall["a"], wall[name]))
        print(f"per-round wall {name}/a: median {statistics.median(ratios):.3f}  [{' '.join(f'{r:.2f}' for r in ratios)}]")
    if args.layout:
        for name in sides:
            ratios = sorted(x / l for l, x in zip(wall["layout"], wall[name]))
            print(f"per-round first import {name}/layout: median {statistics.median(ratios):.3f}")
            ratios = sorted((m + x) / l for l, m, x in zip(wall["layout"], mounted[name], wall[name]))
            print(f"per-round mount + first import {name}/layout: median {statistics.median(ratios):.3f}  "
                  f"[{' '.join(f'{r:.2f}' for r in ratios)}]")
            if warm[name] and warm["layout"]:
                print(f"warm import {name}/layout (medians): {statistics.median(warm[name]) / statistics.median(warm['layout']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
