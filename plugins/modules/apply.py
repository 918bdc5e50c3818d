#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netstitch developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: apply
short_description: Make a host's container networks match its netstitch spec
version_added: "0.1.0"
description:
  - Reconciles the host the module runs on with its part of a topology (a spec from M(netstitch.fabric.validate)),
    that is bridges with their gateway addresses, network namespaces of namespace containers, a veth per container interface
    with its address, MAC, MTU and default route, and the nftables table C(inet netstitch) (isolation of networks,
    internal networks, masquerade).
  - Reads the kernel once, plans, and writes only what differs; a rerun with nothing to do makes no kernel write.
    Only objects netstitch created (marked by an interface alias and its own nft table) are changed or removed;
    anything else in the way is reported as a conflict and nothing is changed.
  - Applies on a host serialise on a lock in O(state_dir). After applying, the host is read back and planned again;
    anything still differing fails the task.
  - Addresses left to allocation are allocated on the host from the network's pool and stay stable across runs
    (leases are kept in O(state_dir)).
author:
  - netstitch developers (@netstitch)
options:
  spec:
    description:
      - This host's spec, as M(netstitch.fabric.validate) returns it in RV(netstitch.fabric.validate#module:hosts)
        for this host.
    type: dict
    required: true
  state_dir:
    description:
      - Directory for netstitch's small per-host state (address leases, namespaces it created, the last spec) and
        the lock. Keyed by host name, so several hosts may share one directory (as the namespace lab does).
    type: path
    default: /var/lib/netstitch
  lock_timeout:
    description:
      - Seconds to wait for another netstitch apply on the same host to finish before failing.
    type: float
    default: 300
  docker_force:
    description:
      - Let a change that Docker cannot make in place re-create a netstitch-bound Docker network even while
        containers are connected to it (they are disconnected and connected again with their addresses). Without it,
        such a change fails before anything is touched and names the connected containers.
    type: bool
    default: false
  peers:
    description:
      - Every host's facts from M(netstitch.fabric.prepare), keyed by host name, when the topology needs them
        (RV(netstitch.fabric.validate#module:needs_prepare)), that is tinc public keys and the addresses of linked
        containers on other hosts. A peer missing here is left out with a warning until a run reaches it.
    type: dict
extends_documentation_fragment:
  - netstitch.fabric.attributes
  - netstitch.fabric.attributes.locking_group
attributes:
  check_mode:
    support: full
    details: The plan and the diff are computed in check mode; nothing is written to the kernel or the state file.
  diff_mode:
    support: full
  idempotent:
    support: full
notes:
  - Needs root (CAP_NET_ADMIN) on the managed host.
  - Linux only.
requirements:
  - the nftables Python binding (Debian package C(nftables) with C(libnftables1), and the C(pip-nftables) package)
    on the managed host
seealso:
  - module: netstitch.fabric.validate
  - module: netstitch.fabric.prepare
  - module: netstitch.fabric.info
  - module: netstitch.fabric.probe
"""

EXAMPLES = r"""
- name: Validate once on the controller
  netstitch.fabric.validate:
    topology_file: "{{ playbook_dir }}/topology.yml"
  delegate_to: localhost
  run_once: true
  register: fabric

- name: Apply this host's part
  netstitch.fabric.apply:
    spec: "{{ fabric.hosts[inventory_hostname] }}"
    state_dir: /var/lib/netstitch
  register: applied

- name: Show the container addresses
  ansible.builtin.debug:
    msg: "{{ applied.endpoints | map(attribute='address') | list }}"
"""

RETURN = r"""
actions:
  description: What was done (or, in check mode, would be done), one readable line per kernel or nftables change.
  returned: always
  type: list
  elements: str
  sample:
    - create bridge nsbr-front (network front, mtu 1500)
    - add address 198.51.100.65/26 to bridge nsbr-front
    - create veth ns1a2b3c4d5e on nsbr-front, container end eth0 in web (mtu 1500)
endpoints:
  description: Every container interface on this host, with its (allocated or fixed) address.
  returned: always
  type: list
  elements: dict
  sample:
    - container: web
      interface: eth0
      network: front
      address: 198.51.100.66/26
      mac: 02:11:22:33:44:55
      host_ifname: ns1a2b3c4d5e
      netns: web
writes:
  description: How many writes were made to the kernel (netlink) and to nftables (transactions). Both are 0 when
    nothing differed.
  returned: always
  type: dict
  sample: {netlink: 0, nft: 0}
timing:
  description: Seconds spent reading the host, waiting for the lock, and in all.
  returned: always
  type: dict
  sample: {read: 0.012, lock_wait: 0.0, total: 0.015}
"""

import json
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import yaml
    HAS_YAML = True
except ImportError:
    HAS_YAML = False

from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import engine
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.drivers import nft as ns_nft
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.errors import NetstitchError


def to_text_block(data):
    """Readable YAML text for a diff (JSON when PyYAML is not on the managed host)."""
    if HAS_YAML:
        return yaml.safe_dump(data, default_flow_style=False, sort_keys=True, width=120)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def spec_problems(spec):
    """Shape checks of a spec, so that a hand-made one fails with a message instead of a traceback."""
    problems = []
    for key, kind in (("host", str), ("networks", list), ("containers", list)):
        if not isinstance(spec.get(key), kind):
            problems.append("spec.%s must be a %s" % (key, "string" if kind is str else "list"))
    if problems:
        return problems
    for i, n in enumerate(spec["networks"]):
        if not isinstance(n, dict):
            problems.append("spec.networks[%d] must be a mapping" % i)
            continue
        for key in ("name", "bridge", "bridge_mac", "subnet", "gateway", "mtu", "pool"):
            if key not in n:
                problems.append("spec.networks[%d].%s is missing" % (i, key))
    for i, c in enumerate(spec["containers"]):
        if not isinstance(c, dict):
            problems.append("spec.containers[%d] must be a mapping" % i)
            continue
        for key in ("name", "kind", "interfaces"):
            if key not in c:
                problems.append("spec.containers[%d].%s is missing" % (i, key))
        for j, itf in enumerate(c.get("interfaces") or []):
            for key in ("name", "network", "host_ifname", "mac"):
                if not isinstance(itf, dict) or key not in itf:
                    problems.append("spec.containers[%d].interfaces[%d].%s is missing" % (i, j, key))
    return problems


def main():
    module = AnsibleModule(
        argument_spec=dict(
            spec=dict(type="dict", required=True),
            state_dir=dict(type="path", default=engine.DEFAULT_STATE_DIR),
            lock_timeout=dict(type="float", default=engine.LOCK_TIMEOUT),
            peers=dict(type="dict"),
            docker_force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if not ns_nft.HAS_NFTABLES:
        module.fail_json(msg=missing_required_lib(
            "nftables (the libnftables binding: Debian package nftables plus pip-nftables)",
            url="https://pypi.org/project/pip-nftables/"))
    spec = module.params["spec"]
    problems = spec_problems(spec)
    if problems:
        module.fail_json(msg="the spec is not one netstitch.fabric.validate made:\n  - %s" % "\n  - ".join(problems),
                         problems=problems)
    try:
        result = engine.apply(spec, check_mode=module.check_mode, state_dir=module.params["state_dir"],
                              lock_timeout=module.params["lock_timeout"], peers=module.params["peers"],
                              docker_force=module.params["docker_force"])
    except NetstitchError as e:
        module.fail_json(msg=str(e))
    except (IOError, OSError) as e:
        module.fail_json(msg="applying on host %s failed: %s" % (spec["host"], e), exception=traceback.format_exc())
    except (KeyError, TypeError, ValueError) as e:
        module.fail_json(msg="the spec for host %s is malformed (%s: %s)" % (spec.get("host"), type(e).__name__, e),
                         exception=traceback.format_exc())
    for warning in result.pop("warnings", None) or []:
        module.warn(warning)
    diff = result.pop("diff", None)
    if module._diff and diff is not None:
        result["diff"] = {
            "before": to_text_block(diff["before"]),
            "after": to_text_block(diff["after"]),
            "before_header": "%s (kernel now)" % spec["host"],
            "after_header": "%s (spec)" % spec["host"],
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
