# Run by dx-py as `python -I -c <this file>`: prints one line of JSON describing the interpreter.
# Must stay valid Python 3.6 syntax (no walrus, no positional-only parameters) so that old
# interpreters answer with data instead of a SyntaxError. It runs once per interpreter and cache,
# on every cold start: `json`, `re` and (on Linux) `platform` are not imported, which makes it
# about a fifth faster.
import os
import struct
import sys
import sysconfig


def config_var(name):
    try:
        return sysconfig.get_config_var(name)
    except Exception:
        return None


def glibc_version():
    text = None
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")  # e.g. "glibc 2.36"
    except (AttributeError, OSError, ValueError):
        pass
    if text:
        parts = text.split()
        if len(parts) == 2 and parts[0] == "glibc":
            return parts[1]
    return None


def elf_interpreter(path):
    """The PT_INTERP string of an ELF executable, or None."""
    try:
        with open(path, "rb") as f:
            ident = f.read(16)
            if len(ident) < 16 or ident[:4] != b"\x7fELF":
                return None
            wide = ident[4] == 2
            order = "<" if ident[5] == 1 else ">"
            if wide:
                header = f.read(48)
                fmt, ph_fmt = order + "HHIQQQIHHHHHH", order + "IIQQQQQQ"
            else:
                header = f.read(36)
                fmt, ph_fmt = order + "HHIIIIIHHHHHH", order + "IIIIIIII"
            fields = struct.unpack(fmt, header)
            phoff, phentsize, phnum = fields[4], fields[8], fields[9]
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                ph = struct.unpack(ph_fmt, f.read(struct.calcsize(ph_fmt)))
                if ph[0] != 3:  # PT_INTERP
                    continue
                if wide:
                    offset, size = ph[2], ph[5]
                else:
                    offset, size = ph[1], ph[4]
                f.seek(offset)
                return f.read(size).rstrip(b"\0").decode("utf-8", "replace")
    except (OSError, struct.error, IndexError):
        return None
    return None


def musl_version():
    ld = elf_interpreter(sys.executable)
    if not ld or "musl" not in ld:
        return None
    try:
        import subprocess

        out = subprocess.run([ld], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        text = out.stderr.decode("utf-8", "replace")
    except OSError:
        return None
    import re

    m = re.search(r"Version (\d+\.\d+)", text)
    return m.group(1) if m else None


def leading_number(text):
    """The digits `text` starts with, as an int, or None."""
    digits = ""
    for ch in text:
        if not ("0" <= ch <= "9"):
            break
        digits += ch
    return int(digits) if digits else None


def libc():
    if not sys.platform.startswith("linux"):
        return {"kind": "none"}
    for kind, probe in (("glibc", glibc_version), ("musl", musl_version)):
        text = probe()
        if text:
            major, _, rest = text.partition(".")
            if major.isdigit() and leading_number(rest) is not None:
                return {"kind": kind, "major": int(major), "minor": leading_number(rest)}
    return {"kind": "none"}


def venv_scheme():
    names = sysconfig.get_scheme_names()
    if "venv" in names:
        scheme = "venv"
    elif os.name == "nt":
        scheme = "nt"
    else:
        scheme = "posix_prefix"
    base = os.path.join(os.path.abspath(os.sep), "__dx_py_prefix__")
    bases = {"base": base, "platbase": base, "installed_base": base, "installed_platbase": base}
    paths = sysconfig.get_paths(scheme=scheme, vars=bases, expand=True)
    out = {}
    for key in ("purelib", "platlib", "scripts", "include", "data"):
        out[key] = os.path.relpath(paths[key], base)
    return out


# What `platform` answers, without importing it where `os.uname()` gives the same fields.
IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "ironpython": "IronPython", "jython": "Jython"}


