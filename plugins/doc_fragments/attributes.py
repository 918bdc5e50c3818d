# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attribute descriptions every netstitch.fabric module shares; each module states only its support."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
"""

    # the modules in the action groups of meta/runtime.yml (module_defaults: group/netstitch.fabric.host, .locking)
    HOST_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/netstitch.fabric.host) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - netstitch.fabric.host
"""

    LOCKING_GROUP = r"""
attributes:
  action_group:
    description: >-
      Use C(group/netstitch.fabric.host) (state_dir) or C(group/netstitch.fabric.locking) (state_dir, lock_timeout) in
      C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - netstitch.fabric.host
      - netstitch.fabric.locking
"""

    FACTS = r"""
attributes:
  facts:
    description: Action returns an C(ansible_facts) dictionary that will update existing host facts.
"""
