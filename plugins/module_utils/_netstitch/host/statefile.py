"""netstitch's small per-host memory, <state_dir>/<host>.json: address leases, the namespaces it created, the last
spec applied and the facts of the other hosts it was applied with."""

import json
import os

DEFAULT_STATE_DIR = "/var/lib/netstitch"


class HostState(object):
    """netstitch's small per-host memory: address leases and the namespaces it created."""

    def __init__(self, state_dir, host):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, "%s.json" % host)
        try:
            with open(self.path) as f:
                text = f.read()
            data = json.loads(text)
        except (OSError, ValueError):
            text, data = None, {}
        self.leases = data.get("leases", {})
        self.owned_netns = set(data.get("owned_netns", []))
        self.spec = data.get("spec")        # the last spec applied here (for gather and drift reports)
        self.peers = data.get("peers")      # and the facts of the other hosts it was applied with
        # what the file holds, as data (a second parse, never shared with the live attributes): save() compares
        # with it and writes only on a difference (cheaper than rendering the text every run)
        self._saved = self._normal(json.loads(text) if data else {})

    @staticmethod
    def _normal(data):
        return {"leases": data.get("leases", {}), "owned_netns": sorted(data.get("owned_netns", [])),
                "spec": data.get("spec"), "peers": data.get("peers")}

    def _data(self):
        return {"leases": self.leases, "owned_netns": sorted(self.owned_netns), "spec": self.spec,
                "peers": self.peers}

    def _dump(self):
        return json.dumps(self._data(), sort_keys=True, indent=1)

    def save(self):
        data = self._data()
        if data == self._saved:
            return
        text = self._dump()
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.path)
        self._saved = self._normal(json.loads(text))