def platform_markers():
    name = sys.implementation.name
    if sys.platform.startswith("linux") and name in IMPLEMENTATIONS:
        u = os.uname()
        python_full = sys.version.split()[0]
        return {
            "platform_machine": u.machine,
            "platform_python_implementation": IMPLEMENTATIONS[name],
            "platform_release": u.release,
            "platform_system": u.sysname,
            "platform_version": u.version,
            "python_full_version": python_full,
        }
    import platform

    return {
        "platform_machine": platform.machine(),
        "platform_python_implementation": platform.python_implementation(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
    }


SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def to_json(value):
    """`json.dumps(value)` for the dicts, strings, ints, bools and None this script prints."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        out = ['"']
        for ch in value:
            code = ord(ch)
            if ch == '"' or ch == "\\":
                out.append("\\" + ch)
            elif ch in SHORT_ESCAPES:
                out.append(SHORT_ESCAPES[ch])
            elif 0x20 <= code < 0x7F:
                out.append(ch)
            elif code > 0xFFFF:
                code -= 0x10000
                out.append("\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)))
            else:
                out.append("\\u%04x" % code)
        out.append('"')
        return "".join(out)
    if isinstance(value, dict):
        items = (to_json(str(k)) + ": " + to_json(v) for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError("cannot encode {!r}".format(value))


def full_version(info):
    version = "{0.major}.{0.minor}.{0.micro}".format(info)
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return version


def base_executable():
    exe = getattr(sys, "_base_executable", None) or sys.executable
    prefix = os.path.abspath(sys.prefix)
    if sys.prefix != sys.base_prefix and os.path.abspath(exe).startswith(prefix + os.sep):
        # Before 3.11 a venv's _base_executable is the venv's own link: look in the base prefix.
        names = ["python{}.{}".format(*sys.version_info[:2]), "python3", "python"]
        for name in names:
            candidate = os.path.join(sys.base_prefix, "bin", name)
            if os.path.exists(candidate):
                return candidate
    return exe


def pip_index_url():
    """The index the interpreter's own pip uses when nothing is configured: `PyPI.simple_url` of
    pip's model, read from the installed pip (never written into dx-py), or None without pip.

    The model module is loaded from its file, without running `pip/__init__.py` and
    `pip._internal`, which import `typing` and `logging` (several times slower); only if that
    layout ever changes is pip imported the ordinary way.
    """
    try:
        import importlib.util

        spec = importlib.util.find_spec("pip")
    except Exception:
        return None
    if spec is None:
        return None
    for root in spec.submodule_search_locations or ():
        path = os.path.join(root, "_internal", "models", "index.py")
        try:
            model_spec = importlib.util.spec_from_file_location("_dx_py_pip_index_model", path)
            model = importlib.util.module_from_spec(model_spec)
            model_spec.loader.exec_module(model)
            return str(model.PyPI.simple_url)
        except Exception:
            pass
    try:
        from pip._internal.models.index import PyPI

        return str(PyPI.simple_url)
    except Exception:
        return None


debug = config_var("Py_DEBUG")
if debug is None:
    debug = hasattr(sys, "gettotalrefcount")
pymalloc = config_var("WITH_PYMALLOC")
markers = platform_markers()

answer = {
    "version": {
        "major": sys.version_info.major,
        "minor": sys.version_info.minor,
        "patch": sys.version_info.micro,
    },
    "implementation": sys.implementation.name,
    "executable": sys.executable,
    "base_executable": base_executable(),
    "prefix": sys.prefix,
    "base_prefix": sys.base_prefix,
    "sysconfig_platform": sysconfig.get_platform(),
    "scheme": venv_scheme(),
    "cache_tag": sys.implementation.cache_tag,
    "libc": libc(),
    "markers": {
        "implementation_name": sys.implementation.name,
        "implementation_version": full_version(sys.implementation.version),
        "os_name": os.name,
        "platform_machine": markers["platform_machine"],
        "platform_python_implementation": markers["platform_python_implementation"],
        "platform_release": markers["platform_release"],
        "platform_system": markers["platform_system"],
        "platform_version": markers["platform_version"],
        "python_full_version": markers["python_full_version"],
        "python_version": "{}.{}".format(*sys.version_info[:2]),
        "sys_platform": sys.platform,
    },
    "pointer_bits": struct.calcsize("P") * 8,
    "abiflags": getattr(sys, "abiflags", ""),
    "gil_disabled": bool(config_var("Py_GIL_DISABLED")),
    "py_debug": bool(debug),
    "pymalloc": pymalloc is None or bool(pymalloc),
    "ext_suffix": config_var("EXT_SUFFIX"),
    "py_version_nodot": config_var("py_version_nodot"),
    "pip_index_url": pip_index_url(),
}
sys.stdout.write("\n" + to_json(answer) + "\n")
