"""Command line face of the library (bin/netstitch): validate, compile and apply without Ansible.

    netstitch validate TOPOLOGY            check a topology; every problem with its path; exit 1 if invalid
    netstitch compile TOPOLOGY [--host H]  print the per-host specs (JSON)
    netstitch apply TOPOLOGY --host H [--check] [--state-dir D]
                                           reconcile the host this process runs in (root; use nsenter for a lab host)
"""

import argparse
import json
import sys

from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import compile as comp
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import validate
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.errors import NetstitchError


def _loader():
    """A safe YAML loader that refuses a key given twice in one mapping (plain YAML keeps the last silently, so a
    second container of the same name would make the first one vanish, and apply would prune it)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue    # '<<': merged keys may be overridden
            key = loader.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                continue    # unhashable: the base constructor reports it
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "found the key %r twice (first on line %d)" % (key, first.line + 1), key_node.start_mark)
            seen[key] = key_node.start_mark
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def load_file(path):
    import yaml
    try:
        with open(path) as f:
            return yaml.load(f, Loader=_loader())
    except (OSError, ValueError, yaml.YAMLError) as e:    # ValueError: bytes that are not UTF-8
        raise NetstitchError("cannot read topology %s: %s" % (path, e))


def main(argv=None):
    p = argparse.ArgumentParser(prog="netstitch", description="declarative container networking")
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("validate", help="validate a topology")
    v.add_argument("topology")
    c = sub.add_parser("compile", help="print per-host specs")
    c.add_argument("topology")
    c.add_argument("--host")
    a = sub.add_parser("apply", help="apply a host's part of a topology to this machine's current namespace")
    a.add_argument("topology")
    a.add_argument("--host", required=True)
    a.add_argument("--check", action="store_true")
    a.add_argument("--state-dir", default=None)
    a.add_argument("--peers", help="JSON file {host: facts printed by `netstitch prepare` on that host}")
    k = sub.add_parser("prepare", help="print the facts other hosts need (addresses, tinc public keys) as JSON")
    k.add_argument("topology")
    k.add_argument("--host", required=True)
    k.add_argument("--state-dir", default=None)
    args = p.parse_args(argv)
    try:
        topo = validate.load(load_file(args.topology))
        specs = comp.host_specs(topo)
        if args.cmd == "validate":
            print("%s: valid (%d hosts, %d networks, %d containers)"
                  % (args.topology, len(topo.hosts), len(topo.networks), len(topo.containers)))
        elif args.cmd == "compile":
            if args.host and args.host not in specs:
                raise NetstitchError("host %r is not in the topology" % args.host)
            print(json.dumps(specs[args.host] if args.host else specs, indent=1, sort_keys=True))
        else:
            from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import engine
            if args.host not in specs:
                raise NetstitchError("host %r is not in the topology" % args.host)
            kw = {"state_dir": args.state_dir} if args.state_dir else {}
            if args.cmd == "prepare":
                facts, changed = engine.prepare(specs[args.host], **kw)
                print(json.dumps({"facts": facts, "changed": changed}, indent=1, sort_keys=True))
                return 0
            if args.peers:
                with open(args.peers) as f:
                    kw["peers"] = json.load(f)
            res = engine.apply(specs[args.host], check_mode=args.check, **kw)
            res.pop("diff")
            print(json.dumps(res, indent=1, sort_keys=True))
    except NetstitchError as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
