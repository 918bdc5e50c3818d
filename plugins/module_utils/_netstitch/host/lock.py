"""The host lock: one netstitch run at a time on a host."""

import fcntl
import os
import time

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import durable, faults
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError

LOCK_TIMEOUT = 300.0


class HostLock(object):
    """An exclusive flock on <state_dir>/<host>.lock, held for the whole apply. ``create=False`` (check mode) makes
    neither the directory nor the file: it locks the file only when it is there (nothing to wait for otherwise)."""

    def __init__(self, state_dir, host, timeout=LOCK_TIMEOUT, create=True):
        self.path = os.path.join(state_dir, "%s.lock" % host)
        self.timeout = timeout
        self.create = create
        self.fd = None
        self.waited = 0.0

    def _open(self):
        if not self.create:
            try:
                return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None
        try:
            if not os.path.exists(self.path):
                faults.point("lock file %s" % self.path)
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise ApplyError("netstitch's lock file %s could not be made (%s); nothing was changed on the host. "
                             "To fix: %s." % (self.path, e.strerror or e, durable.what_to_do(e)))

    def __enter__(self):
        self.fd = self._open()
        if self.fd is None:
            return self
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - start > self.timeout:
                    os.close(self.fd)
                    raise ApplyError("another netstitch apply holds %s for more than %gs" % (self.path, self.timeout))
                time.sleep(0.05)
        self.waited = time.monotonic() - start
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)


class NoLock(object):
    """For a caller that already holds the lock."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
