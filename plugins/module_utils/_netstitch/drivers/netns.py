"""Named network namespaces (/run/netns/NAME, as `ip netns` keeps them): made without forking, removed, and a half-made
one told apart from a namespace. Every step that changes something passes a write point (faults.point)."""

import ctypes
import ctypes.util
import errno
import os
import threading

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import faults
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError

NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_SHARED = 4096, 16384, 1 << 20
MNT_DETACH = 2

_libc = None


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def ns_path(ns):
    return ns if ns.startswith("/") else os.path.join(NETNS_RUN_DIR, ns)


def list_named_netns():
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except OSError:
        return []


def is_netns_mount(path):
    """Whether ``path`` is a namespace bind-mounted there (an nsfs file, on another device than its directory), not
    the empty file that an interrupted create (before its bind mount) or removal (after its unmount) leaves."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


def broken_named_netns(names):
    """The entries of /run/netns among ``names`` that are no namespace (half-made: see is_netns_mount)."""
    try:
        dev = os.stat(NETNS_RUN_DIR).st_dev
    except OSError:
        return []
    out = []
    for n in names:
        try:
            if os.stat(ns_path(n)).st_dev == dev:
                out.append(n)
        except OSError:     # gone meanwhile
            pass
    return out


def _ensure_run_dir():
    """Make /run/netns a shared mount point, as `ip netns add` does, so namespaces made here are seen everywhere."""
    libc = _lib()
    if not os.path.isdir(NETNS_RUN_DIR):
        os.makedirs(NETNS_RUN_DIR, 0o755)
    if libc.mount(b"none", NETNS_RUN_DIR.encode(), None, MS_SHARED | MS_REC, None) == 0:
        return
    if ctypes.get_errno() != errno.EINVAL:
        raise OSError(ctypes.get_errno(), "mount --make-shared %s failed" % NETNS_RUN_DIR)
    if libc.mount(NETNS_RUN_DIR.encode(), NETNS_RUN_DIR.encode(), b"none", MS_BIND | MS_REC, None) != 0:
        raise OSError(ctypes.get_errno(), "bind mount of %s failed" % NETNS_RUN_DIR)
    if libc.mount(b"none", NETNS_RUN_DIR.encode(), None, MS_SHARED | MS_REC, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-shared %s failed" % NETNS_RUN_DIR)


def create_named_netns(names):
    """Create named network namespaces without forking: a helper thread unshares its own network namespace and
    bind-mounts it at /run/netns/NAME, once per name (unshare(CLONE_NEWNET) affects only the calling thread)."""
    if not names:
        return
    _ensure_run_dir()
    errors = []

    def work():
        libc = _lib()
        for name in names:
            path = ns_path(name)
            try:
                faults.point("netns file %s" % name)
                fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
                os.close(fd)
            except OSError as e:
                errors.append("%s: %s" % (path, e))
                continue
            faults.point("netns unshare %s" % name)
            if libc.unshare(CLONE_NEWNET) != 0:
                errors.append("unshare for %s: %s" % (name, os.strerror(ctypes.get_errno())))
                os.unlink(path)
                continue
            src = ("/proc/self/task/%d/ns/net" % threading.get_native_id()).encode()
            faults.point("netns mount %s" % name)
            if libc.mount(src, path.encode(), b"none", MS_BIND, None) != 0:
                errors.append("bind mount for %s: %s" % (name, os.strerror(ctypes.get_errno())))
                os.unlink(path)

    t = threading.Thread(target=work, name="netstitch-netns")
    t.start()
    t.join()
    if errors:
        raise ApplyError("could not create network namespaces: " + "; ".join(errors))


def remove_named_netns(name):
    """Unmount and unlink /run/netns/NAME; also what is left of a half-made one (an empty file, nothing mounted)."""
    path = ns_path(name)
    if is_netns_mount(path):
        faults.point("netns umount %s" % name)
        _lib().umount2(path.encode(), MNT_DETACH)
    if os.path.lexists(path):
        faults.point("netns unlink %s" % name)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
