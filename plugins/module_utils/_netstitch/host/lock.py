"""The host lock: one netstitch run at a time on a host."""

import fcntl
import os
import time

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError

LOCK_TIMEOUT = 300.0


class HostLock(object):
    """An exclusive flock on <state_dir>/<host>.lock, held for the whole apply."""

    def __init__(self, state_dir, host, timeout=LOCK_TIMEOUT):
        self.path = os.path.join(state_dir, "%s.lock" % host)
        self.timeout = timeout
        self.fd = None
        self.waited = 0.0

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
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
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


class NoLock(object):
    """For a caller that already holds the lock."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
