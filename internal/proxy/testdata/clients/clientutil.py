"""What the Python client scripts share: the address from argv, and
replies made printable as JSON (redis-py returns bytes by default)."""

import json
import sys


def address():
    """host and port of argv[1], "127.0.0.1:PORT"."""
    host, port = sys.argv[1].rsplit(":", 1)
    return host, int(port)


def plain(v):
    """bytes as text, sets as sorted lists, recursively."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, set):
        return sorted(plain(x) for x in v)
    if isinstance(v, dict):
        return {plain(k): plain(x) for k, x in v.items()}
    return v


def error(e):
    """An exception as its class and message, for the Go test to check."""
    return {"error": type(e).__module__ + "." + type(e).__name__, "message": str(e)}


def emit(obj):
    """The script's one line of output."""
    json.dump(obj, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
