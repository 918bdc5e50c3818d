#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netstitch developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: info
short_description: Report what netstitch manages on a host, and whether it still matches the last apply
version_added: "0.1.0"
description:
  - Reads the host the module runs on and reports the bridges, container endpoints (with addresses), network
    namespaces and nftables rules that netstitch manages there, the address leases, and whether the kernel still
    matches the spec last applied (drift shows as pending actions, and by kind of object in RV(netstitch.drift)).
  - Read-only; the result is returned both as RV(netstitch) and as the fact C(netstitch).
author:
  - netstitch developers (@netstitch)
options:
  host:
    description:
      - The host's name in the topology (normally C(inventory_hostname)), which names its state file in O(state_dir).
      - When omitted and O(state_dir) holds the state of exactly one host, that host is reported; when it holds
        several (as in the namespace lab, where all hosts share one directory), O(host) is required.
    type: str
  state_dir:
    description:
      - The state directory M(netstitch.fabric.apply) used.
    type: path
    default: /var/lib/netstitch
extends_documentation_fragment:
  - netstitch.fabric.attributes
  - netstitch.fabric.attributes.host_group
  - netstitch.fabric.attributes.facts
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
  idempotent:
    support: full
notes:
  - Needs root (CAP_NET_ADMIN is not needed to read, but the namespaces and the nft table are readable by root only).
requirements:
  - the nftables Python binding on the managed host
seealso:
  - module: netstitch.fabric.apply
"""

EXAMPLES = r"""
- name: What does netstitch manage here?
  netstitch.fabric.info:
    host: "{{ inventory_hostname }}"

- name: Fail when the host drifted from the last apply (playbooks/drift.yml does this for every host)
  ansible.builtin.assert:
    that: ansible_facts.netstitch.in_sync is not false
    fail_msg: "{{ ansible_facts.netstitch.drift }}"
"""

RETURN = r"""
netstitch:
  description: What netstitch manages on the host (also set as the fact C(netstitch)).
  returned: always
  type: dict
  contains:
    bridges:
      description: Bridges netstitch created, by name, with network, MTU and addresses.
      type: dict
      returned: always
    endpoints:
      description: Container interfaces, keyed by C(container/interface), with network, address, MAC, MTU and host end.
      type: dict
      returned: always
    namespaces:
      description: Network namespaces netstitch created that exist now.
      type: list
      elements: str
      returned: always
    nft_rules:
      description: The comments of the rules in netstitch's nft table.
      type: list
      elements: str
      returned: always
    leases:
      description: Address leases by network.
      type: dict
      returned: always
    published:
      description: Published ports of the last applied spec with their host ports; C(auto) marks a port the host
        picked (C(host_port) auto), recorded in the state file like a lease.
      type: list
      elements: dict
      returned: always
    outside_routes:
      description: The routes the outside needs to reach this host's routed gateway networks (C(networks.N.inbound))
        of the last applied spec.
      type: list
      elements: dict
      returned: when the last applied spec has a network with C(inbound)
    attached:
      description: Existing interfaces netstitch enslaved to its bridges (C(networks.N.attach)), recorded in the
        state file, with the bridge they are on; only these are ever released.
      type: dict
      returned: when there are some
    docker_plugin:
      description:
        - Endpoints of netstitch's Docker plugin (C(netstitch plugin)), keyed by Docker endpoint ID (12 characters),
          with network, address, MAC, host end and published ports (C(docker port) does not show these for
          remote drivers).
      type: dict
      returned: when the plugin has endpoints on the host
    in_sync:
      description: Whether the kernel matches the last applied spec (null when nothing was applied yet).
      type: bool
      returned: always
    pending:
      description: What an apply of the last spec would do now.
      type: list
      elements: str
      returned: always
    drift:
      description:
        - What differs from the last applied spec, in topology terms, keyed by kind of object (bridge, endpoint,
          vxlan, fdb, route, tinc, published port, link, isolation, masquerade/internal, hosts file, DOCKER-USER,
          Docker network, ...); empty when in sync. An object the last apply made that is gone is "missing", one it
          would remove is "unexpected", one that differs "drifted" (now ..., applied ...).
      type: dict
      returned: always
  sample:
    bridges:
      nsbr-front: {network: front, mtu: 1500, addresses: [198.51.100.65/26]}
    endpoints:
      web/eth0: {network: front, address: 198.51.100.66/26, host_ifname: ns1a2b3c4d5e, mtu: 1500}
    namespaces: [web]
    in_sync: false
    pending: [set mtu 1500 on bridge nsbr-front]
    drift:
      bridge: ["bridge nsbr-front (network front) drifted: now mtu 1400, applied mtu 1500"]
host:
  description: The host name whose state was read.
  returned: always
  type: str
  sample: h1
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import nft as ns_nft
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError


def default_host(module, state_dir):
    try:
        names = sorted(f[:-5] for f in os.listdir(state_dir) if f.endswith(".json"))
    except OSError:
        names = []
    if len(names) == 1:
        return names[0]
    if not names:
        module.fail_json(msg="no netstitch state in %s: set host (the host's name in the topology)" % state_dir)
    module.fail_json(msg="%s holds the state of several hosts (%s): set host to one of them"
                     % (state_dir, ", ".join(names)))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str"),
            state_dir=dict(type="path", default=engine.DEFAULT_STATE_DIR),
        ),
        supports_check_mode=True,
    )
    if not ns_nft.HAS_NFTABLES:
        module.fail_json(msg=missing_required_lib(
            "nftables (the libnftables binding: Debian package nftables plus pip-nftables)",
            url="https://pypi.org/project/pip-nftables/"))
    state_dir = module.params["state_dir"]
    host = module.params["host"] or default_host(module, state_dir)
    try:
        facts = engine.gather(host, state_dir=state_dir)
    except NetstitchError as e:
        module.fail_json(msg=str(e))
    except (IOError, OSError) as e:
        module.fail_json(msg="reading host %s failed: %s" % (host, e))
    module.exit_json(changed=False, host=host, netstitch=facts, ansible_facts={"netstitch": facts})


if __name__ == "__main__":
    main()
