"""Named network namespaces (/run/netns/NAME, as `ip netns` keeps them): made without forking, removed, and a half-made
one told apart from a namespace. Every step that changes something passes a write point (faults.point).

Made and removed where the rest of the system sees them (MountScope): a process in a private mount namespace (as
under ``ip netns exec``) makes them in PID 1's mount namespace, or refuses before any change."""

import ctypes
import ctypes.util
import errno
import os
import threading

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import faults
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError

NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
CLONE_NEWNS, CLONE_FS = 0x00020000, 0x00000200
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
    the empty file that an interrupted create (before its bind mount) or removal (after its unmount) leaves, nor the
    dead one a namespace made in a mount namespace that has ended leaves (its mount went with it)."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


def broken_named_netns(names):
    """The entries of /run/netns among ``names`` that are no namespace (half-made or dead: see is_netns_mount;
    ``ip netns list`` says "Peer netns reference is invalid" for them)."""
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


def _run_dir_mount_fields():
    """The optional fields (``shared:N``, ``master:N``) of the mount that holds /run/netns in this process's mount
    namespace (the mount at /run/netns itself, else the deepest one above it)."""
    best, fields = -1, []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split(" - ")[0].split()
                point = parts[4].replace("\\040", " ")
                if NETNS_RUN_DIR == point or NETNS_RUN_DIR.startswith(point.rstrip("/") + "/"):
                    if len(point) >= best:      # later lines are mounted on top of earlier ones
                        best, fields = len(point), parts[6:]
    except OSError:
        pass
    return fields


class MountScope(object):
    """Where namespace files must be mounted for the rest of the system to see them.

    Normally here. But a process in a mount namespace of its own whose mounts do not propagate back (as under
    ``ip netns exec``, which makes a private copy that is a slave of the system's) would leave every namespace it
    makes visible only to itself: once it ends, /run/netns holds dead files. Then the mounts are made in PID 1's mount
    namespace (what ``ip netns add`` would see from a shell), from a helper thread, and they propagate into this one
    as into every other. Where PID 1's mount namespace cannot be entered, it refuses, saying why and what to do."""

    def __init__(self):
        self.fd = None          # PID 1's mount namespace, when it is not this one and mounts must go there
        self.problem = None
        if not any(f.startswith("master:") for f in _run_dir_mount_fields()):
            return              # not a slave: what is mounted here reaches the peers (or this is the only view)
        try:
            fd = os.open("/proc/1/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            self.problem = (
                "this process runs in a mount namespace of its own whose mounts do not reach the rest of the system "
                "(as under `ip netns exec`; %s is a slave mount here), and PID 1's mount namespace cannot be entered "
                "(%s): network namespaces made here would be dead files in /run/netns once it ends. Run it in the "
                "host's network namespace without a new mount namespace instead, e.g. `nsenter --net=/run/netns/HOST "
                "bin/netstitch apply ...`" % (NETNS_RUN_DIR, e.strerror))
            return
        if os.fstat(fd).st_ino == os.stat("/proc/self/ns/mnt").st_ino:
            os.close(fd)        # PID 1's own: nothing better to go to
            return
        self.fd = fd

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def check(self):
        if self.problem:
            raise ApplyError(self.problem)

    def run(self, fn):
        """Run ``fn()`` in a helper thread, in the mount namespace where namespace files must be made (unshare and
        setns affect only the calling thread); return what it returned, raise what it raised."""
        self.check()
        out = []

        def work():
            try:
                if self.fd is not None:
                    libc = _lib()
                    if libc.unshare(CLONE_FS) != 0 or libc.setns(self.fd, CLONE_NEWNS) != 0:
                        raise ApplyError("could not enter PID 1's mount namespace to make network namespaces there: %s"
                                         % os.strerror(ctypes.get_errno()))
                out.append((True, fn()))
            except Exception as e:   # handed to the calling thread
                out.append((False, e))

        t = threading.Thread(target=work, name="netstitch-netns")
        t.start()
        t.join()
        ok, value = out[0]
        if not ok:
            raise value
        return value


def _scoped(scope, fn):
    """Run ``fn`` in ``scope`` (or in a MountScope made for this call)."""
    if scope is not None:
        return scope.run(fn)
    scope = MountScope()
    try:
        return scope.run(fn)
    finally:
        scope.close()


def create_named_netns(names, scope=None):
    """Create named network namespaces without forking: a helper thread (in the mount namespace ``scope`` names)
    unshares its own network namespace and bind-mounts it at /run/netns/NAME, once per name (unshare(CLONE_NEWNET)
    affects only the calling thread)."""
    if not names:
        return
    errors = _scoped(scope, lambda: _create(names))
    for name in names:
        if not errors and not is_netns_mount(ns_path(name)):
            errors.append("%s was made but is not visible in this process's mount namespace" % ns_path(name))
    if errors:
        raise ApplyError("could not create network namespaces: " + "; ".join(errors))


def _create(names):
    _ensure_run_dir()
    libc = _lib()
    errors = []
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
    return errors


def remove_named_netns(name, scope=None):
    """Unmount and unlink /run/netns/NAME (in the mount namespace ``scope`` names); also what is left of a half-made
    or dead one (an empty file, nothing mounted)."""
    path = ns_path(name)

    def remove():
        if is_netns_mount(path):
            faults.point("netns umount %s" % name)
            _lib().umount2(path.encode(), MNT_DETACH)
        if os.path.lexists(path):
            faults.point("netns unlink %s" % name)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    _scoped(scope, remove)
