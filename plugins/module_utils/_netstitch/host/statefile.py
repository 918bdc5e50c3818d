"""netstitch's small per-host memory, <state_dir>/<host>.json: address leases, automatic host ports, the namespaces it created, the last
spec applied and the facts of the other hosts it was applied with (the checkpoint of a rollback), and the intent
record of an apply under way. Read defensively and written atomically (see durable)."""

import copy
import json
import os

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import durable

DEFAULT_STATE_DIR = "/var/lib/netstitch"


class HostState(object):
    """netstitch's small per-host memory: address leases, the namespaces it created, the last spec applied (the
    checkpoint of a rollback) and the intent record of an apply under way (see durable)."""

    def __init__(self, state_dir, host):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, "%s.json" % host)
        data, text = durable.load_state(self.path)
        self.leases = data.get("leases", {})
        self.ports = data.get("ports", {})     # automatic host ports: {ports.lease_key: port}
        self.owned_netns = set(data.get("owned_netns", []))
        self.attached = data.get("attached", {})    # interfaces netstitch enslaved (kinds.attach)
        self.spec = data.get("spec")        # the last spec applied here (for gather and drift reports)
        self.peers = data.get("peers")      # and the facts of the other hosts it was applied with
        self.pending = data.get("pending")  # set while an apply is under way: found here, that one was interrupted
        # what the file holds, as data (a second parse, never shared with the live attributes): save() compares
        # with it and writes only on a difference (cheaper than rendering the text every run)
        self._saved = self._normal(json.loads(text) if data else {})

    @staticmethod
    def _normal(data):
        out = {"leases": data.get("leases", {}), "owned_netns": sorted(data.get("owned_netns", [])),
               "spec": data.get("spec"), "peers": data.get("peers")}
        if data.get("ports"):
            out["ports"] = data["ports"]
        if data.get("attached"):
            out["attached"] = data["attached"]
        if data.get("pending"):
            out["pending"] = data["pending"]
        return out

    def _data(self):
        out = {"leases": self.leases, "owned_netns": sorted(self.owned_netns), "spec": self.spec,
               "peers": self.peers}
        if self.ports:
            out["ports"] = self.ports
        if self.attached:
            out["attached"] = self.attached
        if self.pending:
            out["pending"] = self.pending
        return out

    def _dump(self):
        return json.dumps(self._data(), sort_keys=True, indent=1)

    def checkpoint(self):
        """What a rollback returns to: the last successful apply."""
        return copy.deepcopy({"spec": self.spec, "leases": self.leases, "peers": self.peers})

    def save(self, done="nothing was changed on the host"):
        """Write the state if it differs from the file (atomically, fsync'd); an error is an ApplyError naming the
        file, what was done on the host (``done``) and what to do."""
        data = self._data()
        if data == self._saved:
            return
        text = self._dump()
        try:
            durable.atomic_write(self.path, text)
        except OSError as e:
            raise durable.state_error(self.path, e, done)
        self._saved = self._normal(json.loads(text))
