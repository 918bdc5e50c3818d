"""Topology validation: JSON Schema (structure) plus semantic checks, every problem reported at once with its path.

``load(data)`` returns a ``model.Topology`` or raises ``errors.TopologyError`` listing all problems. It is pure: no
host is looked at or touched, so it runs on the controller before anything is applied.
"""

import copy
from typing import Any

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import (
    NetstitchError, Problem, TopologyError, escape)
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model, precheck
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_attach import AttachChecks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_chains import ChainChecks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_containers import ContainerChecks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_hosts import HostChecks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_ipv6 import IPv6Checks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_inbound import InboundChecks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_links import LinkChecks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_macvlan import MacvlanChecks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_networks import NetworkChecks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_tenants import TenantChecks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import Checker, is_dict, path_text
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.placement import Placement
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.schema import SCHEMA


def _jsonschema():
    """jsonschema, imported only when a topology is invalid (it alone lists every problem; its import takes about
    0.3 s, which a valid topology never pays): the module, or None when it is not installed."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - reported by schema_problems()
        return None
    return jsonschema


try:
    import fastjsonschema
    HAS_FASTJSONSCHEMA = True
except ImportError:  # pragma: no cover - the slower jsonschema alone still gives the same answers
    HAS_FASTJSONSCHEMA = False

_FAST = []
_SLOW = []      # the jsonschema validator, built once (it caches what it resolves)


def _fast_valid(data):
    """True when the compiled validator (fastjsonschema, ~50x faster) accepts the topology; False when it rejects
    it or is not available: jsonschema then lists every problem with its path."""
    if not HAS_FASTJSONSCHEMA:
        return False
    if not _FAST:
        schema = copy.deepcopy(SCHEMA)      # the compiler annotates what it is given
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"     # the keywords used are all draft-07
        _FAST.append(fastjsonschema.compile(schema))
    try:
        _FAST[0](data)
        return True
    except fastjsonschema.JsonSchemaException:
        return False


def schema_problems(data):
    if _fast_valid(data):
        return []
    jsonschema = _jsonschema()
    if jsonschema is None:
        return [Problem("", "the Python package 'jsonschema' is needed to validate a topology (pip install jsonschema)")]
    if not _SLOW:
        _SLOW.append(jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()))
    validator = _SLOW[0]
    problems = []
    for err in validator.iter_errors(data):
        path = list(err.absolute_path)
        if err.validator == "propertyNames" or list(err.absolute_schema_path)[-2:-1] == ["propertyNames"]:
            # the offending key is in the instance (jsonschema reports it as a pattern/type error of the key,
            # with the mapping's path); name it in the path
            path.append(str(err.instance))
            if isinstance(err.instance, str):
                reason = "is not a valid name (letters, digits, '_', '.', '-'; at most 63 characters, starting with a letter or digit)"
            else:
                reason = "is not a valid name: a name is a string (quote %r in YAML)" % (err.instance,)
        elif err.validator == "additionalProperties" and err.validator_value is False and is_dict(err.instance):
            # one problem per unknown key, at the key's own path
            known = sorted((err.schema.get("properties") or {}).keys())
            for key in err.instance:
                if key not in known:
                    problems.append(Problem(path_text(path + [key]), "unknown key (expected one of: %s)" % ", ".join(known)))
            continue
        elif err.validator == "required" and is_dict(err.instance):
            # at the missing key's own path
            for key in err.validator_value:
                if key not in err.instance:
                    problems.append(Problem(path_text(path + [key]), "is required but missing"))
            continue
        elif err.validator == "pattern" and err.schema.get("pattern", "").startswith("^[0-9A-Fa-f]{2}"):
            reason = "%r is not a MAC address (six colon-separated hex bytes)" % (err.instance,)
        elif err.validator == "pattern" and err.schema.get("pattern") == "^[A-Za-z0-9_.-]+$":
            reason = "%r is not a valid interface name (letters, digits, '_', '.', '-')" % (err.instance,)
        else:
            reason = err.message
        problems.append(Problem(path_text(path), reason))
    return sorted(set(problems), key=lambda p: (p.path, p.reason))


class _Checker(Checker, HostChecks, NetworkChecks, IPv6Checks, MacvlanChecks, InboundChecks, Placement,
               ContainerChecks, AttachChecks, LinkChecks, TenantChecks, ChainChecks):
    """Every section's checks over one topology."""


def load(data: Any, debug: bool = False) -> model.Topology:
    """Validate a topology (a dict as parsed from YAML) and return the normalised model.

    Raises TopologyError with every problem found, each with its path. Any other failure inside the checks (a bug)
    comes out as a NetstitchError saying so, never as a traceback; ``debug`` (the tests) lets it through instead."""
    if not is_dict(data):
        raise TopologyError([Problem("", "a topology is a mapping with hosts, networks and containers, not %s"
                                     % type(data).__name__)])
    problems, data = precheck.check(data)
    try:
        return _load(data, problems)
    except NetstitchError:      # TopologyError included
        raise
    except Exception as e:  # noqa: BLE001 - reported, not shown as a traceback
        if debug:
            raise
        if problems:
            raise TopologyError(problems)   # checks that stumbled over values already reported
        raise NetstitchError("internal error while validating the topology (%s: %s); please report it with the "
                             "topology" % (type(e).__name__, escape(str(e), 200)))


def _load(data, first):
    covered = precheck.supersedes(first)
    problems = list(first) + [p for p in schema_problems(data) if not covered(p)]
    chk = _Checker(data)
    hosts = chk.hosts()
    nets = chk.networks(hosts)
    conts = chk.containers(hosts, nets)
    chk.attachments(hosts, nets)
    # a network is carried by the hosts it names plus the hosts of the containers on it
    for host, netname in chk.carried:
        nets[netname].hosts.add(host)
    chk.inbound_routes(hosts, nets)
    chk.place_overlays(hosts, nets)
    chk.docker_ranges(conts, nets)
    chk.capacity(conts, nets)
    chk.capacity6(conts, nets)
    links = chk.links(conts, nets)
    chk.macvlan_uses(hosts, conts, nets, links)
    tenants = chk.tenants(hosts, nets, conts, links)
    chains = chk.chains(conts, nets)
    seen = set(problems)
    for p in chk.problems:
        if p not in seen and not covered(p):
            problems.append(p)
            seen.add(p)
    if problems:
        raise TopologyError(problems)
    return model.Topology(hosts, nets, conts, links, tenants, chains)
