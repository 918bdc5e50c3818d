#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netstitch developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: prepare
short_description: Work out the facts other hosts need before they apply their netstitch spec
version_added: "0.1.0"
description:
  - The first phase of a run, needed only when some host's spec says so (RV(netstitch.fabric.validate#module:needs_prepare)),
    that is when a network is a tinc overlay (peers exchange public keys) or a link names a container on another host
    whose address is allocated there.
  - Allocates this host's container addresses (and keeps them in its lease file, so the apply that follows uses the
    same ones), and makes sure the host has a tinc key pair for each of its tinc networks (private keys never leave
    the host).
  - Returns RV(facts); pass every host's facts, keyed by host name, to M(netstitch.fabric.apply) as O(netstitch.fabric.apply#module:peers).
author:
  - netstitch developers (@netstitch)
options:
  spec:
    description:
      - This host's spec, as M(netstitch.fabric.validate) returns it in RV(netstitch.fabric.validate#module:hosts).
    type: dict
    required: true
  state_dir:
    description:
      - The state directory M(netstitch.fabric.apply) uses (leases, tinc keys, the lock).
    type: path
    default: /var/lib/netstitch
  lock_timeout:
    description:
      - Seconds to wait for another netstitch run on the same host.
    type: float
    default: 300
extends_documentation_fragment:
  - netstitch.fabric.attributes
  - netstitch.fabric.attributes.locking_group
attributes:
  check_mode:
    support: full
    details: In check mode no lease is written and no key is generated; a missing key is reported as null.
  diff_mode:
    support: none
  idempotent:
    support: full
notes:
  - Needs root on the managed host.
requirements:
  - the C(tincd) program on the managed host when the spec has tinc overlays
seealso:
  - module: netstitch.fabric.validate
  - module: netstitch.fabric.apply
"""

EXAMPLES = r"""
- name: Validate once on the controller
  netstitch.fabric.validate:
    topology_file: "{{ playbook_dir }}/topology.yml"
  delegate_to: localhost
  run_once: true
  register: fabric

- name: Facts the other hosts need (addresses, tinc public keys)
  netstitch.fabric.prepare:
    spec: "{{ fabric.hosts[inventory_hostname] }}"
  register: prepared
  when: fabric.needs_prepare

- name: Apply with every host's facts
  netstitch.fabric.apply:
    spec: "{{ fabric.hosts[inventory_hostname] }}"
    peers: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, ['prepared', 'facts']))) }}"
"""

RETURN = r"""
facts:
  description: What the other hosts need from this one.
  returned: success
  type: dict
  contains:
    addresses:
      description: This host's container addresses, keyed by C(container/interface).
      type: dict
      returned: always
    addresses6:
      description: This host's container IPv6 addresses on dual-stack networks, keyed by C(container/interface).
      type: dict
      returned: when the host has a network with C(subnet6)
    underlay_link_local:
      description: The IPv6 link-local address of the interface holding this host's underlay address, the next hop
        of this host's IPv6 slices of a routed overlay over an IPv4 underlay.
      type: str
      returned: when the host carries a routed overlay with C(subnet6) over an IPv4 underlay
    tinc:
      description: This host's tinc public keys (tinc 1.0 RSA keys in PEM form), keyed by network.
      type: dict
      returned: always
  sample:
    addresses:
      web/eth0: 198.51.100.81
    tinc:
      secure: "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEA...\n-----END RSA PUBLIC KEY-----\n"
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.hostspec import spec_problems
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            spec=dict(type="dict", required=True),
            state_dir=dict(type="path", default=engine.DEFAULT_STATE_DIR),
            lock_timeout=dict(type="float", default=engine.LOCK_TIMEOUT),
        ),
        supports_check_mode=True,
    )
    spec = module.params["spec"]
    problems = spec_problems(spec)
    if problems:
        module.fail_json(msg="the spec is not one this netstitch.fabric.validate makes:\n  - %s"
                         % "\n  - ".join(problems), problems=problems)
    try:
        facts, changed = engine.prepare(spec, check_mode=module.check_mode, state_dir=module.params["state_dir"],
                                        lock_timeout=module.params["lock_timeout"])
    except NetstitchError as e:
        module.fail_json(msg=str(e))
    except (IOError, OSError) as e:
        module.fail_json(msg="preparing host %s failed: %s" % (spec["host"], e), exception=traceback.format_exc())
    except (KeyError, TypeError, ValueError) as e:
        module.fail_json(msg="the spec for host %s is malformed (%s: %s)" % (spec.get("host"), type(e).__name__, e),
                         exception=traceback.format_exc())
    module.exit_json(changed=changed, facts=facts)


if __name__ == "__main__":
    main()
