#!/usr/bin/env bash
# An unchanged `dx-py install --lock` of a universal lock (DPL version 2, the choice for this
# interpreter kept in the cache) against one of a DPL version 1 of the same packages, in the same
# run, whole process, with hyperfine.
#
#   bash benches/scripts/install_lock_v2.sh [DX_PY] [PACKAGES]
#
# DX_PY defaults to target/release/dx-py (built when missing); PACKAGES (default 40) tiny wheels
# are made locally, so nothing is downloaded. Everything lives in a temporary directory, removed
# at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dx=${1:-$root/target/release/dx-py}
n=${2:-40}
[ -x "$dx" ] || cargo build --release -p dx-py --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DX_PY_CACHE_DIR=$work/cache
mkdir -p "$work/project/wheels"
cd "$work/project"

# PACKAGES pure wheels, pkg0 requiring the rest; half of them only on Linux (a marker), so the v2
# lock holds entries this machine's choice leaves out... and one on Windows only.
python3 - "$n" <<'PY'
import base64, hashlib, sys, zipfile
n = int(sys.argv[1])
def wheel(name, requires):
    dist = f"{name}-1.0.dist-info"
    files = {f"{name}.py": b"", f"{dist}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
             f"{dist}/METADATA": ("Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n" % name
                                 + "".join(f"Requires-Dist: {r}\n" for r in requires)).encode()}
    record = "".join(f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()},{len(b)}\n"
                     for p, b in files.items()) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(f"wheels/{name}-1.0-py3-none-any.whl", "w") as z:
        for p, b in files.items():
            z.writestr(p, b)
        z.writestr(f"{dist}/RECORD", record)
reqs = [f"pkg{i}" + ("; sys_platform == 'linux'" if i % 2 else "") for i in range(1, n)]
reqs.append("winonly; sys_platform == 'win32'")
wheel("pkg0", reqs)
for i in range(1, n):
    wheel(f"pkg{i}", [])
wheel("winonly", [])
open("requirements.in", "w").write("pkg0\n")
PY

"$dx" -q lock --universal -r requirements.in --no-index --find-links wheels
mkdir v2 v1
cp dx-py.dpl v2/dx-py.dpl
# First install from v2: makes the selection (a v1 of the same packages) and the layout.
"$dx" -q install --lock v2/dx-py.dpl --venv .venv --no-index --find-links wheels
cp "$DX_PY_CACHE_DIR"/selected/*.dpl v1/dx-py.dpl
"$dx" -q install --lock v1/dx-py.dpl --venv .venv --no-index --find-links wheels
"$dx" dpl dump v2/dx-py.dpl | head -1
"$dx" dpl dump v1/dx-py.dpl | head -1
hyperfine -N --warmup 5 --runs "${RUNS:-100}" \
    "$dx -q install --lock v1/dx-py.dpl --venv .venv" \
    "$dx -q install --lock v2/dx-py.dpl --venv .venv"
