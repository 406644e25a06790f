#!/usr/bin/env python3
"""Imports and file access from a dx-py FUSE mount, against the dx-py symlink layout and a uv venv.

Python 3 standard library only; must run as root on a machine with /dev/fuse (it mounts, and it
drops the page cache for the cold rows). See benches/scripts/README.md for what each number means.

Per set, in one run: the same lock served three ways -- (a) `dx-py mount` (FUSE), (b) a venv made
by `dx-py install` (site-packages is one symlink to a cached layout), (c) `uv pip install
--compile-bytecode` from the same local wheels -- then first and warm imports, mount times, the
sequential read of the largest `.so`, a replay of the file operations of one import, and (phase
`memory`) the bytes left in the page cache after a warm import: the store's packs and the mounted
files for the mount, the layout's files for the layout (`fincore`, util-linux). Every subprocess has a
timeout; every mount made is unmounted on the way out, whatever happens.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_uv as cu  # noqa: E402  (our own helpers: uv install, wheel download, environment)

REPO = cu.REPO
TARGET = cu.TARGET
TARGETS = ("mount", "layout", "uv")
TARGET_TITLES = {"mount": "FUSE mount", "layout": "dx-py layout", "uv": "uv venv"}
SETS = ("small", "medium", "large")
# Modules whose import is timed. Only those that import cleanly in all three venvs are kept.
TIMED_IMPORTS = {
    "small": ["requests"],
    "medium": ["flask", "django", "fastapi", "sqlalchemy", "pydantic", "httpx"],
    "large": ["numpy", "pandas"],
}
# Sets whose imports are measured (small only gets the mount time).
IMPORT_SETS = ("medium", "large")
SO_RE = re.compile(r"\.so(\.[0-9.]+)?$")
# Preloaded into the `warm import, isatty() from fstat` rows: an isatty() that answers a regular
# file from fstat without the TCGETS ioctl, as CPython 3.14's open() does (3.8-3.13 ask the file
# system, and the kernel forwards every such ioctl to a FUSE server). It separates the round
# trips no FUSE server can avoid from everything else the mount costs.
ISATTY_SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/stat.h>
int isatty(int fd) {
    static int (*next)(int);
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) { errno = ENOTTY; return 0; }
    if (!next) next = (int (*)(int))dlsym(RTLD_NEXT, "isatty");
    return next ? next(fd) : 0;
}
"""
READ_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------
# Processes


@dataclass
class Out:
    """One finished subprocess: success, wall time, output and a failure summary."""

    ok: bool
    secs: float
    stdout: str
    stderr: str
    tail: str


def layout_site_packages(sp: Path) -> Path:
    """The shared layout's site-packages that a dx-py venv's own `sp` adds through its
    `_dx_py_layout.pth` (whose marker line names the layout); `sp` itself resolved otherwise
    (venvs of the symlink design, mounts)."""
    pth = sp / "_dx_py_layout.pth"
    if pth.is_file():
        for line in pth.read_text().splitlines():
            if line.startswith("# dx-py-layout: "):
                return Path(json.loads(line[len("# dx-py-layout: "):])["layout"]) / "site-packages"
    return Path(os.path.realpath(sp))

def run(cmd, *, env: dict[str, str], cwd: Path, timeout: float) -> Out:
    """Run `cmd` (wall time spawn to exit), keeping its output; kill its process group on timeout."""
    t0 = time.perf_counter()
    try:
        p = subprocess.Popen(
            [str(c) for c in cmd],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as e:
        return Out(False, time.perf_counter() - t0, "", "", f"cannot start {cmd[0]}: {e}")
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        secs = time.perf_counter() - t0
        return Out(False, secs, "", "", f"timed out after {timeout:g} s: {cu.tail_of(err) or cu.tail_of(out)}")
    secs = time.perf_counter() - t0
    o, e = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    ok = p.returncode == 0
    tail = "" if ok else f"{' '.join(map(str, cmd))[:300]}: exit code {p.returncode}\n{cu.tail_of(e) or cu.tail_of(o)}"
    return Out(ok, secs, o, e, tail)


class Failed(Exception):
    """A step failed; the message is what the report shows."""


def must(out: Out, what: str) -> Out:
    if not out.ok:
        raise Failed(f"{what}: {out.tail}")
    return out


# --------------------------------------------------------------------------------------------
# Mounts


def mountinfo_points() -> set[str]:
    """Mount points currently listed in /proc/self/mountinfo (octal escapes decoded)."""
    points = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 4:
                points.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[4]))
    return points


def is_mounted(path: Path) -> bool:
    return str(path) in mountinfo_points()


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


class Mounts:
    """`dx-py mount` / `dx-py unmount`, remembering every mount point so that none is left behind."""

    def __init__(self, dx: Path, cache: Path, py: Path, env, timeout: float, log, wait_server: bool) -> None:
        self.dx, self.cache, self.py, self.env, self.timeout, self.log = dx, cache, py, env, timeout, log
        self.wait_server = wait_server
        self.points: list[Path] = []
        self.server: dict[Path, int] = {}  # mount point -> pid of its server, from `dx-py mount`
        self.logs: dict[Path, Path] = {}  # mount point -> the server's log file
        # Seconds each unmount waited for the old server to exit (0: it was already gone).
        self.server_waits: list[float] = []

    def mount(self, point: Path, lock: Path, wheels: Path) -> Out:
        if point not in self.points:
            self.points.append(point)
        cmd = [self.dx, "--cache-dir", self.cache, "mount", point, "--lock", lock, "--find-links", wheels]
        cmd += ["--no-index", "--python", self.py]
        out = run(cmd, env=self.env, cwd=lock.parent, timeout=self.timeout)
        if out.ok and not is_mounted(point):
            out.ok = False
            out.tail = f"dx-py mount exited 0 but {point} is not in /proc/self/mountinfo"
        m = re.search(r"server pid (\d+), log (.*)\)\s*$", out.stderr + out.stdout, re.M)
        if m:
            self.server[point] = int(m.group(1))
            self.logs[point] = Path(m.group(2))
        return out

    def unmount(self, point: Path) -> Out:
        out = run([self.dx, "--cache-dir", self.cache, "unmount", point], env=self.env, cwd=point.parent, timeout=self.timeout)
        if out.ok and is_mounted(point):
            out.ok = False
            out.tail = f"dx-py unmount exited 0 but {point} is still mounted"
        pid = self.server.pop(point, None)
        if out.ok and pid is not None and self.wait_server:
            # `dx-py unmount` returns once the mount is gone from mountinfo, sometimes before its
            # server has exited; that server's exit path unmounts by path (fuser's Drop), which
            # takes down a new mount made there in between. Wait for it (untimed, bounded).
            t0 = time.perf_counter()
            while os.path.exists(f"/proc/{pid}") and not _is_zombie(pid) and time.perf_counter() - t0 < 10:
                time.sleep(0.001)
            self.server_waits.append(time.perf_counter() - t0)
        return out

    def cleanup(self) -> list[str]:
        """Unmount whatever is still mounted; returns the mount points that could not be freed."""
        left = []
        for p in self.points:
            if not is_mounted(p):
                continue
            out = self.unmount(p)
            if not out.ok and is_mounted(p):
                self.log(f"dx-py unmount {p} failed ({out.tail.splitlines()[0] if out.tail else '?'}); umount -l")
                run(["umount", "-l", p], env=self.env, cwd=Path("/"), timeout=60)
            if is_mounted(p):
                left.append(str(p))
        return left


