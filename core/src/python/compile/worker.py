# Run by dx-py as `python -I -S -B -W ignore -c <this file>`: compiles sources streamed on stdin
# into unchecked-hash pycs (PEP 552) streamed back on stdout. `-W ignore`: SyntaxWarnings and
# DeprecationWarnings would go to stderr. Each answer is flushed at once: dx-py hands out the
# next source to whichever worker answers first.
#
# Request, repeated until end of input:  u32 LE name length, name (UTF-8),
#                                        u32 LE source length, source bytes.
# Answer, one per request, in order:     u32 LE pyc length then the pyc bytes,
#                                        or 0xFFFFFFFF when the source does not compile.
import _imp
import marshal
import sys

# The frozen bootstrap is always loaded; importing importlib.util would cost start-up time.
from _frozen_importlib_external import _RAW_MAGIC_NUMBER, MAGIC_NUMBER

HEADER_FLAGS = (0b01).to_bytes(4, "little")  # hash-based, check_source off: "unchecked"
SKIPPED = b"\xff\xff\xff\xff"
inp = sys.stdin.buffer
out = sys.stdout.buffer


def read_exactly(n):
    data = inp.read(n)
    if len(data) != n:
        raise SystemExit("dx-py compile worker: truncated request")
    return data


while True:
    head = inp.read(4)
    if not head:
        break
    if len(head) != 4:
        raise SystemExit("dx-py compile worker: truncated request")
    name = read_exactly(int.from_bytes(head, "little")).decode("utf-8", "surrogateescape")
    source = read_exactly(int.from_bytes(read_exactly(4), "little"))
    try:
        code = compile(source, name, "exec", dont_inherit=True)
        pyc = MAGIC_NUMBER + HEADER_FLAGS + _imp.source_hash(_RAW_MAGIC_NUMBER, source) + marshal.dumps(code)
    except Exception:  # SyntaxError, ValueError (NUL bytes), bad encodings, recursion: skip it
        out.write(SKIPPED)
        out.flush()
        continue
    out.write(len(pyc).to_bytes(4, "little"))
    out.write(pyc)
    out.flush()
