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
    with its address, MAC, MTU and default route; VXLAN devices with their static FDB entries, routes of routed
    overlays, tinc daemons with their keys and configuration; the nftables tables C(inet netstitch) and
    C(bridge netstitch) (networks closed to each other, internal networks, masquerade, published ports, isolation
    and links); the names of linked containers in C(/etc/netns/NETNS/hosts); accept rules for its bridges in
    Docker's C(DOCKER-USER) chain where Docker runs; Docker networks bound to its bridges; Docker containers'
    interfaces.
  - With O(state=absent), removes everything netstitch owns on the host (all of the above, then its state file and
    lock) and nothing else; O(spec) is not needed then, only O(host). A forwarding sysctl it raised stays raised.
  - With C(--diff), the diff lists every object that changes, one before/after pair per kind of object (bridge,
    endpoint, vxlan, fdb, route, tinc, published port, link, isolation, masquerade/internal, hosts file,
    DOCKER-USER, Docker network, ...), in topology words; RV(changes) holds the same as lines.
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
        for this host. Required when O(state=present).
    type: dict
  state:
    description:
      - V(present) makes the host match O(spec); V(absent) tears down everything netstitch made on the host.
    type: str
    choices: [present, absent]
    default: present
  host:
    description:
      - The host's name in the topology (its state file in O(state_dir) is named after it). Default the host of
        O(spec); required with O(state=absent) when no O(spec) is given.
    type: str
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
  rollback:
    description:
      - When the apply fails part-way (a kernel refusal, a failed verification, any error), return the host to the
        state of the last successful apply (its spec and leases; before the first one, nothing of netstitch's) and
        fail with what failed and that it rolled back. A rollback that itself fails says what is left on the host.
      - V(false) leaves the host as the failure found it, for debugging; the next apply continues from there.
    type: bool
    default: true
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
    details: The plan and the diff are computed in check mode; nothing is written to the kernel or the state
      directory (not even the lock file).
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

- name: Remove everything netstitch made on this host
  netstitch.fabric.apply:
    state: absent
    host: "{{ inventory_hostname }}"

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
changes:
  description: Every object the run changes (or, in check mode, would change), in topology terms, grouped by kind.
  returned: always
  type: list
  elements: str
  sample:
    - "bridge nsbr-front (network front) added: mtu 1500, address 10.10.0.1/24, state up"
    - "published port 8080/tcp -> web:80 added: container address 10.10.0.10:80"
    - "link web -> db tcp/5432 added: 2 rules in inet forward"
plan:
  description: RV(changes) keyed by kind of object (in the order a host is built).
  returned: always
  type: dict
  sample: {bridge: ["bridge nsbr-front (network front) changed: mtu 1500 -> mtu 1400"]}
endpoints:
  description: Every container interface on this host, with its (allocated or fixed) address. An interface on a
    macvlan network (C(networks.N.macvlan)) has C(host_ifname) null and C(macvlan_parent), its host interface.
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
published:
  description: Every published port of this host, with its host port; C(auto) is true for a port the host picked
    (C(host_port) auto or omitted), which it keeps across runs.
  returned: always
  type: list
  elements: dict
  sample:
    - {container: web, network: front, protocol: tcp, host_ip: null, host_port: 20000, container_port: 80, auto: true}
outside_routes:
  description: The routes the outside needs to reach this host's routed gateway networks (C(networks.N.inbound)),
    to install on the upstream router.
  returned: when the host carries a network with C(inbound)
  type: list
  elements: dict
  sample:
    - {network: pub, dst: 198.51.100.64/28, via: 192.0.2.11}
writes:
  description: How many writes were made, by driver, that is netlink requests, nftables transactions, tinc
    operations, files (hosts files), iptables commands (DOCKER-USER), Docker Engine calls, name-service (dns) and
    BGP (bgp, BIRD) operations. All are 0 when nothing differed.
  returned: always
  type: dict
  sample: {netlink: 0, nft: 0, tinc: 0, files: 0, iptables: 0, docker: 0, dns: 0, bgp: 0}
timing:
  description: Seconds spent reading the host, waiting for the lock, and in all.
  returned: always
  type: dict
  sample: {read: 0.012, lock_wait: 0.0, total: 0.015}
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.hostspec import spec_problems
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import nft as ns_nft
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            spec=dict(type="dict"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            host=dict(type="str"),
            state_dir=dict(type="path", default=engine.DEFAULT_STATE_DIR),
            lock_timeout=dict(type="float", default=engine.LOCK_TIMEOUT),
            peers=dict(type="dict"),
            docker_force=dict(type="bool", default=False),
            rollback=dict(type="bool", default=True),
        ),
        required_if=[("state", "present", ("spec",))],
        supports_check_mode=True,
    )
    if not ns_nft.HAS_NFTABLES:
        module.fail_json(msg=missing_required_lib(
            "nftables (the libnftables binding: Debian package nftables plus pip-nftables)",
            url="https://pypi.org/project/pip-nftables/"))
    spec = module.params["spec"]
    absent = module.params["state"] == "absent"
    if absent:
        name = module.params["host"] or (spec or {}).get("host")
        if not isinstance(name, str) or not name:
            module.fail_json(msg="state=absent needs host (the host's name in the topology) or a spec")
        spec = {"host": name}
    problems = [] if absent else spec_problems(spec)
    if problems:
        module.fail_json(msg="the spec is not one this netstitch.fabric.validate makes:\n  - %s" % "\n  - ".join(problems),
                         problems=problems)
    try:
        result = engine.apply(spec, check_mode=module.check_mode, state_dir=module.params["state_dir"],
                              lock_timeout=module.params["lock_timeout"], peers=module.params["peers"],
                              docker_force=module.params["docker_force"], state=module.params["state"],
                              probe_peers=not absent, rollback=module.params["rollback"])
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
    if module._diff and diff:
        result["diff"] = diff       # one before/after pair per kind of object, each object on one line
    module.exit_json(**result)


if __name__ == "__main__":
    main()
