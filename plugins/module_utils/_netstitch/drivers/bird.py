"""BGP driver (kinds.bgp): one BIRD 2 daemon per host, in this host's network namespace, with its configuration,
control socket and pid file under <state_dir>/bird/<host>/. A changed configuration is written and BIRD re-reads it
(birdc configure); a daemon that is gone is started again; bgp_stop ends it (by its pid file) and removes its
files."""

import os
import signal
import subprocess
import time

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.durable import atomic_write
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError

START_TIMEOUT = 5.0


class Bird(object):
    def __init__(self, state_dir, host):
        self.dir = os.path.join(state_dir, "bird", host)
        self.writes = 0

    def _path(self, ext):
        return os.path.join(self.dir, "bird.%s" % ext)

    def pid(self):
        try:
            with open(self._path("pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            with open("/proc/%d/comm" % pid) as f:
                return pid if f.read().strip() == "bird" else None
        except (OSError, ValueError):
            return None

    def read(self):
        """{"config": text or None, "running": bool}."""
        try:
            with open(self._path("conf")) as f:
                config = f.read()
        except OSError:
            config = None
        return {"config": config, "running": self.pid() is not None}

    def execute(self, a):
        self.writes += 1
        if a["op"] == "bgp_stop":
            self._stop()
            for ext in ("conf", "ctl", "pid"):
                try:
                    os.unlink(self._path(ext))
                except OSError:
                    pass
            return
        if a["op"] != "bgp_write":
            raise ApplyError("the BGP driver has no operation %r" % a["op"])
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        atomic_write(self._path("conf"), a["config"])
        if self.pid() is not None:
            r = subprocess.run(["birdc", "-s", self._path("ctl"), "configure"], capture_output=True, text=True,
                               timeout=30, check=False)
            if r.returncode == 0 and "Reconfigur" in r.stdout:
                return
            self._stop()        # it would not re-read its configuration: start it afresh
        try:
            r = subprocess.run(["bird", "-c", self._path("conf"), "-s", self._path("ctl"), "-P", self._path("pid")],
                               capture_output=True, text=True, timeout=30, check=False)
        except OSError as e:
            raise ApplyError("%s: BIRD (Debian's bird2) could not be run: %s" % (a["text"], e))
        if r.returncode != 0:
            raise ApplyError("%s: BIRD did not start: %s" % (a["text"], (r.stderr or r.stdout).strip()))
        end = time.monotonic() + START_TIMEOUT
        while self.pid() is None:
            if time.monotonic() > end:
                raise ApplyError("%s: BIRD wrote no pid file within %gs" % (a["text"], START_TIMEOUT))
            time.sleep(0.02)

    def _stop(self):
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + START_TIMEOUT
        while self.pid() is not None and time.monotonic() < end:
            time.sleep(0.02)
