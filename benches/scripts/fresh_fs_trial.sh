#!/bin/bash
# One cold install on a brand-new ext4 file system (a loop-mounted image), so that no trial
# inherits another's freed inodes; for A/B runs of two dx-py builds, or against uv.
#
#   benches/scripts/fresh_fs_trial.sh BINARY|uv SET [install flags...]
#
# BINARY is a dx-py binary; SET names benches' pinned set (wheels in target/bench-wheels/SET,
# see compare_uv.py). Prints one line from /usr/bin/time: wall, user, sys, max RSS. Needs root
# (mount). PYTHON overrides the interpreter, SETS_DIR the directory of the set files (as in
# compare_uv.py); PERF=1 records perf data to target/perf-TOOL.data.
set -euo pipefail
tool=$1 set=$2
shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-$(command -v python3)}
wheels=$root/target/bench-wheels/$set
reqs=${SETS_DIR:-$root/../shared/bench-sets}/$set.txt
img=$(mktemp -p "$root/target" fresh-XXXXXX.img)
mnt=${img%.img}
cleanup() { umount "$mnt" 2>/dev/null || true; rmdir "$mnt" 2>/dev/null || true; rm -f "$img"; }
trap cleanup EXIT
truncate -s 16G "$img"
mkfs.ext4 -q -F "$img"
mkdir -p "$mnt"
mount -o loop "$img" "$mnt"
sync
wrap=()
[ "${PERF:-}" = 1 ] && wrap=(perf record -g -o "$root/target/perf-$(basename "$tool").data")
if [ "$tool" = uv ]; then
  uv=$root/target/bench-tools/uv-venv/bin/uv
  "${wrap[@]}" /usr/bin/time -f "uv %e s wall %U s user %S s sys %M KB" bash -c \
    "'$uv' venv -q --cache-dir '$mnt/cache' -p '$python' '$mnt/venv' &&
     VIRTUAL_ENV='$mnt/venv' '$uv' pip install -q --cache-dir '$mnt/cache' --offline --no-index \
       --find-links '$wheels' -r '$reqs' $*"
else
  tool=$(realpath "$tool")
  mkdir "$mnt/project"
  (cd "$mnt/project" &&
    DX_PY_CACHE_DIR=$mnt/cache "${wrap[@]}" /usr/bin/time -f "dx-py %e s wall %U s user %S s sys %M KB" \
      "$tool" install "$@" --python "$python" -r "$reqs" --find-links "$wheels" --venv "$mnt/venv")
fi
