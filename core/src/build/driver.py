# dx-py PEP 517 driver: runs one hook of a build backend in the current interpreter.
#
#   python -I driver.py REQUEST.json ANSWER.json
#
# REQUEST: {"hook", "backend", "backend_path": [...], "source", "out", "config_settings",
#           "metadata_directory", "then": {"hook", "out"}}; `then` (optional) runs after a
#           get_requires_* hook that asks for nothing, in the same process. The answer is
# written only when the hooks return; a failing hook leaves its traceback on stderr, which
# the caller keeps in the build log.
import importlib
import json
import os
import sys


def load_backend(spec, backend_path, source):
    # PEP 517: backend-path entries are relative to the source tree and must stay inside it.
    for entry in reversed(backend_path):
        full = os.path.abspath(os.path.join(source, entry))
        if os.path.commonpath([full, source]) != source:
            raise SystemExit(f"backend-path entry {entry!r} is outside the source tree")
        sys.path.insert(0, full)
    module, _, attrs = spec.partition(":")
    backend = importlib.import_module(module.strip())
    for attr in filter(None, attrs.strip().split(".")):
        backend = getattr(backend, attr)
    return backend


def run_hook(backend, hook, settings, out, metadata_directory):
    # Which hook a failure's traceback belongs to, in the build log.
    print(f"dx-py driver: {hook}", file=sys.stderr, flush=True)
    os.makedirs(out, exist_ok=True)
    if hook.startswith("get_requires_for_build_"):
        # Optional hook: no extra requirements when the backend lacks it.
        fn = getattr(backend, hook, None)
        return {"requires": [str(r) for r in fn(settings)] if fn else []}
    if hook.startswith("prepare_metadata_for_build_"):
        fn = getattr(backend, hook, None)
        if fn is not None:
            return {"metadata": os.path.join(out, fn(out, settings))}
        # Optional hook: the whole build is the fallback, and its wheel is kept.
        build = getattr(backend, hook.replace("prepare_metadata_for_", ""))
        return {"wheel": os.path.join(out, build(out, settings))}
    if hook in ("build_wheel", "build_editable"):
        fn = getattr(backend, hook, None)
        if fn is None:
            # build_editable is optional (PEP 660): the caller says what to do instead.
            return {"missing": hook}
        return {"wheel": os.path.join(out, fn(out, settings, metadata_directory))}
    raise SystemExit(f"unknown hook {hook!r}")


def main():
    # Read before any hook runs: setuptools rewrites sys.argv.
    request_path, answer_path = sys.argv[1], sys.argv[2]
    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)
    source = os.path.abspath(request["source"])
    os.chdir(source)
    try:
        backend = load_backend(request["backend"], request.get("backend_path") or [], source)
    except ModuleNotFoundError as e:
        # The backend itself is not installed (not a module it imports): the caller says where
        # it is missing and what to do.
        top = request["backend"].partition(":")[0].strip()
        if not e.name or not (top == e.name or top.startswith(e.name + ".")):
            raise
        answer = {"missing_backend": str(e)}
    else:
        answer = None
    if answer is not None:
        write_answer(answer_path, answer)
        return
    settings = request.get("config_settings") or None
    answer = run_hook(backend, request["hook"], settings, request["out"], request.get("metadata_directory"))
    then = request.get("then")
    if then and answer.get("requires") == []:
        # Nothing to add to the environment: the next hook runs here, saving an interpreter
        # start and the backend's import.
        answer.update(run_hook(backend, then["hook"], settings, then["out"], None))
    write_answer(answer_path, answer)


def write_answer(answer_path, answer):
    # Whole or not at all: a process stopped while writing leaves no answer.
    tmp = answer_path + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(answer, f)
    os.replace(tmp, answer_path)


if __name__ == "__main__":
    main()
