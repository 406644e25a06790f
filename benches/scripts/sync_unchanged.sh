#!/usr/bin/env bash
# An unchanged project's whole-process `dx-py sync` (and `run python -c pass`'s lock check is the
# same path) with this build's universal lock, against floors in the same run: `dx-py --version`
# (process start) and, when given, an older dx-py's unchanged `sync` of the same project (a
# pre-universal build: one-interpreter lock), each with its own cache. With hyperfine.
#
#   bash benches/scripts/sync_unchanged.sh [DX_PY] [OLD_DX_PY] [PACKAGES]
#
# DX_PY defaults to target/release/dx-py (built when missing); PACKAGES (default 40) tiny pure
# wheels are made locally (pkg0 requiring the rest, half of them on Linux only), so nothing is
# downloaded. Everything lives in a temporary directory, removed at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dx=${1:-$root/target/release/dx-py}
old=${2:-}
n=${3:-40}
[ -x "$dx" ] || cargo build --release -p dx-py --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/wheels"
python3 - "$n" "$work/wheels" <<'PY'
import base64, hashlib, sys, zipfile
n, out = int(sys.argv[1]), sys.argv[2]
def wheel(name, requires):
    dist = f"{name}-1.0.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {f"{name}.py": b"",
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
             f"{dist}/METADATA": meta.encode()}
    digest = lambda b: base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=").decode()
    record = "".join(f"{p},sha256={digest(b)},{len(b)}\n" for p, b in files.items())
    with zipfile.ZipFile(f"{out}/{name}-1.0-py3-none-any.whl", "w") as z:
        for p, b in files.items():
            z.writestr(p, b)
        z.writestr(f"{dist}/RECORD", record + f"{dist}/RECORD,,\n")
wheel("pkg0", [f"pkg{i}" + ("; sys_platform == 'linux'" if i % 2 else "") for i in range(1, n)])
for i in range(1, n):
    wheel(f"pkg{i}", [])
PY
project() {
    mkdir -p "$work/$1"
    printf '[project]\nname = "demo"\nversion = "0.1"\nrequires-python = ">=3.9"\ndependencies = ["pkg0"]\n' \
        > "$work/$1/pyproject.toml"
}
sync_args="sync -q --no-index --find-links $work/wheels"
project new
(cd "$work/new" && "$dx" --cache-dir "$work/cache-new" $sync_args)
# Where the unchanged sync's time goes.
(cd "$work/new" && "$dx" --cache-dir "$work/cache-new" ${sync_args/-q/-v} 2>&1)
# Through the shell (each project is its own directory); hyperfine subtracts the shell's start.
cmds=("$dx --version" "cd $work/new && $dx --cache-dir $work/cache-new $sync_args")
names=("floor: --version" "sync, unchanged (this build)")
if [ -n "$old" ]; then
    project old
    (cd "$work/old" && "$old" --cache-dir "$work/cache-old" $sync_args)
    cmds+=("cd $work/old && $old --cache-dir $work/cache-old $sync_args")
    names+=("sync, unchanged ($(basename "$old"))")
fi
args=()
for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
hyperfine --warmup 5 --runs "${RUNS:-100}" "${args[@]}"
