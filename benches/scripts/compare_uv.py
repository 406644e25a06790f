#!/usr/bin/env python3
"""Side-by-side timings of dx-py and uv on the pinned benchmark sets.

Python 3 standard library only. See benches/scripts/README.md for what each number means.

Both tools are run in the same process, trial by trial, alternating which tool goes first, from
the same local wheel directory, with caches and venvs on the same filesystem. A failing command of
either tool is recorded as FAILED (with the tail of its stderr) and the run goes on.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET = REPO / "target"
DEFAULT_SETS_DIR = Path("/work/shared/bench-sets")
DEFAULT_DX_PY = TARGET / "release" / "dx-py"
TOOLS = ("dx-py", "uv")
PHASES = ("venv", "cold", "warm", "disk", "imports")
VARIANTS = ("no-bytecode", "bytecode")
DISK_VENVS = 10

# Modules imported to check that a venv works.
CHECK_MODULES = {
    "small": ["requests"],
    "medium": ["flask", "django", "fastapi", "sqlalchemy", "pydantic", "httpx"],
    "large": ["numpy", "pandas", "scipy", "sklearn", "matplotlib"],
}
# Modules whose import is timed (first import in a fresh venv, then warm imports).
TIMED_IMPORTS = {
    "small": ["requests"],
    "medium": ["flask", "django", "fastapi", "sqlalchemy", "pydantic", "httpx"],
    "large": ["numpy", "pandas"],
}


# --------------------------------------------------------------------------------------------
# Processes


@dataclass
class Proc:
    """The outcome of one subprocess."""

    ok: bool
    secs: float
    rc: int | None
    tail: str


def tail_of(text: bytes | str | None, lines: int = 25, chars: int = 3000) -> str:
    if not text:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out = "\n".join(text.rstrip().splitlines()[-lines:])
    return out[-chars:]


def run(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> Proc:
    """Run `cmd`, timing wall time from spawn to exit; kill its whole process group on timeout."""
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
        return Proc(False, time.perf_counter() - t0, None, f"cannot start {cmd[0]}: {e}")
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        secs = time.perf_counter() - t0
        return Proc(False, secs, None, f"timed out after {timeout:g} s\n{tail_of(err) or tail_of(out)}")
    secs = time.perf_counter() - t0
    ok = p.returncode == 0
    tail = "" if ok else f"exit code {p.returncode}\n{tail_of(err) or tail_of(out)}"
    return Proc(ok, secs, p.returncode, tail)


class TrialFailed(Exception):
    """A command of one trial failed; the message is what the report shows."""


def must(proc: Proc, what: str) -> float:
    if not proc.ok:
        raise TrialFailed(f"{what}: {proc.tail}")
    return proc.secs


# The final states a mount server reports (`dx_py_core::mount::ServerStatus`, JSON in
# {cache}/mounts/<key>.status) when what it completes after mounting (packages stored, bytecode
# compiled) is served, or is not.
BYTECODE_READY = "bytecode-ready"
BYTECODE_FAILED = ("no-bytecode", "packages-failed")


def wait_for_status(state_dir: Path, state: str, failed: tuple[str, ...], timeout: float) -> None:
    """Polls the `*.status` files in `state_dir` every 5 ms until one holds `state`; raises
    TrialFailed if one holds any of `failed` first or `timeout` passes."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        for path in state_dir.glob("*.status"):
            try:
                status = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # replaced atomically, but may vanish with its mount
            if status.get("state") == state:
                return
            if status.get("state") in failed:
                raise TrialFailed(f"mount server: {status}")
        time.sleep(0.005)
    raise TrialFailed(f"no `{state}` in {state_dir}/*.status within {timeout:.0f} s")


def rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Series:
    """Samples of one quantity for one tool, or the failure that stopped them."""

    unit: str  # "s", "bytes", "count" or "text"
    values: list = field(default_factory=list)
    error: str | None = None

    def median(self):
        return statistics.median(self.values) if self.values and self.unit != "text" else None

    def min(self):
        return min(self.values) if self.values and self.unit != "text" else None

    def to_json(self):
        return {
            "unit": self.unit,
            "values": self.values,
            "median": self.median(),
            "min": self.min(),
            "error": self.error,
        }


@dataclass
class Row:
    set: str
    metric: str
    dx: Series | None  # None: not applicable / not run
    uv: Series | None
    note: str = ""