# --------------------------------------------------------------------------------------------
# Page cache


def drop_caches(env) -> str | None:
    """`sync`, then `echo 3 > /proc/sys/vm/drop_caches`; returns why it failed, or None."""
    s = run(["sync"], env=env, cwd=Path("/"), timeout=300)
    if not s.ok:
        return f"sync: {s.tail}"
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as e:
        return f"echo 3 > /proc/sys/vm/drop_caches: {e}"
    return None


def evict(paths) -> None:
    """Drop these files' unmapped pages from the page cache (posix_fadvise DONTNEED): a targeted
    drop_caches that leaves the rest of the machine's cache alone. `sync` first: dirty pages (a
    layout just written) cannot be dropped."""
    os.sync()
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm_up(paths) -> None:
    """Read these files whole, so that all their pages are cached (as right after they were written)."""
    buf = bytearray(READ_CHUNK)
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def resident(paths, env) -> int:
    """Bytes of these files in the page cache, summed (`fincore`; for FUSE files, the mount's own cache)."""
    total, paths = 0, [str(p) for p in paths]
    for i in range(0, len(paths), 200):
        out = run(["fincore", "-b", "-n", "-r", "-o", "RES", *paths[i : i + 200]], env=env, cwd=Path("/"), timeout=300)
        total += sum(int(x) for x in out.stdout.split() if x.isdigit())
    return total


