#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netstitch developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: boot
short_description: Make a host restore its container networks at boot, without a playbook run
version_added: "0.2.0"
description:
  - A reboot loses every bridge, veth, namespace, nftables table and sysctl netstitch made; its state directory stays.
    This module installs what re-applies the host's last applied spec at boot, from that state alone.
  - It installs netstitch's library under C(/usr/local/lib/netstitch) and a launcher C(/usr/local/sbin/netstitch)
    (netstitch's command line, with C(boot) and C(watch)), using the Python interpreter that runs this module.
  - On a host run by systemd (and when this module runs in its root network namespace) it also installs and enables
    C(netstitch-boot.service), a oneshot ordered after C(network-online.target) and before C(docker.service), and,
    when the spec names Docker containers or networks, C(netstitch-watch.service) (after C(docker.service)), which
    attaches Docker's containers when they start.
  - Without systemd it installs no unit and returns RV(boot_command), the command to run at boot (before Docker).
author:
  - netstitch developers (@netstitch)
options:
  host:
    description: The host's name in the topology (normally C(inventory_hostname)); names its state file.
    type: str
    required: true
  state_dir:
    description: The state directory M(netstitch.fabric.apply) uses on this host.
    type: path
    default: /var/lib/netstitch
  spec:
    description:
      - The host's spec, as M(netstitch.fabric.validate) returns it. Only used to decide whether the watcher unit is
        needed (Docker containers or networks); the boot unit applies the spec last applied, kept in O(state_dir).
    type: dict
  state:
    description:
      - C(present) installs; C(absent) disables and removes the units, the library and the launcher (the role does
        so in a teardown).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - netstitch.fabric.attributes
  - netstitch.fabric.attributes.host_group
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
notes:
  - Needs root (it writes under C(/usr/local) and C(/etc/systemd/system)).
  - Do not use it on "hosts" that are network namespaces of one machine (the namespace lab), since they share its
    filesystem and its systemd. The role runs it only when C(netstitch_boot) is true.
seealso:
  - module: netstitch.fabric.apply
"""

EXAMPLES = r"""
- name: Restore this host's container networks at boot
  netstitch.fabric.boot:
    host: "{{ inventory_hostname }}"
    spec: "{{ fabric.hosts[inventory_hostname] }}"
"""

RETURN = r"""
actions:
  description: What was done (or, in check mode, would be done).
  returned: always
  type: list
  elements: str
  sample: ["write /etc/systemd/system/netstitch-boot.service", "enable netstitch-boot.service"]
units:
  description: The systemd units installed (none without systemd).
  returned: always
  type: list
  elements: str
  sample: [netstitch-boot.service]
systemd:
  description: Whether the host runs systemd (and this module ran in its root network namespace).
  returned: always
  type: bool
boot_command:
  description: What restores the networks at boot; run it from the boot scripts of a host without systemd.
  returned: when O(state=present)
  type: str
  sample: /usr/local/sbin/netstitch boot --host h1 --state-dir /var/lib/netstitch
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host import boot
# the launcher runs the command line (boot, watch, ...); importing it here packs it, and what it imports, into the
# module, for boot.install to install
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import cli, commands
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host import watch

LAUNCHED = (cli.main, commands.cmd_boot, commands.cmd_watch, watch.main)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            state_dir=dict(type="path", default="/var/lib/netstitch"),
            spec=dict(type="dict"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        res = boot.install(p["host"], p["state_dir"], spec=p["spec"], state=p["state"], check_mode=module.check_mode)
    except OSError as e:
        module.fail_json(msg="could not install netstitch's boot pieces: %s" % e)
    errors = res.pop("errors")
    if errors:
        module.fail_json(msg="; ".join(errors), **res)
    if p["state"] == "present" and not res["systemd"]:
        module.warn("no systemd here (or not in its root network namespace): no unit installed; run `%s` at boot "
                    "(before Docker) to restore the container networks" % res["boot_command"])
    module.exit_json(**res)


if __name__ == "__main__":
    main()
