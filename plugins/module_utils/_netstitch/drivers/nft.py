"""nftables driver (libnftables JSON API): reads only netstitch's own table and applies a change as one atomic
transaction. Never touches another table and never flushes the ruleset."""

import json
import os
import threading

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import faults
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import NFT_FAMILY as FAMILY
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import NFT_TABLE as TABLE

try:
    import nftables
    HAS_NFTABLES = True
except ImportError:  # pragma: no cover - reported when needed
    HAS_NFTABLES = False


class Nft(object):
    def __init__(self):
        if not HAS_NFTABLES:
            raise ApplyError("the Python binding of libnftables is needed on the managed host "
                             "(Debian package nftables plus pip install pip-nftables)")
        self.nft = nftables.Nftables()
        self.nft.set_json_output(True)
        self.nft.set_handle_output(False)
        self.writes = 0

    def read(self, family=FAMILY):
        """The JSON listing of netstitch's table of a family, or None when it does not exist."""
        rc, out, err = self.nft.cmd("list table %s %s" % (family, TABLE))
        if rc != 0:
            if "No such file or directory" in err:
                return None
            raise ApplyError("reading nft table %s %s failed: %s" % (family, TABLE, err.strip()))
        return json.loads(out)

    def apply(self, commands):
        if not commands:
            return
        self.writes += 1
        faults.point("nft transaction")
        rc, out, err = self.nft.json_cmd({"nftables": [{"metainfo": {"json_schema_version": 1}}] + commands})
        if rc != 0:
            raise ApplyError("nftables transaction failed (nothing of it was applied): %s" % (err or out).strip())

    # -- a tenant's router namespace (kinds.tenant): its own table, never the host's -------------------------------
    def execute(self, action):
        """The driver's actions (actions.OPS): "tenant_nft", one transaction in a router namespace."""
        if action["op"] != "tenant_nft":
            raise ApplyError("%s: not an action of the nft driver" % action["text"])
        self.apply_in(action["ns"], action["commands"])

    def read_in(self, ns, keys=()):
        """(the JSON listing of netstitch's inet table in namespace ``ns`` or None, {sysctl key: value} read there)."""
        def work():
            ctx = _context()
            rc, out, err = ctx.cmd("list table %s %s" % (FAMILY, TABLE))
            values = {k: _read_sysctl(k) for k in keys}
            if rc != 0:
                if "No such file or directory" in err:
                    return None, values
                raise ApplyError("reading nft table %s %s in %s failed: %s" % (FAMILY, TABLE, ns, err.strip()))
            return json.loads(out), values
        return _in_netns(ns, work)

    def apply_in(self, ns, commands):
        """One transaction on netstitch's table in namespace ``ns``."""
        if not commands:
            return
        self.writes += 1
        faults.point("nft transaction in %s" % ns)

        def work():
            rc, out, err = _context().json_cmd({"nftables": [{"metainfo": {"json_schema_version": 1}}] + commands})
            if rc != 0:
                raise ApplyError("nftables transaction in %s failed (nothing of it was applied): %s"
                                 % (ns, (err or out).strip()))
        _in_netns(ns, work)


def _context():
    ctx = nftables.Nftables()
    ctx.set_json_output(True)
    ctx.set_handle_output(False)
    return ctx


def _read_sysctl(key):
    try:
        with open("/proc/sys/" + key) as f:
            return f.read().strip()
    except OSError:
        return None


def _in_netns(ns, fn):
    """Run ``fn()`` in a helper thread that entered network namespace ``ns`` (setns moves only the calling thread;
    the thread ends with it), return what it returned, raise what it raised."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.netns import ns_path
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.nlsocket import enter_netns
    out = []

    def work():
        try:
            fd = os.open(ns_path(ns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                enter_netns(fd)
            finally:
                os.close(fd)
            out.append((True, fn()))
        except Exception as e:  # noqa: BLE001 - handed to the calling thread
            out.append((False, e))

    t = threading.Thread(target=work, name="netstitch-nft-netns")
    t.start()
    t.join()
    ok, value = out[0]
    if not ok:
        if isinstance(value, OSError):
            raise ApplyError("namespace %s: %s" % (ns, value))
        raise value
    return value
