#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netstitch developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: validate
short_description: Validate a netstitch topology and compile it into one spec per host
version_added: "0.1.0"
description:
  - Checks a whole multi-host topology (hosts, networks, containers and their interfaces) against the netstitch
    schema and its semantic rules (overlapping subnets, duplicate addresses and names, unknown references,
    interface name lengths, bridge port limits, pool sizes).
  - Every problem is reported at once, each with its path in the topology, for example
    C(containers.web.interfaces[0].ip).
  - On success returns the per-host specs that M(netstitch.fabric.apply) takes, keyed by inventory host name.
  - Pure and read-only; it runs on the controller (use C(delegate_to=localhost) and C(run_once=true)) before any
    host is touched.
author:
  - netstitch developers (@netstitch)
options:
  topology:
    description:
      - The topology as a mapping.
      - Exactly one of O(topology) and O(topology_file) is required.
    type: dict
  topology_file:
    description:
      - Path of a YAML file holding the topology, on the host the module runs on (normally the controller).
      - Exactly one of O(topology) and O(topology_file) is required.
    type: path
extends_documentation_fragment:
  - netstitch.fabric.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
requirements:
  - jsonschema (Python package) on the host the module runs on
  - PyYAML (Python package) when O(topology_file) is used
seealso:
  - module: netstitch.fabric.apply
  - module: netstitch.fabric.probe
"""

EXAMPLES = r"""
- name: Validate the topology once, on the controller
  netstitch.fabric.validate:
    topology_file: "{{ playbook_dir }}/topology.yml"
  delegate_to: localhost
  run_once: true
  register: fabric

- name: Apply each host's part
  netstitch.fabric.apply:
    spec: "{{ fabric.hosts[inventory_hostname] }}"

- name: Validate an inline topology
  netstitch.fabric.validate:
    topology:
      hosts:
        h1: {}
      networks:
        front:
          subnet: 198.51.100.64/26
      containers:
        web:
          host: h1
          interfaces:
            - network: front
  delegate_to: localhost
"""

RETURN = r"""
hosts:
  description: One spec per host of the topology, keyed by host name; pass a host's spec to M(netstitch.fabric.apply).
  returned: success
  type: dict
  sample:
    h1:
      version: 1
      host: h1
      networks:
        - name: front
          bridge: nsbr-front
          subnet: 198.51.100.64/26
          gateway: 198.51.100.65
          mtu: 1500
          masquerade: true
          internal: false
      containers:
        - name: web
          kind: netns
          netns: web
          interfaces:
            - name: eth0
              network: front
              ip: null
needs_prepare:
  description:
    - Whether the hosts must exchange facts before they apply (tinc overlays, links to containers on other hosts
      with allocated addresses); then run M(netstitch.fabric.prepare) on every host first and pass the facts to
      M(netstitch.fabric.apply).
  returned: success
  type: bool
  sample: false
counts:
  description: How many hosts, networks, containers and container interfaces the topology has.
  returned: success
  type: dict
  sample: {hosts: 3, networks: 2, containers: 5, interfaces: 6}
problems:
  description: Every problem found, each with its path in the topology and the reason.
  returned: failure (invalid topology)
  type: list
  elements: dict
  sample:
    - path: networks.back.subnet
      reason: 198.51.100.64/27 overlaps 198.51.100.64/26 of networks.front
"""

import gc
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as ns_compile
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate as ns_validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import (
    NetstitchError, Problem, TopologyError, escape)
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.topofile import load_file


def read_topology(module, path):
    try:
        return load_file(path)
    except NetstitchError as e:
        problem = Problem("", str(e))
    return module.fail_json(msg="topology is invalid (1 problem):\n  - %s" % problem, problems=[problem.to_dict()])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            topology=dict(type="dict"),
            topology_file=dict(type="path"),
        ),
        mutually_exclusive=[("topology", "topology_file")],
        required_one_of=[("topology", "topology_file")],
        supports_check_mode=True,
    )
    gc.disable()    # one short run over a possibly huge topology: collections would only rescan its objects
    if module.params["topology_file"] is not None:
        data = read_topology(module, module.params["topology_file"])
    else:
        data = module.params["topology"]
    try:
        topo = ns_validate.load(data)
        specs = ns_compile.host_specs(topo)
    except TopologyError as e:
        module.fail_json(msg=str(e), problems=[p.to_dict() for p in e.problems])
    except NetstitchError as e:
        module.fail_json(msg=escape(str(e), 2000, keep_newlines=True))
    except Exception as e:  # pylint: disable=broad-except  # never "MODULE FAILURE" with a traceback for any input
        module.fail_json(msg="netstitch internal error while validating the topology (%s: %s); please report it "
                             "with the topology" % (type(e).__name__, escape(str(e), 200)),
                         exception=traceback.format_exc())
    counts = {
        "hosts": len(topo.hosts),
        "networks": len(topo.networks),
        "containers": len(topo.containers),
        "interfaces": sum(len(c.interfaces) for c in topo.containers.values()),
    }
    needs_prepare = any(ns_compile.needs_prepare(spec) for spec in specs.values())
    module.exit_json(changed=False, hosts=specs, counts=counts, needs_prepare=needs_prepare)


if __name__ == "__main__":
    main()
