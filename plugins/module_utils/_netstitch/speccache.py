"""A host's compiled spec, kept by the content of the topology file (for ``netstitch apply`` / ``prepare``).

Reading, validating and compiling a whole topology is most of a no-op apply's time on the command line (and the
JSON Schema libraries' import alone takes a third of a second). A host's spec depends only on the topology's bytes,
the host's name and netstitch's own code; so the command line keeps the last spec it compiled for the host in
``<state_dir>/cache/<host>-<digest>.spec.json`` under a key made of the three (SHA-256 of the file, the host, and
the size and modification time of every file of the library), and uses it while the key matches. Any change to the file or to
netstitch compiles again. The cache holds only what ``netstitch compile`` prints; it is written atomically, readable
by its owner only, and a damaged or foreign entry is simply compiled again.
"""

import hashlib
import json
import os
import re

FORMAT = 1
DIR = "cache"       # under the state directory
_HERE = os.path.dirname(os.path.abspath(__file__))
_CODE = []


def code_version():
    """A digest of the library's files (path, size, modification time): a new netstitch never reuses old specs."""
    if not _CODE:
        h = hashlib.sha256()
        for top, dirs, files in os.walk(_HERE):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".py"):
                    st = os.stat(os.path.join(top, name))
                    h.update(("%s/%s %d %d\n" % (os.path.relpath(top, _HERE), name, st.st_size, st.st_mtime_ns))
                             .encode())
        _CODE.append(h.hexdigest())
    return _CODE[0]


def key(data, host):
    h = hashlib.sha256()
    h.update(b"netstitch spec cache %d\0" % FORMAT)
    h.update(code_version().encode() + b"\0")
    h.update(host.encode("utf-8", "surrogateescape") + b"\0")
    h.update(data)
    return h.hexdigest()


def _path(cache_dir, host):
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", host)[:100] or "_"
    digest = hashlib.sha256(host.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return os.path.join(cache_dir, "%s-%s.spec.json" % (safe, digest))


def get(cache_dir, host, k):
    """The cached spec for key ``k``, or None."""
    try:
        with open(_path(cache_dir, host)) as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != k or not isinstance(entry.get("spec"), dict):
        return None
    return entry["spec"]


def put(cache_dir, host, k, spec):
    """Keep ``spec`` under key ``k``; a cache that cannot be written is no error (the next run compiles again)."""
    path = _path(cache_dir, host)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"key": k, "host": host, "spec": spec}, f, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def forget(cache_dir, host):
    """Drop the host's entry (a teardown leaves nothing of netstitch), and the directory once it is empty."""
    try:
        os.unlink(_path(cache_dir, host))
    except OSError:
        pass
    try:
        os.rmdir(cache_dir)
    except OSError:
        pass
