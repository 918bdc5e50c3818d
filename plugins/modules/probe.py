#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netstitch developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: probe
short_description: Check container connectivity with real packets
version_added: "0.1.0"
description:
  - Sends pings from inside container network namespaces, in parallel, and compares each outcome with what was
    expected (answered or not).
  - The checks are given in O(checks), or derived in O(expected) from the per-host specs and the endpoints that
    M(netstitch.fabric.apply) returned (containers on one network reach each other and their gateway, nothing
    reaches into another network, a masqueraded network reaches the outside, an internal one does not).
  - Fails when an outcome differs from its expectation, unless O(fail_on_mismatch=false).
  - Read-only; never reports a change.
author:
  - netstitch developers (@netstitch)
options:
  checks:
    description:
      - The checks to make. Keys other than the ones below are kept in RV(outcomes) (for labels in a report).
      - Exactly one of O(checks) and O(expected) is required.
    type: list
    elements: dict
    suboptions:
      from_netns:
        description:
          - The network namespace to ping from, a name under C(/run/netns) or an absolute path such as
            C(/proc/PID/ns/net).
        type: str
        required: true
      to:
        description: The IPv4 or IPv6 address to ping.
        type: str
        required: true
      expect:
        description: Whether the ping should be answered.
        type: bool
        default: true
  expected:
    description:
      - Derive the checks from a fabric instead of listing them.
      - Exactly one of O(checks) and O(expected) is required.
    type: dict
    suboptions:
      specs:
        description: The per-host specs, as RV(netstitch.fabric.validate#module:hosts).
        type: dict
        required: true
      endpoints:
        description: The endpoints each host's apply returned, keyed by host name.
        type: dict
        required: true
      host:
        description:
          - Only check from containers on this host (normally C(inventory_hostname), so each host pings from its own
            containers). All containers when omitted.
        type: str
      outside:
        description:
          - Addresses outside the fabric (beyond the hosts, for example a router or a service on the hosts'
            uplink) to check the way out with. A container on a masqueraded network is expected to reach them, one
            on an internal network or without a default route is expected not to.
          - There is no default, since only you know what is outside your hosts. When none is given, the way out is
            not checked, and RV(report) says so in its last line (C(outside) not tested).
        type: list
        elements: str
      pairs:
        description: Whether to check container-to-container pairs (their number grows with the square).
        type: bool
        default: true
  timeout:
    description: Seconds to wait for each reply (ping's C(-W)).
    type: int
    default: 1
  attempts:
    description:
      - Pings sent, one after another, before a check that expects an answer counts as unanswered (the first packet
        of a new neighbour may wait for ARP). A check that expects no answer sends this many too, and any answer
        counts.
    type: int
    default: 2
  parallel:
    description: How many checks run at once.
    type: int
    default: 32
  fail_on_mismatch:
    description: Fail the task when any outcome differs from its expectation.
    type: bool
    default: true
extends_documentation_fragment:
  - netstitch.fabric.attributes
attributes:
  check_mode:
    support: full
    details: Pings are sent in check mode too; they change nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
notes:
  - Needs root (entering a network namespace) and the C(nsenter) and C(ping) commands on the host.
  - Run it on the host the containers live on; the namespaces of another host are not visible there.
requirements:
  - nsenter (util-linux)
  - ping (iputils)
seealso:
  - module: netstitch.fabric.apply
"""

EXAMPLES = r"""
- name: Two explicit checks
  netstitch.fabric.probe:
    checks:
      - from_netns: web
        to: 198.51.100.67
      - from_netns: web
        to: 198.51.100.130
        expect: false

- name: Everything that follows from the fabric, from this host's containers
  netstitch.fabric.probe:
    expected:
      specs: "{{ fabric.hosts }}"
      endpoints: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, ['applied', 'endpoints']))) }}"
      host: "{{ inventory_hostname }}"
      outside: [203.0.113.250]   # an address beyond your hosts that masqueraded containers should reach
  register: probe

- name: Show it
  ansible.builtin.debug:
    msg: "{{ probe.report }}"
"""

RETURN = r"""
outcomes:
  description:
    - One entry per check, the check's own keys plus the outcome.
    - (Not called C(results), which Ansible reserves for the items of a loop.)
  returned: always
  type: list
  elements: dict
  sample:
    - from_netns: web
      to: 198.51.100.67
      expect: true
      reached: true
      ok: true
      attempts: 1
      error: null
mismatches:
  description: The entries of RV(outcomes) whose outcome differs from the expectation.
  returned: always
  type: list
  elements: dict
all_ok:
  description: Whether every outcome was as expected.
  returned: always
  type: bool
counts:
  description: Checks made, as expected, and mismatched.
  returned: always
  type: dict
  sample: {checks: 12, ok: 12, mismatched: 0}
report:
  description:
    - A readable table of the outcomes, one line each.
    - With O(expected) and no O(expected.outside), a last line saying that C(outside) was not tested.
  returned: always
  type: list
  elements: str
unchecked:
  description: With O(expected), the pairs not checked because their outcome cannot be known, with the reason.
  returned: always
  type: list
  elements: dict
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import reachability

