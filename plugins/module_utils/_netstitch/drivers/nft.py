"""nftables driver (libnftables JSON API): reads only netstitch's own table and applies a change as one atomic
transaction. Never touches another table and never flushes the ruleset."""

import json

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
