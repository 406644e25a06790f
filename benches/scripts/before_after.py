#!/usr/bin/env python3
"""Two dx-py binaries side by side in one run, with the disk floor beside them.

For changes that add work to the hot paths (verified reads, venv isolation): the same metrics,
trial by trial, alternating which binary goes first, on the pinned sets' local wheels.

  warm   install into a new venv (layout hit), both binaries, and the floor: one `cp -a` of a
         minimal venv skeleton (pyvenv.cfg, bin/python, lib/pythonX.Y/site-packages: 7 entries),
         the cost of creating a venv's entries on this disk right now. Ratios are to that floor.
  cold   install into a new venv with an empty cache (no bytecode), local wheels.
  mount  `dx-py mount` of a seen lock (tree built), until the command returns; then the first
         `import` through that fresh mount and a warm one (root and /dev/fuse only).

Standard library only; uses compare_uv.py's helpers. Example:

  python3 benches/scripts/before_after.py --before /path/old-dx-py --after target/release/dx-py \\
      --sets small,medium,large --runs 7
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_uv as cu  # noqa: E402

BINS = ("before", "after")


def timed(cmd, env, cwd, timeout=900.0) -> float:
    p = cu.run(cmd, env=env, cwd=cwd, timeout=timeout)
    if not p.ok:
        raise cu.TrialFailed(f"{' '.join(map(str, cmd))}: {p.tail}")
    return p.secs


def entries(root: Path) -> int:
    n = 0
    for _dirpath, dirs, files in os.walk(root):
        n += len(dirs) + len(files)
    return n + 1


class Bench:
    def __init__(self, args, python: Path, work: Path, log):
        self.args, self.py, self.work, self.log = args, python, work, log
        self.bins = {"before": Path(args.before).resolve(), "after": Path(args.after).resolve()}
        self.env = cu.tool_env()
        self.n = 0
        self.rows: list[tuple[str, str, str, str, str]] = []

    def fresh(self, stem: str) -> Path:
        self.n += 1
        return self.work / f"{stem}-{self.n}"

    def install(self, which, cache, venv, reqs, wheels, bytecode=True) -> float:
        cmd = [self.bins[which], "--cache-dir", cache, "install", "-r", reqs, "--find-links", wheels]
        cmd += ["--venv", venv, "--python", self.py]
        if not bytecode:
            cmd.append("--no-compile-bytecode")
        # Each binary locks into its own project directory (its lock files differ).
        proj = self.work / f"proj-{which}-{reqs.stem}"
        proj.mkdir(exist_ok=True)
        return timed(cmd, self.env, proj)

    def skeleton(self) -> Path:
        """A minimal venv: pyvenv.cfg, bin/python, lib/pythonX.Y/site-packages (7 entries)."""
        sk = self.work / "skeleton"
        if not sk.exists():
            ver = subprocess.run([self.py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 env=self.env, capture_output=True, text=True, check=True).stdout.strip()
            (sk / "bin").mkdir(parents=True)
            (sk / "lib" / f"python{ver}" / "site-packages").mkdir(parents=True)
            (sk / "pyvenv.cfg").write_text(f"home = {self.py.parent}\nversion = {ver}\n")
            (sk / "bin" / "python").symlink_to(self.py)
        return sk

    def row(self, what, before: list, after: list, floor: list | None, unit="ms"):
        def med(v):
            return statistics.median(v) if v else float("nan")

        scale = 1000 if unit == "ms" else 1
        b, a = med(before) * scale, med(after) * scale
        cells = [f"{b:.1f}", f"{a:.1f}"]
        if floor:
            f = med(floor) * scale
            cells.append(f"{f:.1f}")
            cells.append(f"{b / f:.2f}x / {a / f:.2f}x")
        else:
            cells += ["—", f"{a / b:.2f}x (after / before)"]
        self.rows.append((what, *cells))
        self.log(f"    {what}: {' | '.join(cells)}")

    def warm(self, name, reqs, wheels):
        self.log(f"  [{name}] warm install into a new venv, x{self.args.runs}")
        caches = {w: self.work / f"cache-warm-{w}-{name}" for w in BINS}
        for w in BINS:
            v = self.fresh(f"warmup-{w}")
            self.install(w, caches[w], v, reqs, wheels)
            cu.rmtree(v)
        sk = self.skeleton()
        t = {"before": [], "after": [], "floor": []}
        made = {"before": 0, "after": 0}
        for i in range(self.args.runs):
            order = ["before", "after", "floor"] if i % 2 == 0 else ["floor", "after", "before"]
            for which in order:
                v = self.fresh(f"v-{which}")
                os.sync()
                if which == "floor":
                    t[which].append(timed(["cp", "-a", sk, v], self.env, self.work))
                else:
                    t[which].append(self.install(which, caches[which], v, reqs, wheels))
                    made[which] = entries(v)
                cu.rmtree(v)
        self.row(f"{name}: warm install, new venv (ratio to floor)", t["before"], t["after"], t["floor"])
        self.rows.append((f"{name}: entries a warm install creates", str(made["before"]), str(made["after"]), "7", ""))
        for c in caches.values():
            cu.rmtree(c)

    def cold(self, name, reqs, wheels):
        self.log(f"  [{name}] cold install, no bytecode, x{self.args.cold_runs}")
        t = {"before": [], "after": []}
        for i in range(self.args.cold_runs):
            for which in (BINS if i % 2 == 0 else tuple(reversed(BINS))):
                cache, v = self.fresh(f"cache-cold-{which}"), self.fresh(f"v-cold-{which}")
                os.sync()
                t[which].append(self.install(which, cache, v, reqs, wheels, bytecode=False))
                cu.rmtree(v)
                cu.rmtree(cache)
        self.row(f"{name}: cold install, no bytecode", t["before"], t["after"], None)

    def mount(self, name, reqs, wheels):
        if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
            self.log("  mount: skipped (needs root and /dev/fuse)")
            return
        self.log(f"  [{name}] mount of a seen lock, first and warm import, x{self.args.runs}")
        imports = "import " + ", ".join(cu.TIMED_IMPORTS[name])
        caches = {w: self.work / f"cache-mount-{w}-{name}" for w in BINS}
        for w in BINS:  # store everything and compile, so every trial mounts a built tree
            v = self.fresh(f"v-mwarm-{w}")
            self.install(w, caches[w], v, reqs, wheels)
            cu.rmtree(v)
        t = {k: {"before": [], "after": []} for k in ("mount", "first", "warm")}
        for i in range(self.args.runs):
            for which in (BINS if i % 2 == 0 else tuple(reversed(BINS))):
                dx, cache = self.bins[which], caches[which]
                v = self.work / f"mnt-{which}"
                proj = self.work / f"proj-{which}-{reqs.stem}"
                # Drop the page cache of nothing in particular: the mount's kernel caches are
                # new with each mount, which is what "first import" means.
                try:
                    t["mount"][which].append(timed([dx, "--cache-dir", cache, "mount", v, "--python", self.py], self.env, proj))
                    py = v / "bin" / "python"
                    t["first"][which].append(timed([py, "-c", imports], self.env, self.work))
                    t["warm"][which].append(timed([py, "-c", imports], self.env, self.work))
                finally:
                    cu.run([dx, "--cache-dir", cache, "unmount", v], env=self.env, cwd=self.work, timeout=60)
        self.row(f"{name}: `dx-py mount` (tree built) until it returns", t["mount"]["before"], t["mount"]["after"], None)
        self.row(f"{name}: first `{imports}` through a fresh mount", t["first"]["before"], t["first"]["after"], None)
        self.row(f"{name}: warm `{imports}` through the mount", t["warm"]["before"], t["warm"]["after"], None)
        for c in caches.values():
            cu.rmtree(c)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="the baseline dx-py binary")
    ap.add_argument("--after", default=str(cu.DEFAULT_DX_PY), help="the dx-py binary under test (default: %(default)s)")
    ap.add_argument("--sets", default="small,medium,large")
    ap.add_argument("--runs", type=int, default=7, help="warm and mount trials per binary (default: %(default)s)")
    ap.add_argument("--cold-runs", type=int, default=3, help="cold trials per binary (default: %(default)s)")
    ap.add_argument("--phases", default="warm,cold,mount")
    ap.add_argument("--python", help="CPython 3.12 (default: newest ~/.pyenv/versions/3.12.*)")
    ap.add_argument("--sets-dir", default=str(cu.DEFAULT_SETS_DIR))
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out", help="output file (default: target/bench-results/before-after-<date>-<time>.md)")
    args = ap.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    python = cu.find_python(args.python)
    work_root = cu.TARGET / "bench-tmp"
    work_root.mkdir(parents=True, exist_ok=True)
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="before-after-", dir=work_root))
    bench = Bench(args, python, work, log)
    phases = args.phases.split(",")
    try:
        for name in args.sets.split(","):
            reqs = Path(args.sets_dir) / f"{name}.txt"
            wheels, why = cu.ensure_wheels(name, reqs, python, args, log)
            if wheels is None:
                log(f"{name}: no wheels ({why})")
                continue
            for phase in phases:
                try:
                    getattr(bench, phase)(name, reqs, wheels)
                except cu.TrialFailed as e:
                    log(f"  [{name}] {phase} FAILED: {e}")
                    bench.rows.append((f"{name}: {phase}", "FAILED", "", "", str(e).splitlines()[0][:120]))
    finally:
        cu.rmtree(work)

    stamp = _dt.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    out = Path(args.out) if args.out else cu.TARGET / "bench-results" / f"before-after-{stamp}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# before / after ({stamp})",
        "",
        f"before: `{args.before}`; after: `{args.after}`; python {python}; medians of {args.runs} "
        f"(cold: {args.cold_runs}) trials, alternating.",
        "",
        "| what | before | after | floor | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {' | '.join(r)} |" for r in bench.rows]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    print(text)
    log(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