NETNS_RUN_DIR = "/run/netns"


def netns_path(name):
    return name if name.startswith("/") else os.path.join(NETNS_RUN_DIR, name)


class Prober(object):
    def __init__(self, module):
        self.module = module
        self.nsenter = module.get_bin_path("nsenter", required=True)
        self.ping = module.get_bin_path("ping", required=True, opt_dirs=["/usr/sbin", "/sbin"])
        self.timeout = max(1, module.params["timeout"])
        self.attempts = max(1, module.params["attempts"])
        self.lock = threading.Lock()

    def once(self, path, to):
        cmd = [self.nsenter, "--net=%s" % path, "--", self.ping, "-n", "-q", "-c", "1", "-W", str(self.timeout), to]
        rc, out, err = self.module.run_command(cmd)
        if rc == 0:
            return True, None
        if rc == 1:
            return False, None          # no reply
        return False, (err or out).strip() or "ping exited with %d" % rc

    def run(self, check):
        res = dict(check)
        path = netns_path(check["from_netns"])
        expect = check.get("expect", True) is not False
        res["expect"] = expect
        res.update(reached=False, error=None, attempts=0)
        if not os.path.exists(path):
            res["error"] = "network namespace %s does not exist on this host" % path
            res["ok"] = False
            return res
        for n in range(self.attempts):
            reached, error = self.once(path, check["to"])
            res["attempts"] = n + 1
            res["reached"] = reached
            res["error"] = error
            if reached:
                break
        res["ok"] = res["reached"] == expect and not (expect and res["error"])
        return res


def check_problems(checks):
    problems = []
    for i, c in enumerate(checks):
        for key in ("from_netns", "to"):
            if not isinstance(c.get(key), str) or not c.get(key):
                problems.append("checks[%d].%s must be a non-empty string" % (i, key))
        if "expect" in c and not isinstance(c["expect"], bool):
            problems.append("checks[%d].expect must be true or false" % i)
    return problems


def derive(module):
    exp = module.params["expected"]
    for key in ("specs", "endpoints"):
        if not isinstance(exp.get(key), dict):
            module.fail_json(msg="expected.%s must be a mapping keyed by host name" % key)
    try:
        checks, skipped = reachability.expected_checks(exp["specs"], exp["endpoints"],
                                                       outside=exp.get("outside") or [], pairs=exp.get("pairs", True))
    except (KeyError, TypeError, AttributeError) as e:
        module.fail_json(msg="expected.specs or expected.endpoints is not what validate and apply return (%s: %s)"
                         % (type(e).__name__, e))
    if exp.get("host"):
        checks = reachability.for_host(checks, exp["host"])
        skipped = [s for s in skipped if str(s.get("from", "")).endswith("@%s" % exp["host"])
                   or s.get("from") == exp["host"]]
    return checks, skipped


def main():
    module = AnsibleModule(
        argument_spec=dict(
            checks=dict(type="list", elements="dict"),
            expected=dict(type="dict", options=dict(
                specs=dict(type="dict", required=True),
                endpoints=dict(type="dict", required=True),
                host=dict(type="str"),
                outside=dict(type="list", elements="str"),
                pairs=dict(type="bool", default=True),
            )),
            timeout=dict(type="int", default=1),
            attempts=dict(type="int", default=2),
            parallel=dict(type="int", default=32),
            fail_on_mismatch=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("checks", "expected")],
        required_one_of=[("checks", "expected")],
        supports_check_mode=True,
    )
    title = None
    notes = []
    if module.params["checks"] is not None:
        checks, skipped = module.params["checks"], []
        problems = check_problems(checks)
        if problems:
            module.fail_json(msg="invalid checks:\n  - %s" % "\n  - ".join(problems), problems=problems)
    else:
        checks, skipped = derive(module)
        if not module.params["expected"].get("outside"):
            notes.append(reachability.NOT_TESTED_OUTSIDE)
        if module.params["expected"].get("host"):
            title = "pings from the containers on %s" % module.params["expected"]["host"]
    results = []
    if checks:
        prober = Prober(module)
        with ThreadPoolExecutor(max_workers=max(1, min(module.params["parallel"], len(checks)))) as pool:
            results = list(pool.map(prober.run, checks))
    mismatches = [r for r in results if not r["ok"]]
    out = dict(
        changed=False,
        outcomes=results,
        mismatches=mismatches,
        all_ok=not mismatches,
        counts={"checks": len(results), "ok": len(results) - len(mismatches), "mismatched": len(mismatches)},
        report=reachability.report(results, title=title) + notes,
        unchecked=skipped,
    )
    if mismatches and module.params["fail_on_mismatch"]:
        lines = []
        for r in mismatches:
            lines.append("from %s to %s (%s): expected %s, got %s%s" % (
                r.get("from") or r["from_netns"], r["to"], r.get("to_name") or r["to"],
                "an answer" if r["expect"] else "no answer", "an answer" if r["reached"] else "no answer",
                " (%s)" % r["error"] if r.get("error") else ""))
        module.fail_json(msg="%d of %d connectivity checks did not hold:\n  - %s"
                         % (len(mismatches), len(results), "\n  - ".join(lines)), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
