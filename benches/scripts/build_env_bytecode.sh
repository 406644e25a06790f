#!/usr/bin/env bash
# Hook time of setuptools sdist builds, one cold (fresh cache: the build environment resolved,
# installed and compiled) then N-1 warm (its layout cached: one symlink), for one or two dx-py
# binaries, alternating, each on its own fresh cache. Made to compare a build with compiled build
# environments against one without (docs/design/build.md).
#
#   bash benches/scripts/build_env_bytecode.sh WHEELS DX_PY [OTHER_DX_PY] [N]
#
# WHEELS: a directory holding setuptools' and wheel's wheels (the tests' `target/wheel-cache/
# build-backend`); N (default 6) tiny pure-Python sdists are made locally and read through
# `--find-links`, so nothing is downloaded. Prints per sdist the sum of the hooks' `took N ms`
# debug lines and the whole process's time. Everything lives in a temporary directory.
set -euo pipefail
wheels=$(realpath "$1")
bins=("$(realpath "$2")")
if [ -n "${3:-}" ]; then bins+=("$(realpath "$3")"); fi
n=${4:-6}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/links"
cp "$wheels"/*.whl "$work/links/"
for i in $(seq "$n"); do
  d=$work/src/benchpkg$i-1.0
  mkdir -p "$d/benchpkg$i"
  printf '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n[project]\nname = "benchpkg%s"\nversion = "1.0"\n' "$i" >"$d/pyproject.toml"
  printf 'Metadata-Version: 2.1\nName: benchpkg%s\nVersion: 1.0\n' "$i" >"$d/PKG-INFO"
  echo "X = $i" >"$d/benchpkg$i/__init__.py"
  tar -C "$work/src" -czf "$work/links/benchpkg$i-1.0.tar.gz" "benchpkg$i-1.0"
done
for trial in 1 2; do
  for b in "${bins[@]}"; do
    cache=$work/cache-$trial-$(basename "$b")-$RANDOM
    for i in $(seq "$n"); do
      p=$work/proj-$RANDOM-$i
      mkdir -p "$p"
      echo "benchpkg$i" >"$p/requirements.txt"
      s=$(date +%s%N)
      out=$(cd "$p" && XDG_CACHE_HOME=$cache DX_PY_LOG=dx_py_core::build=debug "$b" install -v \
        -r requirements.txt --no-index --find-links "$work/links" --venv .venv 2>&1)
      e=$(date +%s%N)
      hooks=$(grep -oE 'took [0-9]+ ms' <<<"$out" | awk '{s += $2} END {print s}')
      echo "$b trial $trial benchpkg$i: hooks ${hooks} ms, whole $(((e - s) / 1000000)) ms"
    done
  done
done
