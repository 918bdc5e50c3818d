"""The stable entry points of the library, for the modules, the CLI, the watcher, tests and benchmarks. The work is
done elsewhere: the pure core in planner (and kinds/), the host side in host/.

    result = engine.apply(spec, check_mode=False)
"""

from typing import Any, Dict, Optional

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import planner
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.gather import gather
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.lock import LOCK_TIMEOUT, HostLock
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.machine import Host, resolve_docker
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.prepare import prepare, tinc_keys
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.reconcile import apply, teardown
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.statefile import DEFAULT_STATE_DIR, HostState
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds.routed import merge_peer_link_locals
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds.tinc import merge_peer_keys
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.links import resolve_links
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.planner import Computed
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.summary import view

__all__ = ["apply", "teardown", "prepare", "gather", "compute", "view", "tinc_keys", "merge_peer_keys",
           "merge_peer_link_locals", "resolve_links",
           "resolve_docker", "Host", "HostLock", "HostState", "Computed", "DEFAULT_STATE_DIR", "LOCK_TIMEOUT"]


def compute(spec: Dict[str, Any], current: Dict[str, Any], hstate: Any, peers: Optional[Dict[str, Any]] = None,
            docker_force: bool = False) -> Computed:
    """Pure: everything the host needs to do for a spec against a current state (planner.compute), with the leases
    taken from ``hstate`` (a HostState, or anything with a ``leases`` attribute)."""
    return planner.compute(spec, current, hstate.leases, peers, docker_force, previous=getattr(hstate, "spec", None))