def files_under(root: Path) -> list[Path]:
    """Regular files under `root` (symlinks not followed)."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if p.is_file() and not p.is_symlink():
                found.append(p)
    return found


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Cell:
    """Samples of one quantity for one target, or why there are none."""

    unit: str  # "s", "MiB/s", "MiB", "count", "text"
    values: list = field(default_factory=list)
    error: str | None = None

    def median(self):
        return statistics.median(self.values) if self.values and self.unit != "text" else None

    def min(self):
        if not self.values or self.unit == "text":
            return None
        return max(self.values) if self.unit == "MiB/s" else min(self.values)  # the best sample

    def to_json(self):
        return {"unit": self.unit, "values": self.values, "median": self.median(), "best": self.min(), "error": self.error}


@dataclass
class Row:
    set: str
    metric: str
    cells: dict  # target -> Cell (missing: not applicable)
    note: str = ""


class Acc:
    """Per-target named samples; the first failure stops a target."""

    def __init__(self, targets=TARGETS) -> None:
        self.targets = list(targets)
        self.samples: dict[str, dict[str, list]] = {t: {} for t in targets}
        self.error: dict[str, str | None] = {t: None for t in targets}

    def add(self, target: str, part: str, value) -> None:
        self.samples[target].setdefault(part, []).append(value)

    def cell(self, target: str, part: str, unit: str = "s") -> Cell:
        c = Cell(unit, list(self.samples[target].get(part, [])))
        if self.error[target] is not None:
            c.error = self.error[target]
        elif not c.values:
            c.error = "not run"
        return c

    def rotate(self, n: int, trial, log) -> None:
        """Run trial(target, i) for i in 0..n, rotating which target goes first."""
        for i in range(n):
            order = self.targets[i % len(self.targets) :] + self.targets[: i % len(self.targets)]
            for t in order:
                if self.error[t] is not None:
                    continue
                try:
                    trial(t, i)
                except Failed as e:
                    self.error[t] = str(e)
                    log(f"    {t}: FAILED ({str(e).splitlines()[0][:200]})")


# --------------------------------------------------------------------------------------------
# Replay of an import's file operations


@dataclass
class Replay:
    ops: list  # [kind, relative path, bytes read, isatty calls]
    traced: int  # path-based file operations in the trace
    outside: int  # of which outside the venv (interpreter, stdlib): not replayed
    skipped: int  # inside but not replayable (dirfd-relative, unknown call)
    counts: dict


CALL_RE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(.*)$")
UNFINISHED_RE = re.compile(r"^(\d+)\s+(\w+)\((.*) <unfinished \.\.\.>$")
RESUMED_RE = re.compile(r"^(\d+)\s+<\.\.\. (\w+) resumed>(.*)$")
STR_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    return s.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")


def parse_strace(text: str, prefixes: list[tuple[str, str]]) -> Replay:
    """The venv-relative path operations of an `strace -f -e trace=%file,read,ioctl` log, in order.

    `prefixes` maps absolute path prefixes (the venv, the real layout directory) to the relative
    prefix they stand for. Reads and TCGETS ioctls are counted per opened file descriptor (until
    the number is reused).
    """
    pending: dict[str, tuple[str, str]] = {}
    ops: list = []
    fds: dict[int, list] = {}
    traced = outside = skipped = 0
    for raw in text.splitlines():
        m = UNFINISHED_RE.match(raw)
        if m:
            pending[m.group(1)] = (m.group(2), m.group(3))
            continue
        m = RESUMED_RE.match(raw)
        if m and m.group(1) in pending:
            name, head = pending.pop(m.group(1))
            raw = f"{m.group(1)} {name}({head}{m.group(3)}"
        m = CALL_RE.match(raw)
        if not m:
            continue
        name, args, ret = m.group(2), m.group(3), m.group(4)
        rc = int(ret) if ret != "?" else -1
        if name in ("read", "ioctl"):
            first = args.split(",", 1)[0].strip()
            fd = int(first) if first.isdigit() else -1
            if fd in fds and name == "read" and rc > 0:
                fds[fd][2] += rc
            elif fd in fds and name == "ioctl" and "TCGETS" in args:
                fds[fd][3] += 1  # isatty(): Python 3.12's open() asks it of every file it opens
            continue
        sm = STR_RE.search(args)
        if not sm:
            continue
        path = _unescape(sm.group(1))
        if not path:  # fstat of an open fd (AT_EMPTY_PATH)
            continue
        if name in ("openat", "open") and rc >= 0:
            fds.pop(rc, None)  # the descriptor now names another file
        traced += 1
        rel = None
        for absp, relp in prefixes:
            if path == absp or path.startswith(absp + "/"):
                rest = path[len(absp) :].lstrip("/")
                rel = "/".join(x for x in (relp, rest) if x)
                break
        if rel is None:
            outside += 1
            continue
        first_arg = args.split(",", 1)[0].strip()
        at_call = name in ("openat", "newfstatat", "statx", "faccessat", "faccessat2", "readlinkat", "fstatat64")
        if at_call and first_arg != "AT_FDCWD" and not path.startswith("/"):
            skipped += 1
            continue
        if name in ("openat", "open"):
            if rc < 0:
                ops.append(["open_fail", rel, 0, 0])
            elif "O_DIRECTORY" in args:
                ops.append(["listdir", rel, 0, 0])
            else:
                op = ["read", rel, 0, 0]
                ops.append(op)
                fds[rc] = op
        elif name in ("newfstatat", "fstatat64", "statx", "stat", "lstat"):
            nofollow = "AT_SYMLINK_NOFOLLOW" in args or name == "lstat"
            ops.append(["lstat" if nofollow else "stat", rel, 0, 0])
        elif name in ("access", "faccessat", "faccessat2"):
            ops.append(["access", rel, 0, 0])
        elif name in ("readlink", "readlinkat"):
            ops.append(["readlink", rel, 0, 0])
        else:
            skipped += 1
    counts: dict[str, int] = {}
    for op in ops:
        counts[op[0]] = counts.get(op[0], 0) + 1
    counts["bytes read"] = sum(op[2] for op in ops)
    counts["isatty"] = sum(op[3] for op in ops)
    return Replay(ops, traced, outside, skipped, counts)


def replay_plan(root: Path, ops: list) -> list:
    return [(kind, f"{root}/{rel}" if rel else str(root), n, tty) for kind, rel, n, tty in ops]


def replay_once(plan: list, buf: bytearray) -> tuple[float, int]:
    """Run the plan once; returns (seconds, number of operations that failed)."""
    mv = memoryview(buf)
    errors = 0
    flags = os.O_RDONLY | os.O_CLOEXEC
    t0 = time.perf_counter()
    for kind, p, n, tty in plan:
        try:
            if kind == "stat":
                os.stat(p)
            elif kind == "lstat":
                os.lstat(p)
            elif kind == "listdir":
                os.listdir(p)
            elif kind == "read":
                fd = os.open(p, flags)
                try:
                    os.fstat(fd)
                    for _ in range(tty):
                        os.isatty(fd)
                    left = n
                    while left > 0:
                        got = os.readv(fd, [mv[: min(left, len(mv))]])
                        if got <= 0:
                            break
                        left -= got
                finally:
                    os.close(fd)
            elif kind == "open_fail":
                os.close(os.open(p, flags))
            elif kind == "access":
                if not os.access(p, os.R_OK):
                    errors += 1
            elif kind == "readlink":
                os.readlink(p)
        except OSError:
            errors += 1
    return time.perf_counter() - t0, errors


def read_whole(path: str) -> tuple[float, int]:
    """Read a file sequentially in 1 MiB chunks; returns (seconds, bytes)."""
    buf = bytearray(READ_CHUNK)
    total = 0
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            total += n
    return time.perf_counter() - t0, total


# --------------------------------------------------------------------------------------------
# The benchmark


MOUNTED_RE = re.compile(r"Mounted .* in ([0-9.]+)(ns|µs|us|ms|s)\b")


def reported_mount_secs(out: Out) -> float | None:
    m = MOUNTED_RE.search(out.stderr + out.stdout)
    if not m:
        return None
    scale = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(2)]
    return float(m.group(1)) * scale


def build_isatty_shim(work: Path, env, timeout: float) -> tuple[Path | None, str]:
    """Compile ISATTY_SHIM_C into work/ with the system C compiler: (library, or None and why not)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler (cc) on PATH"
    src, lib = work / "isatty_shim.c", work / "isatty_shim.so"
    src.write_text(ISATTY_SHIM_C)
    out = run([cc, "-O2", "-shared", "-fPIC", "-o", lib, src, "-ldl"], env=env, cwd=work, timeout=timeout)
    return (lib, "") if out.ok and lib.exists() else (None, f"cc failed: {out.tail}")