class Trials:
    """Per-tool named series filled by alternating trials; the first failure stops a tool."""

    def __init__(self) -> None:
        self.parts: dict[str, dict[str, list[float]]] = {t: {} for t in TOOLS}
        self.error: dict[str, str | None] = {t: None for t in TOOLS}

    def fail(self, tool: str, msg: str) -> None:
        if self.error[tool] is None:
            self.error[tool] = msg

    def add(self, tool: str, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.parts[tool].setdefault(k, []).append(v)

    def series(self, tool: str, part: str, unit: str = "s") -> Series:
        s = Series(unit, list(self.parts[tool].get(part, [])))
        if self.error[tool] is not None:
            s.error = self.error[tool]
        elif not s.values:
            s.error = "not run"
        return s


def alternate(n: int, trials: dict, acc: Trials, log) -> Trials:
    """Run `trials[tool](i)` for i in 0..n, alternating which tool goes first."""
    tools = [t for t in TOOLS if t in trials]
    for i in range(n):
        order = tools if i % 2 == 0 else list(reversed(tools))
        for tool in order:
            if acc.error[tool] is not None:
                continue
            try:
                acc.add(tool, trials[tool](i))
            except TrialFailed as e:
                acc.fail(tool, str(e))
                log(f"    {tool}: FAILED ({str(e).splitlines()[0]})")
    return acc


# --------------------------------------------------------------------------------------------
# Disk accounting


def usage(roots: list[Path], seen: set | None = None) -> dict[str, int]:
    """Apparent bytes, allocated bytes and inodes under `roots`, each inode counted once.

    Symlinks are not followed (a symlink counts as its own small inode).
    """
    seen = set() if seen is None else seen
    apparent = blocks = inodes = 0
    stack = [Path(r) for r in roots if os.path.lexists(r)]
    while stack:
        p = stack.pop()
        try:
            st = os.lstat(p)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        apparent += st.st_size
        blocks += st.st_blocks * 512
        inodes += 1
        if stat.S_ISDIR(st.st_mode):
            try:
                with os.scandir(p) as it:
                    stack.extend(Path(e.path) for e in it)
            except OSError:
                pass
    return {"apparent": apparent, "allocated": blocks, "inodes": inodes}


# --------------------------------------------------------------------------------------------
# Setup: interpreter, uv, dx-py, wheels


def find_python(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    found = glob.glob(os.path.expanduser("~/.pyenv/versions/3.12.*/bin/python3.12"))
    if not found:
        sys.exit("No ~/.pyenv/versions/3.12.*/bin/python3.12 found; pass --python")

    def key(p: str):
        m = re.search(r"3\.12\.(\d+)", p)
        return int(m.group(1)) if m else -1

    return Path(sorted(found, key=key)[-1])


def readme_uv_version(sets_dir: Path) -> str | None:
    try:
        text = (sets_dir / "README.md").read_text()
    except OSError:
        return None
    m = re.search(r"\buv (\d+\.\d+\.\d+)\b", text)
    return m.group(1) if m else None


def pip_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PIP_FIND_LINKS", None)  # points at an empty dir on these machines
    env.pop("PIP_NO_INDEX", None)
    return env


def install_uv(args, python: Path, pin: str | None, log) -> tuple[Path | None, str]:
    """Return (uv binary, note); install it with pip into target/bench-tools/uv-venv."""
    venv = TARGET / "bench-tools" / "uv-venv"
    uv = venv / "bin" / "uv"
    if args.uv:
        return Path(args.uv), "given with --uv"
    if args.skip_uv_install:
        if uv.exists():
            return uv, f"reused {venv}"
        found = shutil.which("uv")
        if found:
            return Path(found), "found on PATH"
        return None, "--skip-uv-install but no uv in target/bench-tools/uv-venv nor on PATH"
    rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    p = run([python, "-m", "venv", venv], env=pip_env(), cwd=REPO, timeout=args.timeout)
    if not p.ok:
        return None, f"python -m venv failed: {p.tail}"
    pip = venv / "bin" / "pip"
    note = ""
    if pin:
        log(f"installing uv=={pin} with pip into {venv}")
        p = run([pip, "install", "-q", f"uv=={pin}"], env=pip_env(), cwd=REPO, timeout=args.timeout)
        note = f"pip install uv=={pin}"
    if not pin or not p.ok:
        log(f"uv=={pin} not installable, installing the latest uv" if pin else "installing uv")
        p = run([pip, "install", "-q", "uv"], env=pip_env(), cwd=REPO, timeout=args.timeout)
        note = f"pip install uv (pin {pin} unavailable)" if pin else "pip install uv"
    if not p.ok:
        return None, f"pip install uv failed: {p.tail}"
    return uv, note


def ensure_dx_py(args, log) -> tuple[Path | None, str]:
    path = Path(args.dx_py) if args.dx_py else DEFAULT_DX_PY
    if path.exists():
        return path, ""
    if args.dx_py:
        return None, f"{path} does not exist"
    log("building dx-py: cargo build --release -p dx-py")
    p = run(["cargo", "build", "--release", "-p", "dx-py"], env=dict(os.environ), cwd=REPO, timeout=7200)
    if not p.ok or not path.exists():
        return None, f"cargo build --release -p dx-py failed: {p.tail}"
    return path, "built with cargo build --release -p dx-py"


def version_of(cmd: list, cwd: Path) -> str:
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return f"? ({e})"
    lines = (p.stdout.strip() or p.stderr.strip()).splitlines()
    return lines[0] if p.returncode == 0 and lines else "?"


def ensure_wheels(set_name: str, reqs: Path, python: Path, args, log) -> tuple[Path | None, str]:
    """Download the set's wheels once into target/bench-wheels/SET (reused when complete)."""
    dest = TARGET / "bench-wheels" / set_name
    marker = dest / ".complete"
    digest = hashlib.sha256(reqs.read_bytes()).hexdigest()
    if marker.exists() and marker.read_text().strip() == digest:
        return dest, "cached"
    dest.mkdir(parents=True, exist_ok=True)
    log(f"downloading wheels for {set_name} into {dest}")
    cmd = [python, "-m", "pip", "download", "--only-binary=:all:", "--no-deps", "-q", "-r", reqs, "-d", dest]
    p = run(cmd, env=pip_env(), cwd=REPO, timeout=max(args.timeout, 1800))
    if not p.ok:
        return None, f"pip download failed: {p.tail}"
    pins = [ln for ln in reqs.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    wheels = list(dest.glob("*.whl"))
    if len(wheels) < len(pins):
        return None, f"expected {len(pins)} wheels in {dest}, got {len(wheels)}"
    marker.write_text(digest + "\n")
    return dest, "downloaded"


def tool_env() -> dict[str, str]:
    """Environment of every benchmarked process (both tools and the venv interpreters)."""
    env = dict(os.environ)
    for k in list(env):
        if k.startswith(("UV_", "DX_PY_", "PIP_")) or k in (
            "PYTHONDONTWRITEBYTECODE",
            "PYTHONPATH",
            "PYTHONHOME",
            "PYTHONSTARTUP",
            "VIRTUAL_ENV",
            "CONDA_PREFIX",
        ):
            del env[k]
    env["UV_NO_CONFIG"] = "1"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_PROGRESS"] = "1"
    return env


# --------------------------------------------------------------------------------------------
# The benchmark of one set


class SetBench:
    def __init__(self, name, reqs, wheels, python, dx, uv, work, args, log, requested, unavailable):
        self.name, self.reqs, self.wheels, self.py = name, reqs, wheels, python
        self.dx, self.uv, self.work, self.args, self.log = dx, uv, work, args, log
        self.requested = requested  # tools asked for with --tools
        self.unavailable = unavailable  # tool -> why it could not be set up
        self.env = tool_env()
        self.rows: list[Row] = []
        self.counter = 0
        self.tools = [t for t in TOOLS if (t == "dx-py" and dx) or (t == "uv" and uv)]
        self.import_cmd = "import " + ", ".join(TIMED_IMPORTS[name])
        self.check_cmd = "import " + ", ".join(CHECK_MODULES[name])

    # -- helpers

    def fresh(self, stem: str) -> Path:
        self.counter += 1
        return self.work / f"{stem}-{self.counter}"

    def exe(self, cmd, cwd: Path | None = None) -> Proc:
        return run(cmd, env=self.env, cwd=cwd or self.work, timeout=self.args.timeout)

    def uv_exe(self, cmd, cache: Path) -> Proc:
        env = dict(self.env, UV_CACHE_DIR=str(cache))
        return run([self.uv, *cmd], env=env, cwd=self.work, timeout=self.args.timeout)

    def uv_venv(self, venv: Path, cache: Path) -> float:
        return must(self.uv_exe(["venv", venv, "--python", self.py], cache), "uv venv")

    def uv_install(self, venv: Path, cache: Path, bytecode: bool) -> float:
        cmd = ["pip", "install", "--offline", "--no-index", "--find-links", self.wheels, "-r", self.reqs]
        cmd += ["--python", venv / "bin" / "python"]
        if bytecode:
            cmd.append("--compile-bytecode")
        return must(self.uv_exe(cmd, cache), "uv pip install")

    def dx_venv(self, venv: Path, cache: Path) -> float:
        cmd = [self.dx, "--cache-dir", cache, "venv", venv, "--python", self.py]
        return must(self.exe(cmd), "dx-py venv")

    def dx_install(self, venv: Path, cache: Path, bytecode: bool) -> float:
        cmd = [self.dx, "--cache-dir", cache, "install", "-r", self.reqs, "--find-links", self.wheels]
        cmd += ["--venv", venv, "--python", self.py]
        if not bytecode:
            cmd.append("--no-compile-bytecode")
        return must(self.exe(cmd), "dx-py install")

    def dx_lock_and_mount(self, done: list[Path], root: Path) -> dict[str, float]:
        """Cold `dx-py mount -r` (lock, tree, mount; the server then compiles the bytecode and
        adds it to the mount) of a fresh venv under `root`, run in an empty project directory.
        Times the command (the venv works when it returns) and, from the same start, the server's
        "bytecode-ready" status (polled every 5 ms); unmounted afterwards, untimed. The
        directories used are appended to `done` for the caller to remove."""
        self.counter += 1
        cache, project, venv = (root / f"{s}-{self.counter}" for s in ("dx-cache-mount", "dx-proj-mount", "dx-venv-mount"))
        done.extend([venv, project, cache])
        project.mkdir()
        os.sync()
        mount = [self.dx, "--cache-dir", cache, "mount", venv, "-r", self.reqs]
        mount += ["--find-links", self.wheels, "--python", self.py]
        try:
            t0 = time.perf_counter()
            t_mount = must(self.exe(mount, cwd=project), "dx-py mount -r")
            # What a user does next: import (packages still being stored wait for it).
            must(self.exe([venv / "bin" / "python", "-c", self.import_cmd]), "first import")
            t_import = time.perf_counter() - t0
            wait_for_status(cache / "mounts", BYTECODE_READY, BYTECODE_FAILED, self.args.timeout)
            t_ready = time.perf_counter() - t0
        finally:
            self.exe([self.dx, "--cache-dir", cache, "unmount", venv])
        return {"mount": t_mount, "bytecode": t_ready, "first_import": t_import}

    def add(self, metric, dx, uv, note=""):
        cells = []
        for tool, s in (("dx-py", dx), ("uv", uv)):
            if tool not in self.requested:
                s = None
            elif tool in self.unavailable:
                s = Series(s.unit, error=f"{tool} unavailable: {self.unavailable[tool]}")
            cells.append(s)
        self.rows.append(Row(self.name, metric, cells[0], cells[1], note))

    # -- phases

    def bench_venv(self):
        n = self.args.runs
        self.log(f"  [{self.name}] venv creation x{n}")
        caches = {"dx-py": self.work / "dx-cache-venv", "uv": self.work / "uv-cache-venv"}

        def trial(tool):
            def go(i):
                v = self.fresh(f"venv-{tool}")
                try:
                    f = self.dx_venv if tool == "dx-py" else self.uv_venv
                    return {"venv": f(v, caches[tool])}
                finally:
                    rmtree(v)

            return go

        acc = Trials()
        warm = {t: trial(t) for t in self.tools}
        alternate(1, warm, acc, self.log)  # untimed warm-up (interpreter query cached)
        acc2 = Trials()
        for t in TOOLS:
            acc2.error[t] = acc.error[t]
        alternate(n, warm, acc2, self.log)
        self.add("venv creation (warm cache)", acc2.series("dx-py", "venv"), acc2.series("uv", "venv"))

    def bench_cold(self, variant: str):
        n = self.args.runs
        bc = variant == "bytecode"
        self.log(f"  [{self.name}] cold install, {variant}, x{n}")

        # Trial directories are removed only after the last trial: ext4 will not reuse an inode
        # freed in the last minutes, and a file created right after a large removal pays for
        # scanning past those inodes, so removing between trials would charge one tool for the
        # other's clean-up. `sync` before each trial keeps the previous trial's writeback out.
        # With --fresh-fs each trial's file system is unmounted (which writes it back) and its
        # image removed as soon as the trial ends: a loop device's writeback lands in its
        # image's page cache on the host file system, which `sync` alone may leave dirty for
        # the next trial to pay for.
        done: list[Path] = []
        filesystems: list[tuple[Path, Path]] = []

        def release_filesystems():
            for mnt, img in filesystems:
                subprocess.run(["umount", str(mnt)], check=False)
                rmtree(mnt)
                rmtree(img)
            filesystems.clear()
            os.sync()

        def trial_dir(stem: str) -> Path:
            """Where one trial's cache and venv go: the work directory, or with --fresh-fs a new,
            empty ext4 file system (a loop-mounted image) so no trial inherits another's freed
            inodes."""
            if not self.args.fresh_fs:
                return self.work
            img, mnt = self.fresh(f"{stem}.img"), self.fresh(stem)
            mnt.mkdir()
            with open(img, "wb") as f:
                f.truncate(16 << 30)
            subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], check=True)
            filesystems.append((mnt, img))
            return mnt

        def dx_trial(i):
            root = trial_dir("dx-fs")
            cache, venv = root / f"dx-cache-cold-{i}", root / f"dx-venv-cold-{i}"
            done.extend([venv, cache])
            os.sync()
            out = {"total": self.dx_install(venv, cache, bc)}
            release_filesystems()
            if self.args.mount:
                out.update(self.dx_lock_and_mount(done, trial_dir("dx-mount-fs")))
                release_filesystems()
            return out

        def uv_trial(i):
            root = trial_dir("uv-fs")
            cache, venv = root / f"uv-cache-cold-{i}", root / f"uv-venv-cold-{i}"
            done.extend([venv, cache])
            os.sync()
            t_venv = self.uv_venv(venv, cache)
            t_inst = self.uv_install(venv, cache, bc)
            out = {"total": t_venv + t_inst, "install": t_inst}
            if self.args.mount:
                # The same first import as after dx-py's mount (writing __pycache__ as it goes).
                t_imp = must(self.exe([venv / "bin" / "python", "-c", self.import_cmd]), "first import")
                out["first_import"] = t_venv + t_inst + t_imp
            release_filesystems()
            return out

        trials = {"dx-py": dx_trial, "uv": uv_trial}
        try:
            acc = alternate(n, {t: trials[t] for t in self.tools}, self._only_tools(Trials()), self.log)
        finally:
            release_filesystems()
            for d in done:
                rmtree(d)
        dx_flag = "default" if bc else "--no-compile-bytecode"
        uv_flag = "--compile-bytecode" if bc else "default"
        self.add(
            f"cold install, {variant}: venv+install",
            acc.series("dx-py", "total"),
            acc.series("uv", "total"),
            f"dx-py {dx_flag}; uv {uv_flag}; both: fresh cache, venv creation included",
        )
        self.add(
            f"cold install, {variant}: dx-py venv+install vs uv install only",
            acc.series("dx-py", "total"),
            acc.series("uv", "install"),
            "dx-py column still includes its venv creation (one process)",
        )
        if self.args.mount:
            self.add(
                f"cold mount -r (dx-py) vs cold install (uv), {variant}",
                acc.series("dx-py", "mount"),
                acc.series("uv", "total"),
                "dx-py mount -r: lock, tree, mount (FUSE, served from the store): the venv imports when it returns; "
                f"uv venv + install ({uv_flag}); both from an empty cache",
            )
            self.add(
                f"cold start to a first import: mount -r + import (dx-py) vs venv + install + import (uv), {variant}",
                acc.series("dx-py", "first_import"),
                acc.series("uv", "first_import"),
                f"`{self.import_cmd}` right after the command returns; dx-py: packages not stored yet are waited for, "
                "modules compile in memory until the bytecode arrives; uv: modules compile and write __pycache__",
            )
            self.add(
                f"cold mount -r until its bytecode is served vs cold install (uv), {variant}",
                acc.series("dx-py", "bytecode"),
                acc.series("uv", "total"),
                "the same dx-py trial, until the server logs that the .pyc it compiled after mounting are served",
            )

    def _only_tools(self, acc: Trials) -> Trials:
        for t in TOOLS:
            if t not in self.tools:
                acc.fail(t, "tool not available")
        return acc

    def bench_warm(self, variant: str, phases: list[str]):
        n = self.args.runs
        bc = variant == "bytecode"
        self.log(f"  [{self.name}] warm install into a new venv, {variant}, x{n}")
        caches = {"dx-py": self.work / f"dx-cache-warm-{variant}", "uv": self.work / f"uv-cache-warm-{variant}"}
        venvs: dict[str, list[Path]] = {t: [] for t in TOOLS}
        acc = self._only_tools(Trials())

        def make(tool) -> dict[str, float]:
            v = self.fresh(f"{tool}-venv-warm-{variant}")
            venvs[tool].append(v)
            # Untimed: let the previous install's writeback (the cold warm-up wrote ~1 GB for the
            # large set, each uv trial thousands of files) finish, so a trial measures a warm
            # install on a disk at rest, not the other's leftovers.
            os.sync()
            if tool == "dx-py":
                return {"total": self.dx_install(v, caches[tool], bc)}
            t_venv = self.uv_venv(v, caches[tool])
            t_inst = self.uv_install(v, caches[tool], bc)
            return {"total": t_venv + t_inst, "install": t_inst, "venv": t_venv}

        # Untimed warm-up: fill each cache with one install, then throw that venv away.
        for tool in self.tools:
            try:
                make(tool)
            except TrialFailed as e:
                acc.fail(tool, f"warm-up install failed: {e}")
            for v in venvs[tool]:
                rmtree(v)
            venvs[tool].clear()

        alternate(n, {t: (lambda i, t=t: make(t)) for t in self.tools}, acc, self.log)
        dx_flag = "default" if bc else "--no-compile-bytecode"
        uv_flag = "--compile-bytecode" if bc else "default"
        self.add(
            f"warm install, {variant}: venv+install",
            acc.series("dx-py", "total"),
            acc.series("uv", "total"),
            f"dx-py {dx_flag} (layout hit); uv {uv_flag}; warm cache, new venv",
        )
        self.add(
            f"warm install, {variant}: dx-py venv+install vs uv install only",
            acc.series("dx-py", "total"),
            acc.series("uv", "install"),
            "dx-py column still includes its venv creation (one process)",
        )

        if "disk" in phases:
            self.bench_disk(variant, caches, venvs, acc)
        if "imports" in phases:
            self.bench_imports(variant, venvs, acc)
        for tool in TOOLS:
            for v in venvs[tool]:
                rmtree(v)
        for c in caches.values():
            rmtree(c)

    def bench_disk(self, variant, caches, venvs, acc: Trials):
        self.log(f"  [{self.name}] disk of {DISK_VENVS} venvs + cache, {variant}")
        err = dict(acc.error)
        for tool in self.tools:
            while err[tool] is None and len(venvs[tool]) < DISK_VENVS:
                v = self.fresh(f"{tool}-venv-disk-{variant}")
                try:
                    if tool == "dx-py":
                        self.dx_install(v, caches[tool], variant == "bytecode")
                    else:
                        self.uv_venv(v, caches[tool])
                        self.uv_install(v, caches[tool], variant == "bytecode")
                    venvs[tool].append(v)
                except TrialFailed as e:
                    err[tool] = f"extra venv for the disk count failed: {e}"
                    rmtree(v)
        figures = {}
        for tool in TOOLS:
            if err[tool] is not None:
                figures[tool] = None
                continue
            ten = venvs[tool][:DISK_VENVS]
            seen: set = set()
            v = usage(ten, seen)
            c = usage([caches[tool]], seen)  # what the cache adds on top of the venvs
            figures[tool] = {
                "venvs": usage(ten),
                "cache": usage([caches[tool]]),
                "combined": {k: v[k] + c[k] for k in v},
            }

        def s(tool, part, key, unit):
            if figures[tool] is None:
                return Series(unit, error=err[tool])
            return Series(unit, [figures[tool][part][key]])

        label = f"disk, {variant}, {DISK_VENVS} venvs"
        self.add(f"{label}: venvs, apparent", s("dx-py", "venvs", "apparent", "bytes"), s("uv", "venvs", "apparent", "bytes"))
        self.add(f"{label}: cache, apparent", s("dx-py", "cache", "apparent", "bytes"), s("uv", "cache", "apparent", "bytes"))
        self.add(
            f"{label}: venvs+cache, apparent",
            s("dx-py", "combined", "apparent", "bytes"),
            s("uv", "combined", "apparent", "bytes"),
            "inodes shared by venvs and cache counted once",
        )
        self.add(
            f"{label}: venvs+cache, allocated",
            s("dx-py", "combined", "allocated", "bytes"),
            s("uv", "combined", "allocated", "bytes"),
            "st_blocks*512",
        )
        self.add(f"{label}: venvs+cache, inodes", s("dx-py", "combined", "inodes", "count"), s("uv", "combined", "inodes", "count"))

    def bench_imports(self, variant, venvs, acc: Trials):
        n = self.args.runs
        self.log(f"  [{self.name}] imports, {variant}")
        trial_venvs = {t: venvs[t][:n] for t in TOOLS}
        err = dict(acc.error)
        for t in TOOLS:
            if err[t] is None and not trial_venvs[t]:
                err[t] = "no venv"

        # Check: every listed module imports in the first venv of each tool.
        check = {}
        for t in TOOLS:
            if err[t] is not None:
                check[t] = Series("text", error=err[t])
                continue
            p = self.exe([trial_venvs[t][0] / "bin" / "python", "-c", self.check_cmd])
            check[t] = Series("text", ["ok"]) if p.ok else Series("text", error=f"{self.check_cmd}: {p.tail}")
        self.add(f"import check, {variant}", check["dx-py"], check["uv"], self.check_cmd)

        first = Trials()
        for t in TOOLS:
            if err[t] is not None or check[t].error:
                first.fail(t, err[t] or check[t].error)

        def first_import(tool):
            def go(i):
                if i >= len(trial_venvs[tool]):
                    raise TrialFailed("fewer venvs than runs")
                py = trial_venvs[tool][i] / "bin" / "python"
                return {"t": must(self.exe([py, "-c", self.import_cmd]), self.import_cmd)}

            return go

        alternate(n, {t: first_import(t) for t in self.tools}, first, self.log)
        self.add(
            f"first import, {variant}",
            first.series("dx-py", "t"),
            first.series("uv", "t"),
            f"`{self.import_cmd}` once in each new venv",
        )

        warm = Trials()
        for t in TOOLS:
            warm.error[t] = first.error[t]

        def warm_import(tool):
            def go(i):
                py = trial_venvs[tool][-1] / "bin" / "python"
                return {"t": must(self.exe([py, "-c", self.import_cmd]), self.import_cmd)}

            return go

        alternate(n, {t: warm_import(t) for t in self.tools}, warm, self.log)
        self.add(
            f"warm import, {variant}",
            warm.series("dx-py", "t"),
            warm.series("uv", "t"),
            f"`{self.import_cmd}` again in one venv",
        )


# --------------------------------------------------------------------------------------------
# Report


def fmt(series: Series | None, which: str) -> str:
    if series is None:
        return "n/a"
    if series.error is not None:
        return "FAILED"
    if series.unit == "text":
        return series.values[0] if series.values else ""
    v = series.median() if which == "median" else series.min()
    if v is None:
        return ""
    if series.unit == "s":
        ms = v * 1000
        return f"{ms:,.2f} ms" if ms < 10 else f"{ms:,.1f} ms" if ms < 100 else f"{ms:,.0f} ms"
    if series.unit == "bytes":
        return f"{v / 2**20:,.2f} MiB"
    return f"{v:,}"


def ratio(row: Row) -> str:
    if row.dx is None or row.uv is None or row.dx.error or row.uv.error:
        return ""
    a, b = row.dx.median(), row.uv.median()
    if a is None or b is None or b == 0:
        return ""
    return f"{a / b:.2f}"


def markdown(meta: dict | None, rows: list[Row], setup_failures: list[str]) -> str:
    """The report: meta list, table and failures; just the table and failures when `meta` is None."""
    out = []
    if meta is not None:
        out += ["# dx-py vs uv", ""]
        out += [f"- {k}: {v}" for k, v in meta.items()]
        out += [
            "",
            "Times are whole-process wall times (spawn to exit) measured from Python; medians and minima",
            "of the runs, tools alternating which goes first. Ratio = dx-py median / uv median (below 1:",
            "dx-py is faster or smaller). Sizes are MiB of 10 venvs, each inode counted once.",
            "",
        ]
    out += [
        "| set | metric | dx-py median | uv median | ratio dx-py/uv | dx-py min | uv min | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    failures = []
    for r in rows:
        cells = []
        for s, which in ((r.dx, "median"), (r.uv, "median")):
            cells.append(fmt(s, which))
        for i, s in enumerate((r.dx, r.uv)):
            if s is not None and s.error is not None:
                failures.append((r, TOOLS[i], s.error))
                cells[i] = f"FAILED [{len(failures)}]"
        mins = [fmt(r.dx, "min"), fmt(r.uv, "min")]
        if any(s is not None and s.unit in ("text",) for s in (r.dx, r.uv)):
            mins = ["", ""]
        if any(s is not None and (s.unit in ("bytes", "count")) for s in (r.dx, r.uv)):
            mins = ["", ""]
        mins = ["" if m == "FAILED" else m for m in mins]
        out.append(f"| {r.set} | {r.metric} | {cells[0]} | {cells[1]} | {ratio(r)} | {mins[0]} | {mins[1]} | {r.note} |")
    if setup_failures or failures:
        out += ["", "## Failures", ""]
        for f in setup_failures:
            out.append(f"- setup: {f}")
        seen_msgs: dict[str, int] = {}
        for i, (r, tool, err) in enumerate(failures, 1):
            if err in seen_msgs:
                out.append(f"- [{i}] {r.set} / {r.metric} / {tool}: same as [{seen_msgs[err]}]")
                continue
            seen_msgs[err] = i
            out.append(f"- [{i}] {r.set} / {r.metric} / {tool}:")
            out.append("")
            out.append("  ```")
            out += ["  " + ln for ln in err.splitlines()]
            out.append("  ```")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------


def spawn_floor(n: int, cwd: Path) -> float:
    true = shutil.which("true") or "/bin/true"
    times = [run([true], env=tool_env(), cwd=cwd, timeout=60).secs for _ in range(max(n, 5))]
    return statistics.median(times)


def fs_type(path: Path) -> str:
    best, kind = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    mnt = parts[1].replace("\\040", " ")
                    if str(path).startswith(mnt.rstrip("/") + "/") or str(path) == mnt:
                        if len(mnt) > len(best):
                            best, kind = mnt, parts[2]
    except OSError:
        pass
    return f"{kind} (mounted at {best or '?'})"


# --------------------------------------------------------------------------------------------
# What the smaller side-by-side scripts (compare_uv_resolve.py, compare_uv_local.py) share


def side_by_side_args(ap: argparse.ArgumentParser) -> None:
    """The options every side-by-side script takes."""
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dx-py", dest="dx_py")
    ap.add_argument("--uv", help="uv binary (default: target/bench-tools/uv-venv, installed when missing)")
    ap.add_argument("--skip-uv-install", action="store_true")
    ap.add_argument("--tools", default="dx-py,uv")
    ap.add_argument("--python")
    ap.add_argument("--sets-dir", default=str(DEFAULT_SETS_DIR))
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out")


def side_by_side_tools(args, python: Path, log) -> tuple[Path | None, Path | None, list[str]]:
    """(uv, dx-py, setup failures) for the tools `--tools` names."""
    tools = [t for t in args.tools.split(",") if t]
    failures: list[str] = []
    uv = dx = None
    if "uv" in tools:
        uv, note = install_uv(args, python, readme_uv_version(Path(args.sets_dir)), log)
        if uv is None:
            failures.append(f"uv unavailable: {note}")
    if "dx-py" in tools:
        dx, note = ensure_dx_py(args, log)
        if dx is None:
            failures.append(f"dx-py unavailable: {note}")
    return uv, dx, failures


def side_by_side_meta(now, python: Path, uv, dx, runs: int, work: Path) -> dict:
    """The report's header: when, where, which tools, the load and the spawn floor."""
    return {
        "date": now.isoformat(timespec="seconds"),
        "host": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)",
        "python": str(python),
        "uv": version_of([uv, "--version"], work) if uv else "unavailable",
        "dx-py": version_of([dx, "--version"], work) if dx else "unavailable",
        "index": "the interpreter's pip default (both tools)",
        "runs": runs,
        "load average at start": "%.2f %.2f %.2f" % os.getloadavg(),
        "process spawn floor (/bin/true, median)": f"{spawn_floor(runs, work) * 1000:.2f} ms",
    }


def write_side_by_side(meta: dict, rows: list[Row], failures: list[str], title: str, stem: str, out) -> str:
    """Writes the markdown and JSON reports (`out`, else target/bench-results/STEM-<date>)."""
    meta["load average at end"] = "%.2f %.2f %.2f" % os.getloadavg()
    md = markdown(meta, rows, failures).replace("# dx-py vs uv", f"# dx-py vs uv: {title}", 1)
    now = _dt.datetime.fromisoformat(meta["date"])
    path = Path(out) if out else TARGET / "bench-results" / f"{stem}-{now:%Y-%m-%d-%H%M%S}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".md").write_text(md)
    path.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "rows": [{"set": r.set, "metric": r.metric, "ratio": ratio(r) or None,
                                             "dx-py": r.dx.to_json() if r.dx else None,
                                             "uv": r.uv.to_json() if r.uv else None} for r in rows]}, indent=2)
    )
    return md


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="small,medium,large", help="comma-separated set names (default: %(default)s)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per metric and tool (default: %(default)s)")
    ap.add_argument("--dx-py", dest="dx_py", help=f"dx-py binary (default: {DEFAULT_DX_PY}, built if missing)")
    ap.add_argument("--uv", help="use this uv binary instead of installing one")
    ap.add_argument(
        "--skip-uv-install",
        action="store_true",
        help="do not pip-install uv: reuse target/bench-tools/uv-venv from an earlier run, else uv on PATH",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary venvs and caches")
    ap.add_argument(
        "--fresh-fs",
        action="store_true",
        help="run each cold trial on a new loop-mounted ext4 file system (root; see README)",
    )
    ap.add_argument(
        "--no-mount",
        dest="mount",
        action="store_false",
        help="skip the cold `dx-py mount -r` row (it needs FUSE)",
    )
    ap.add_argument("--tools", default="dx-py,uv", help="tools to run (default: %(default)s)")
    ap.add_argument("--phases", default=",".join(PHASES), help="phases to run (default: %(default)s)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="install variants (default: %(default)s)")
    ap.add_argument("--python", help="CPython 3.12 interpreter (default: newest ~/.pyenv/versions/3.12.*)")
    ap.add_argument("--sets-dir", default=str(DEFAULT_SETS_DIR), help="where SET.txt live (default: %(default)s)")
    ap.add_argument("--work-dir", help="parent of the temporary directory (default: target/bench-tmp)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per subprocess (default: %(default)s)")
    ap.add_argument("--out", help="output stem (default: target/bench-results/compare-uv-<date>)")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    sets = [s for s in args.sets.split(",") if s]
    tools = [t for t in args.tools.split(",") if t]
    phases = [p for p in args.phases.split(",") if p]
    variants = [v for v in args.variants.split(",") if v]
    for name, got, allowed in (("--tools", tools, TOOLS), ("--phases", phases, PHASES), ("--variants", variants, VARIANTS)):
        bad = [g for g in got if g not in allowed]
        if bad:
            ap.error(f"{name}: unknown {bad}, expected some of {list(allowed)}")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    sets_dir = Path(args.sets_dir)
    for s in sets:
        if s not in CHECK_MODULES or not (sets_dir / f"{s}.txt").exists():
            ap.error(f"unknown set {s!r}: expected one of {list(CHECK_MODULES)} with {sets_dir}/{s}.txt")

    python = find_python(args.python)
    setup_failures: list[str] = []
    uv = dx = None
    uv_note = dx_note = ""
    uv_pin = readme_uv_version(sets_dir)
    if "uv" in tools:
        uv, uv_note = install_uv(args, python, uv_pin, log)
        if uv is None:
            setup_failures.append(f"uv unavailable: {uv_note}")
    if "dx-py" in tools:
        dx, dx_note = ensure_dx_py(args, log)
        if dx is None:
            setup_failures.append(f"dx-py unavailable: {dx_note}")

    work_parent = Path(args.work_dir) if args.work_dir else TARGET / "bench-tmp"
    work_parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="compare-uv-", dir=work_parent)).resolve()
    now = _dt.datetime.now()
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    meta = {
        "date": now.isoformat(timespec="seconds"),
        "host": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()})",
        "filesystem of work dir": fs_type(work),
        "work dir": str(work),
        "python": f"{python} ({version_of([python, '--version'], work)})",
        "uv": f"{version_of([uv, '--version'], work) if uv else 'unavailable'} ({uv_note or uv})",
        "uv pin from bench-sets README": uv_pin or "none",
        "dx-py": f"{version_of([dx, '--version'], work) if dx else 'unavailable'} ({dx or ''} {dx_note})".strip(),
        "repo commit": commit or "?",
        "runs": args.runs,
        "load average at start (1/5/15 min)": "%.2f %.2f %.2f" % os.getloadavg(),
        "process spawn floor (/bin/true, median)": f"{spawn_floor(args.runs, work) * 1000:.2f} ms",
        "environment": "PYTHONDONTWRITEBYTECODE, PYTHONPATH, PIP_*, UV_*, DX_PY_* removed for every timed "
        "process (so imports write .pyc where they can); UV_NO_CONFIG=1, UV_PYTHON_DOWNLOADS=never, "
        "UV_NO_PROGRESS=1; uv link mode is its default (hardlink on Linux)",
    }
    log("\n".join(f"{k}: {v}" for k, v in meta.items()))

    rows: list[Row] = []
    try:
        for s in sets:
            reqs = sets_dir / f"{s}.txt"
            wheels, wnote = ensure_wheels(s, reqs, python, args, log)
            if wheels is None:
                setup_failures.append(f"{s}: {wnote}")
                continue
            set_work = work / s
            set_work.mkdir()
            log(f"set {s}: {reqs}, wheels {wheels} ({wnote})")
            unavailable = {}
            if "dx-py" in tools and dx is None:
                unavailable["dx-py"] = dx_note
            if "uv" in tools and uv is None:
                unavailable["uv"] = uv_note
            b = SetBench(s, reqs, wheels, python, dx, uv, set_work, args, log, tools, unavailable)
            if "venv" in phases:
                b.bench_venv()
            for v in variants:
                if "cold" in phases:
                    b.bench_cold(v)
            for v in variants:
                if "warm" in phases:
                    b.bench_warm(v, phases)
            rows += b.rows
            if not args.keep:
                rmtree(set_work)
            print(markdown(None, b.rows, []), file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            rmtree(work)
        else:
            log(f"kept {work}")

    meta["load average at end (1/5/15 min)"] = "%.2f %.2f %.2f" % os.getloadavg()
    md = markdown(meta, rows, setup_failures)
    out = Path(args.out) if args.out else TARGET / "bench-results" / f"compare-uv-{now:%Y-%m-%d-%H%M%S}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(md)
    data = {
        "meta": meta,
        "setup_failures": setup_failures,
        "rows": [
            {
                "set": r.set,
                "metric": r.metric,
                "note": r.note,
                "dx-py": r.dx.to_json() if r.dx else None,
                "uv": r.uv.to_json() if r.uv else None,
                "ratio": ratio(r) or None,
            }
            for r in rows
        ],
    }
    out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    print(md)
    log(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