class Bench:
    def __init__(self, args, py: Path, dx: Path, uv: Path | None, work: Path, log) -> None:
        self.args, self.py, self.dx, self.uv, self.work, self.log = args, py, dx, uv, work, log
        self.env = cu.tool_env()
        self.dx_cache = work / "dx-cache"
        self.uv_cache = work / "uv-cache"
        self.mounts = Mounts(dx, self.dx_cache, py, self.env, args.timeout, log, not args.no_wait_server)
        self.rows: list[Row] = []
        self.failures: list[str] = []
        self.can_drop: str | None = None  # why the page cache cannot be dropped
        self.drops = 0
        self.counter = 0
        self.py_version = "".join(cu.version_of([py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], work))
        self.isatty_shim, self.isatty_shim_note = build_isatty_shim(work, self.env, args.timeout)

    # -- helpers

    def add(self, set_name, metric, cells, note=""):
        self.rows.append(Row(set_name, metric, cells, note))

    def fresh(self, parent: Path, stem: str) -> Path:
        self.counter += 1
        return parent / f"{stem}-{self.counter}"

    def drop(self) -> None:
        if self.can_drop is not None:
            raise Failed(f"page cache cannot be dropped: {self.can_drop}")
        why = drop_caches(self.env)
        self.drops += 1
        if why is not None:
            self.can_drop = why
            raise Failed(why)

    def dx_install(self, s, venv: Path) -> Out:
        cmd = [self.dx, "--cache-dir", self.dx_cache, "install", "-r", s["reqs"], "--find-links", s["wheels"]]
        cmd += ["--no-index", "--venv", venv, "--python", self.py]
        return must(run(cmd, env=self.env, cwd=s["dir"], timeout=self.args.timeout), "dx-py install")

    def uv_make(self, s, venv: Path) -> None:
        env = dict(self.env, UV_CACHE_DIR=str(self.uv_cache))
        must(run([self.uv, "venv", venv, "--python", self.py], env=env, cwd=s["dir"], timeout=self.args.timeout), "uv venv")
        cmd = [self.uv, "pip", "install", "--offline", "--no-index", "--find-links", s["wheels"], "-r", s["reqs"]]
        cmd += ["--python", venv / "bin" / "python", "--compile-bytecode"]
        must(run(cmd, env=env, cwd=s["dir"], timeout=self.args.timeout), "uv pip install --compile-bytecode")

    def mount(self, s) -> Out:
        return must(self.mounts.mount(s["mnt"], s["lock"], s["wheels"]), "dx-py mount")

    def unmount(self, s) -> Out:
        return must(self.mounts.unmount(s["mnt"]), "dx-py unmount")

    def remount(self, s) -> Out:
        if is_mounted(s["mnt"]):
            self.unmount(s)
        return self.mount(s)

    def server_log_lines(self, s) -> int | None:
        log = self.mounts.logs.get(s["mnt"])
        try:
            with open(log, "rb") as f:  # records: lines not continuing a multi-line record
                return sum(1 for line in f if line[:1] not in (b" ", b")", b"\t", b"\n"))
        except (OSError, TypeError):
            return None

    def python(self, s, target: str) -> Path:
        return s["venvs"][target] / "bin" / "python"

    def timed_import(self, s, target: str, venv: Path | None = None, preload: Path | None = None) -> tuple[float, float]:
        """(process wall seconds, seconds of the import statement alone) of the set's timed import,
        with `preload` as LD_PRELOAD if given."""
        py = (venv or s["venvs"][target]) / "bin" / "python"
        code = f"import time; t = time.perf_counter(); {s['import']}; print(time.perf_counter() - t)"
        env = self.env if preload is None else dict(self.env, LD_PRELOAD=str(preload))
        out = must(run([py, "-c", code], env=env, cwd=s["dir"], timeout=self.args.timeout), s["import"])
        try:
            inner = float(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise Failed(f"{s['import']}: unexpected output {out.stdout[-200:]!r}")
        return out.secs, inner

    # -- setup

    def setup(self, name: str) -> dict:
        reqs = Path(self.args.sets_dir) / f"{name}.txt"
        wheels, note = cu.ensure_wheels(name, reqs, self.py, self.args, self.log)
        if wheels is None:
            raise Failed(f"wheels: {note}")
        d = self.work / name
        d.mkdir()
        s = {"name": name, "reqs": reqs, "wheels": wheels, "dir": d, "lock": d / "dx-py.dpl", "mnt": d / "mnt"}
        s["venvs"] = {"mount": s["mnt"], "layout": d / "layout-venv", "uv": d / "uv-venv"}
        self.log(f"set {name}: dx-py install (cold cache), {reqs}, wheels {wheels} ({note})")
        self.dx_install(s, s["venvs"]["layout"])
        if not s["lock"].exists():
            raise Failed(f"dx-py install wrote no {s['lock']}")
        self.log(f"set {name}: first dx-py mount (builds the tree)")
        first = self.mount(s)
        s["first mount"] = first.secs
        self.unmount(s)
        if name in IMPORT_SETS and self.uv is not None:
            self.log(f"set {name}: uv venv + uv pip install --compile-bytecode")
            self.uv_make(s, s["venvs"]["uv"])
        return s

    # -- phases

    def bench_mount_time(self, s) -> None:
        n = self.args.runs
        self.log(f"  [{s['name']}] mount time x{n}")
        acc = Acc(["mount"])

        def trial(t, i):
            if is_mounted(s["mnt"]):
                self.unmount(s)
            out = self.mount(s)
            acc.add(t, "wall", out.secs)
            r = reported_mount_secs(out)
            if r is not None:
                acc.add(t, "reported", r)
            u = self.unmount(s)
            acc.add(t, "unmount", u.secs)

        acc.rotate(n, trial, self.log)
        self.add(
            s["name"],
            "mount time, tree built (second+ mount)",
            {"mount": acc.cell("mount", "wall")},
            f"`dx-py mount` wall time, spawn to exit; first mount (builds the tree) took {s['first mount'] * 1000:.0f} ms",
        )
        self.add(s["name"], "mount time as dx-py reports it", {"mount": acc.cell("mount", "reported")}, "the `Mounted ... in` line")
        self.add(s["name"], "unmount time", {"mount": acc.cell("mount", "unmount")}, "`dx-py unmount` wall time")

    def check_imports(self, s, targets) -> list[str]:
        """Modules of TIMED_IMPORTS that import in every target; rows for each module."""
        self.remount(s)
        clean = []
        for mod in TIMED_IMPORTS[s["name"]]:
            cells = {}
            for t in targets:
                out = run([self.python(s, t), "-c", f"import {mod}"], env=self.env, cwd=s["dir"], timeout=self.args.timeout)
                cells[t] = Cell("text", ["ok"]) if out.ok else Cell("text", error=f"import {mod}: {out.tail}")
            self.add(s["name"], f"import check: {mod}", cells)
            if all(c.error is None for c in cells.values()):
                clean.append(mod)
        return clean

    def check_bytecode(self, s, targets) -> None:
        """How many site-packages modules the timed import loads from .pyc and from source."""
        cells_pyc, cells_src = {}, {}
        for t in targets:
            out = run([self.python(s, t), "-v", "-c", s["import"]], env=self.env, cwd=s["dir"], timeout=self.args.timeout)
            if not out.ok:
                cells_pyc[t] = cells_src[t] = Cell("count", error=out.tail)
                continue
            pyc = src = 0
            for line in out.stderr.splitlines():
                m = re.match(r"# code object from '?(.*?)'?$", line)
                if m and "site-packages" in m.group(1):
                    if m.group(1).endswith(".pyc"):
                        pyc += 1
                    else:
                        src += 1
            cells_pyc[t] = Cell("count", [pyc])
            cells_src[t] = Cell("count", [src])
        self.add(s["name"], "modules loaded from .pyc", cells_pyc, "site-packages modules of the timed import (`python -v`)")
        self.add(s["name"], "modules compiled from source", cells_src, "should be 0 everywhere: all three have bytecode")

    def bench_first_warm_cache(self, s, targets) -> None:
        n = self.args.runs
        self.log(f"  [{s['name']}] first import, page cache warm, x{n}")
        acc = Acc(targets)

        def trial(t, i):
            venv = None
            if t == "mount":
                self.remount(s)
            elif t == "layout":
                venv = self.fresh(s["dir"], "layout-first")
                self.dx_install(s, venv)
            else:
                venv = self.fresh(s["dir"], "uv-first")
                self.uv_make(s, venv)
            try:
                wall, inner = self.timed_import(s, t, venv)
            finally:
                if venv is not None:
                    cu.rmtree(venv)
            acc.add(t, "wall", wall)
            acc.add(t, "inner", inner)

        acc.rotate(n, trial, self.log)
        note = (
            "mount: right after a fresh `dx-py mount` (the mount's kernel caches empty; the store's pages as "
            "the earlier mount left them: released once served, by default); layout: a new `dx-py install` venv (same layout); uv: a new --compile-bytecode venv; "
            "page cache warm for all"
        )
        self.add(s["name"], f"first import, page cache warm: `{s['import']}` (process)", self.cells(acc, "wall"), note)
        self.add(s["name"], "first import, page cache warm (import statement only)", self.cells(acc, "inner"))

    def bench_first_cold(self, s, targets) -> None:
        n = self.args.cold_runs
        if n < 1:
            return
        self.log(f"  [{s['name']}] first import after drop_caches, x{n}")
        acc = Acc(targets)

        def trial(t, i):
            if t == "mount":
                if is_mounted(s["mnt"]):
                    self.unmount(s)
                self.drop()
                acc.add(t, "mount", self.mount(s).secs)
            else:
                self.drop()
            wall, inner = self.timed_import(s, t)
            acc.add(t, "wall", wall)
            acc.add(t, "inner", inner)

        acc.rotate(n, trial, self.log)
        note = "sync; echo 3 > /proc/sys/vm/drop_caches before each (mount: unmount, drop, mount); interpreter and stdlib are cold too"
        self.add(s["name"], f"first import, cold (drop_caches): `{s['import']}` (process)", self.cells(acc, "wall"), note)
        self.add(s["name"], "first import, cold (import statement only)", self.cells(acc, "inner"))
        if "mount" in targets:
            self.add(s["name"], "mount time after drop_caches", {"mount": acc.cell("mount", "mount")}, "tree built, page cache empty")

    def bench_warm(self, s, targets) -> None:
        n = self.args.runs
        self.log(f"  [{s['name']}] warm import x{n}")
        acc = Acc(targets)
        if not is_mounted(s["mnt"]):
            self.mount(s)
        for t in targets:  # untimed warm-up
            try:
                self.timed_import(s, t)
            except Failed as e:
                acc.error[t] = str(e)

        def trial(t, i):
            lines = self.server_log_lines(s) if t == "mount" else None
            wall, inner = self.timed_import(s, t)
            acc.add(t, "wall", wall)
            acc.add(t, "inner", inner)
            if self.isatty_shim is not None:
                acc.add(t, "no-tcgets", self.timed_import(s, t, preload=self.isatty_shim)[0])
            if lines is not None:
                after = self.server_log_lines(s)
                if after is not None:
                    acc.add(t, "log", after - lines)

        acc.rotate(n, trial, self.log)
        self.add(s["name"], f"warm import: `{s['import']}` (process)", self.cells(acc, "wall"), "the same venv/mount, after one untimed import")
        if "mount" in targets:
            c = acc.cell("mount", "log", "count")
            c.values = [int(statistics.median(c.values))] if c.values else []
            self.add(
                s["name"],
                "mount server log records per warm import",
                {"mount": c},
                "requests the kernel still sends when warm and the server logs (fuser's default `ioctl` answer: "
                "a WARN per TCGETS); 0 is the goal",
            )
        self.add(s["name"], "warm import (import statement only)", self.cells(acc, "inner"))
        if self.isatty_shim is not None:
            self.add(
                s["name"],
                "warm import, isatty() answered from fstat (process)",
                self.cells(acc, "no-tcgets"),
                "the same, with an LD_PRELOAD isatty() that skips the TCGETS ioctl for regular files, as CPython "
                "3.14's open() does: what the mount costs apart from the one round trip per opened file that the "
                "kernel forwards (`replay` rows)",
            )
        else:
            self.log(f"  [{s['name']}] no `isatty() from fstat` row: {self.isatty_shim_note}")

    def bench_replay(self, s, targets) -> None:
        n = self.args.replay_runs
        self.log(f"  [{s['name']}] replay of the import's file operations")
        strace = shutil.which("strace")
        if strace is None:
            self.failures.append(f"{s['name']}: replay: strace not found (apt-get install strace)")
            return
        layout_venv = s["venvs"]["layout"]
        trace = s["dir"] / "import.strace"
        cmd = [strace, "-f", "-e", "trace=%file,read,ioctl", "-o", trace, self.python(s, "layout"), "-c", s["import"]]
        self.timed_import(s, "layout")  # the traced import is warm
        out = run(cmd, env=self.env, cwd=s["dir"], timeout=self.args.timeout)
        if not out.ok:
            self.failures.append(f"{s['name']}: replay: strace: {out.tail}")
            return
        sp = layout_venv / "lib" / f"python{self.py_version}" / "site-packages"
        real_sp = str(layout_site_packages(sp))
        rel_sp = f"lib/python{self.py_version}/site-packages"
        prefixes = [(str(layout_venv), ""), (real_sp, rel_sp)]
        if os.path.realpath(layout_venv) != str(layout_venv):
            prefixes.append((os.path.realpath(layout_venv), ""))
        rep = parse_strace(trace.read_text(errors="replace"), prefixes)
        s["replay"] = rep
        buf = bytearray(READ_CHUNK)
        plans = {t: replay_plan(s["venvs"][t], rep.ops) for t in targets}
        # The same without the isatty() calls: the file system operations alone.
        bare = {t: [(k, p, n, 0) for k, p, n, _tty in plan] for t, plan in plans.items()}
        acc = Acc(targets)
        errs: dict[str, set] = {t: set() for t in targets}
        if "mount" in targets:
            self.remount(s)
            secs, e = replay_once(plans["mount"], buf)
            acc.add("mount", "fresh", secs)
            errs["mount"].add(e)
        for t in targets:  # untimed warm-up
            errs[t].add(replay_once(plans[t], buf)[1])

        def trial(t, i):
            secs, e = replay_once(bare[t], buf)
            acc.add(t, "warm", secs)
            errs[t].add(e)
            secs, e = replay_once(plans[t], buf)
            acc.add(t, "warm tty", secs)
            errs[t].add(e)

        acc.rotate(n, trial, self.log)
        c = rep.counts
        desc = ", ".join(f"{k} {v:,}" for k, v in sorted(c.items()))
        note = (
            f"{len(rep.ops):,} venv-relative ops of {rep.traced:,} traced path ops ({rep.outside:,} outside the venv, "
            f"{rep.skipped:,} skipped): {desc}; median of {n} passes"
        )
        self.add(s["name"], "replay of the import's file ops (stat/open/read/listdir), warm", self.cells(acc, "warm"), note)
        self.add(
            s["name"],
            "replay, the same + isatty() on each file as Python 3.12's open() does, warm",
            self.cells(acc, "warm tty"),
            f"{c.get('isatty', 0):,} TCGETS ioctls per pass",
        )
        if "mount" in targets:
            self.add(
                s["name"],
                "replay with isatty, first pass on a fresh mount",
                {"mount": acc.cell("mount", "fresh")},
                "one pass right after `dx-py mount` (compare with the warm native rows)",
            )
        self.add(
            s["name"],
            "replay: failing ops per pass",
            {t: Cell("text", [", ".join(str(x) for x in sorted(errs[t]))]) for t in targets},
            "ENOENT probes etc.; must be equal across targets (same tree)",
        )

    def bench_throughput(self, s, targets) -> None:
        sp_rel = Path("lib") / f"python{self.py_version}" / "site-packages"
        root = layout_site_packages(s["venvs"]["layout"] / sp_rel)
        best, size = None, -1
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                if SO_RE.search(f):
                    p = Path(dirpath) / f
                    st = p.lstat()
                    if st.st_size > size:
                        best, size = p, st.st_size
        if best is None:
            self.failures.append(f"{s['name']}: no .so in {root}")
            return
        rel = sp_rel / best.relative_to(root)
        self.log(f"  [{s['name']}] sequential read of {rel} ({size / 2**20:.1f} MiB)")
        paths = {t: str(s["venvs"][t] / rel) for t in targets}
        n = self.args.runs

        def mibs(secs_bytes) -> float:
            secs, got = secs_bytes
            if got != size:
                raise Failed(f"read {got} bytes of {rel}, expected {size}")
            return got / 2**20 / secs

        acc = Acc(targets)
        if self.args.cold_runs > 0:

            def cold(t, i):
                if t == "mount":
                    if is_mounted(s["mnt"]):
                        self.unmount(s)
                    self.drop()
                    self.mount(s)
                else:
                    self.drop()
                acc.add(t, "cold", mibs(read_whole(paths[t])))

            acc.rotate(self.args.cold_runs, cold, self.log)
            self.add(
                s["name"],
                f"read largest .so, cold (drop_caches): {rel.name}, {size / 2**20:.1f} MiB",
                self.cells(acc, "cold", "MiB/s"),
                "MiB/s, higher is better (ratio > 1: the mount is faster)",
            )
        acc2 = Acc(targets)
        if "mount" in targets:

            sub = Acc(["mount"])

            def fresh(t, i):
                self.remount(s)
                sub.add(t, "fresh", mibs(read_whole(paths[t])))

            sub.rotate(n, fresh, self.log)
            acc2.samples["mount"]["fresh"] = sub.samples["mount"].get("fresh", [])
            acc2.error["mount"] = sub.error["mount"]
            self.add(
                s["name"],
                "read largest .so, fresh mount (store pages as earlier mounts left them)",
                {"mount": acc2.cell("mount", "fresh", "MiB/s")},
                "MiB/s; first read after `dx-py mount`, no drop",
            )
        if not is_mounted(s["mnt"]):
            self.mount(s)
        for t in targets:
            read_whole(paths[t])

        def warm(t, i):
            acc2.add(t, "warm", mibs(read_whole(paths[t])))

        acc2.rotate(n, warm, self.log)
        self.add(s["name"], "read largest .so, warm", self.cells(acc2, "warm", "MiB/s"), "MiB/s, median")

    def bench_memory(self, s, targets) -> None:
        """Resident bytes after a warm import: the store's pack files and the mounted files (mount),
        the layout's files (layout). Two starting points for the mount: packs evicted from the page
        cache before mounting (each byte is read from disk once), and packs fully cached (as right
        after `dx-py install` wrote them)."""
        sp_rel = Path("lib") / f"python{self.py_version}" / "site-packages"
        packs = sorted(self.dx_cache.glob("store/*/*/*.dxpkg"))
        if not packs:
            self.failures.append(f"{s['name']}: no .dxpkg under {self.dx_cache / 'store'}")
            return
        mib = lambda n: n / 2**20  # noqa: E731
        self.log(f"  [{s['name']}] resident bytes after a warm import ({len(packs)} packs)")
        rows = {}
        if "mount" in targets:
            for start in ("packs evicted", "packs cached"):
                if is_mounted(s["mnt"]):
                    self.unmount(s)
                evict(packs)
                if start == "packs cached":
                    warm_up(packs)
                before = resident(packs, self.env)
                self.mount(s)
                first = self.timed_import(s, "mount")[0]
                self.timed_import(s, "mount")
                time.sleep(0.2)
                mounted = files_under(s["mnt"] / sp_rel)
                rows[start] = (before, resident(packs, self.env), resident(mounted, self.env), first)
                self.log(f"    mount, {start}: packs {mib(rows[start][0]):.1f} MiB before mount, after import: packs "
                         f"{mib(rows[start][1]):.1f} MiB, mounted files {mib(rows[start][2]):.1f} MiB")
            for start, (before, packs_after, mounted_after, first) in rows.items():
                self.add(s["name"], f"first import after mounting, {start} before mounting", {"mount": Cell("s", [first])},
                         "one sample (process wall time); the import that fills the mount's cache")
                self.add(s["name"], f"resident after warm import, {start} before mounting: pack files",
                         {"mount": Cell("MiB", [mib(packs_after)])}, f"`fincore` over the store's .dxpkg; {mib(before):.1f} MiB before mounting")
                self.add(s["name"], f"resident after warm import, {start} before mounting: mounted files",
                         {"mount": Cell("MiB", [mib(mounted_after)])}, "`fincore` over every file of the mount's site-packages")
        if "layout" in targets:
            files = files_under(layout_site_packages(s["venvs"]["layout"] / sp_rel))
            evict(files)
            for _ in range(2):
                self.timed_import(s, "layout")
            self.add(s["name"], "resident after warm import: layout files", {"layout": Cell("MiB", [mib(resident(files, self.env))])},
                     "`fincore` over the layout's files (evicted first): the bytes imports use, cached once")

    def cells(self, acc: Acc, part: str, unit: str = "s") -> dict:
        return {t: acc.cell(t, part, unit) for t in acc.targets}

    # -- one set

    def run_set(self, name: str) -> None:
        try:
            s = self.setup(name)
        except Failed as e:
            self.failures.append(f"{name}: setup: {e}")
            return
        phases = self.args.phases
        try:
            if "mount" in phases:
                self.bench_mount_time(s)
            if name not in IMPORT_SETS:
                return
            targets = [t for t in TARGETS if t != "uv" or self.uv is not None]
            clean = self.check_imports(s, targets)
            if not clean:
                self.failures.append(f"{name}: none of {TIMED_IMPORTS[name]} imports in every target")
                return
            s["import"] = "import " + ", ".join(clean)
            self.check_bytecode(s, targets)
            if "first" in phases:
                self.bench_first_warm_cache(s, targets)
            if "cold" in phases:
                self.bench_first_cold(s, targets)
            if "warm" in phases:
                self.bench_warm(s, targets)
            if "replay" in phases:
                self.bench_replay(s, targets)
            if "read" in phases and name == "large":
                self.bench_throughput(s, targets)
            if "memory" in phases:
                self.bench_memory(s, targets)
        except Failed as e:
            self.failures.append(f"{name}: {e}")
        finally:
            if is_mounted(s["mnt"]):
                out = self.mounts.unmount(s["mnt"])
                if not out.ok:
                    self.failures.append(f"{name}: final unmount: {out.tail}")


# --------------------------------------------------------------------------------------------
# Report


def fmt(cell: Cell | None, which: str = "median") -> str:
    if cell is None:
        return ""
    if cell.error is not None:
        return "FAILED"
    if cell.unit == "text":
        return cell.values[0] if cell.values else ""
    v = cell.median() if which == "median" else cell.min()
    if v is None:
        return ""
    if cell.unit == "s":
        ms = v * 1000
        return f"{ms:,.2f} ms" if ms < 10 else f"{ms:,.1f} ms" if ms < 100 else f"{ms:,.0f} ms"
    if cell.unit == "MiB/s":
        return f"{v:,.0f} MiB/s"
    if cell.unit == "MiB":
        return f"{v:,.1f} MiB"
    return f"{v:,}"


def cell_text(cell: Cell | None) -> str:
    med = fmt(cell)
    if cell is None or cell.error or cell.unit in ("text", "count", "MiB") or len(cell.values) < 2:
        return med
    return f"{med} ({'max' if cell.unit == 'MiB/s' else 'min'} {fmt(cell, 'min')})"


def ratio(a: Cell | None, b: Cell | None) -> str:
    if a is None or b is None or a.error or b.error or a.unit not in ("s", "MiB/s"):
        return ""
    x, y = a.median(), b.median()
    if x is None or not y:
        return ""
    return f"{x / y:.2f}"


def markdown(meta: dict | None, rows: list[Row], failures: list[str]) -> str:
    out = []
    if meta is not None:
        out += ["# dx-py FUSE mount: imports and file access", ""]
        out += [f"- {k}: {v}" for k, v in meta.items()]
        out += [
            "",
            "Cells: median (min, or max for MiB/s) of the runs; targets rotate which goes first. Ratios are",
            "mount median / other median: below 1 the mount is faster for times, slower for MiB/s.",
            "",
        ]
    out += [
        "| set | metric | FUSE mount | dx-py layout | uv venv | mount/layout | mount/uv | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    errors = []
    for r in rows:
        texts = []
        for t in TARGETS:
            c = r.cells.get(t)
            txt = cell_text(c)
            if c is not None and c.error is not None:
                errors.append((r, t, c.error))
                txt = f"FAILED [{len(errors)}]"
            texts.append(txt)
        m, lay, uv = (r.cells.get(t) for t in TARGETS)
        out.append(f"| {r.set} | {r.metric} | {' | '.join(texts)} | {ratio(m, lay)} | {ratio(m, uv)} | {r.note} |")
    if failures or errors:
        out += ["", "## Failures", ""]
        out += [f"- {f}" for f in failures]
        seen: dict[str, int] = {}
        for i, (r, t, err) in enumerate(errors, 1):
            if err in seen:
                out.append(f"- [{i}] {r.set} / {r.metric} / {t}: same as [{seen[err]}]")
                continue
            seen[err] = i
            out += [f"- [{i}] {r.set} / {r.metric} / {t}:", "", "  ```"]
            out += ["  " + ln for ln in err.splitlines()]
            out += ["  ```"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------

PHASES = ("mount", "first", "cold", "warm", "replay", "read", "memory")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS), help="sets (default: %(default)s); small only gets the mount time")
    ap.add_argument("--runs", type=int, default=7, help="timed runs per warm metric and target (default: %(default)s)")
    ap.add_argument(
        "--cold-runs",
        type=int,
        default=3,
        help="runs of each drop_caches metric per target; 0 skips them (default: %(default)s)",
    )
    ap.add_argument("--replay-runs", type=int, default=20, help="timed replay passes per target (default: %(default)s)")
    ap.add_argument("--phases", default=",".join(PHASES), help="phases (default: %(default)s)")
    ap.add_argument("--dx-py", dest="dx_py", help=f"dx-py binary (default: {cu.DEFAULT_DX_PY}, then /work/main/target/release/dx-py)")
    ap.add_argument("--uv", help="uv binary (default: target/bench-tools/uv-venv/bin/uv, installed like compare_uv.py)")
    ap.add_argument(
        "--skip-uv-install",
        action="store_true",
        help="never pip-install uv: use target/bench-tools/uv-venv or uv on PATH (the venv is reused anyway when present)",
    )
    ap.add_argument("--python", help="CPython 3.12 (default: newest ~/.pyenv/versions/3.12.*)")
    ap.add_argument("--sets-dir", default=str(cu.DEFAULT_SETS_DIR), help="where SET.txt live (default: %(default)s)")
    ap.add_argument("--work-dir", help="parent of the temporary directory (default: target/bench-tmp)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per subprocess (default: %(default)s)")
    ap.add_argument(
        "--no-wait-server",
        action="store_true",
        help="after `dx-py unmount`, do not wait for the old server to exit before mounting again (exposes the race)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary venvs and caches (never mounts)")
    ap.add_argument("--out", help="output stem (default: target/bench-results/mount-imports-<date>-<time>)")
    args = ap.parse_args(argv)
    args.phases = [p for p in args.phases.split(",") if p]
    sets = [s for s in args.sets.split(",") if s]
    if [p for p in args.phases if p not in PHASES]:
        ap.error(f"--phases: expected some of {list(PHASES)}")
    for s in sets:
        if s not in SETS or not (Path(args.sets_dir) / f"{s}.txt").exists():
            ap.error(f"unknown set {s!r}")
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if os.geteuid() != 0:
        log("warning: not root: mounts go through fusermount3 and drop_caches will fail")

    py = cu.find_python(args.python)
    if not args.uv and (TARGET / "bench-tools" / "uv-venv" / "bin" / "uv").exists():
        args.skip_uv_install = True  # installed by an earlier run of this script or compare_uv.py
    uv, uv_note = cu.install_uv(args, py, cu.readme_uv_version(Path(args.sets_dir)), log)
    dx_src = Path(args.dx_py) if args.dx_py else cu.DEFAULT_DX_PY
    if not args.dx_py and not dx_src.exists() and Path("/work/main/target/release/dx-py").exists():
        dx_src = Path("/work/main/target/release/dx-py")
    if not dx_src.exists():
        sys.exit(f"no dx-py binary at {dx_src}: build it (cargo build --release -p dx-py) or pass --dx-py")

    work_parent = Path(args.work_dir) if args.work_dir else TARGET / "bench-tmp"
    work_parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mount-imports-", dir=work_parent)).resolve()
    # A private copy, so that a rebuild of the original during the run changes nothing.
    dx = work / "bin" / "dx-py"
    dx.parent.mkdir()
    shutil.copy2(dx_src, dx)

    def on_signal(signum, _frame):
        raise SystemExit(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    now = _dt.datetime.now()
    meta = {
        "date": now.isoformat(timespec="seconds"),
        "host": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()})",
        "filesystem of work dir": cu.fs_type(work),
        "python": f"{py} ({cu.version_of([py, '--version'], work)})",
        "dx-py": f"{cu.version_of([dx, '--version'], work)} (copy of {dx_src}, built {_dt.datetime.fromtimestamp(dx_src.stat().st_mtime):%Y-%m-%d %H:%M})",
        "uv": f"{cu.version_of([uv, '--version'], work) if uv else 'unavailable'} ({uv_note})",
        "runs": f"{args.runs} (drop_caches rows: {args.cold_runs}, replay passes: {args.replay_runs})",
        "load average at start (1/5/15 min)": "%.2f %.2f %.2f" % os.getloadavg(),
        "environment": "PYTHONDONTWRITEBYTECODE, PYTHONPATH, PYTHONHOME, PYTHONSTARTUP, VIRTUAL_ENV, PIP_*, UV_*, "
        "DX_PY_* removed for every timed process (imports may write .pyc where they can; the mount is read-only)",
        "bytecode": "dx-py: its default (unchecked-hash .pyc, compiled at install, served by both layout and mount); "
        "uv: --compile-bytecode (timestamp .pyc)",
    }
    log("\n".join(f"{k}: {v}" for k, v in meta.items()))
    bench = Bench(args, py, dx, uv, work, log)
    if uv is None:
        bench.failures.append(f"uv unavailable: {uv_note}")
    left: list[str] = []
    try:
        for s in sets:
            bench.run_set(s)
            print(markdown(None, [r for r in bench.rows if r.set == s], []), file=sys.stderr, flush=True)
    finally:
        left = bench.mounts.cleanup()
        if left:
            log(f"ERROR: could not unmount {left}; leaving {work} in place")
        elif not args.keep:
            cu.rmtree(work)
        else:
            log(f"kept {work}")
    meta["load average at end (1/5/15 min)"] = "%.2f %.2f %.2f" % os.getloadavg()
    meta["page cache drops"] = str(bench.drops) + (f" (unavailable: {bench.can_drop})" if bench.can_drop else "")
    meta["mounts left behind"] = ", ".join(left) or "none"
    w = bench.mounts.server_waits
    if w:
        late = [x for x in w if x > 0.0005]
        meta["old server still running when `dx-py unmount` returned"] = (
            f"{len(late)} of {len(w)} unmounts (waited for it, untimed; longest {max(w) * 1000:.1f} ms)"
            if not args.no_wait_server
            else "not checked (--no-wait-server)"
        )
    md = markdown(meta, bench.rows, bench.failures)
    out = Path(args.out) if args.out else TARGET / "bench-results" / f"mount-imports-{now:%Y-%m-%d-%H%M%S}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(md)
    data = {
        "meta": meta,
        "failures": bench.failures,
        "rows": [
            {"set": r.set, "metric": r.metric, "note": r.note, "cells": {t: c.to_json() for t, c in r.cells.items()}}
            for r in bench.rows
        ],
    }
    out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    print(md)
    log(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    return 0 if not left else 1


if __name__ == "__main__":
    sys.exit(main())
