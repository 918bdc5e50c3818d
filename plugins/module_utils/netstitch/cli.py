"""Command line face of the library (bin/netstitch): validate, compile and apply without Ansible.

    netstitch validate TOPOLOGY            check a topology; every problem with its path; exit 1 if invalid
    netstitch compile TOPOLOGY [--host H]  print the per-host specs (JSON)
    netstitch apply TOPOLOGY --host H [--check] [--state-dir D] [--peers F] [--docker-force]
                                           reconcile the host this process runs in (root; use nsenter for a lab host)
    netstitch watch --host H [--state-dir D] [--docker-host URL]
                                           re-apply the host's last applied spec whenever a Docker container it
                                           names starts (a restarted container gets its interfaces back)
"""

import argparse
import gc
import json
import os
import sys

from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.errors import NetstitchError, escape


def read_bytes(path):
    from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.safeyaml import MAX_BYTES
    try:
        with open(path, "rb") as f:
            return f.read(MAX_BYTES + 1)
    except OSError as e:
        raise NetstitchError("cannot read topology %s: %s" % (path, e.strerror or e))


def compile_file(path, data=None):
    """(model, {host: spec}) of the topology file ``path``: read (safeyaml), validated, compiled."""
    from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import compile as comp
    from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import validate
    from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.safeyaml import load_bytes
    topo = validate.load(load_bytes(read_bytes(path) if data is None else data, path))
    return topo, comp.host_specs(topo)


def host_spec(path, host, cache_dir, store=True):
    """One host's spec, from the spec cache when the file and netstitch are unchanged (see speccache)."""
    from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import speccache
    data = read_bytes(path)
    k = speccache.key(data, host)
    spec = speccache.get(cache_dir, host, k)
    if spec is not None:
        return spec
    specs = compile_file(path, data)[1]
    if host not in specs:
        raise NetstitchError("host %r is not in the topology" % host)
    if store:
        speccache.put(cache_dir, host, k, specs[host])
    return specs[host]


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
    a.add_argument("--docker-force", action="store_true",
                   help="re-create or remove Docker networks even while containers are connected to them "
                        "(they are disconnected, and connected again with the same addresses where these fit)")
    k = sub.add_parser("prepare", help="print the facts other hosts need (addresses, tinc public keys) as JSON")
    k.add_argument("topology")
    k.add_argument("--host", required=True)
    k.add_argument("--state-dir", default=None)
    w = sub.add_parser("watch", help="re-apply the host's last applied spec when a Docker container it names starts")
    w.add_argument("--host", required=True)
    w.add_argument("--state-dir", default=None)
    w.add_argument("--docker-host", default=None, help="Docker Engine address (default: the spec's docker_host, "
                                                       "DOCKER_HOST, unix:///var/run/docker.sock)")
    args = p.parse_args(argv)
    if args.cmd == "watch":
        from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import engine, watch
        return watch.main(args.host, args.state_dir or engine.DEFAULT_STATE_DIR, args.docker_host)
    gc.disable()    # a short-lived command: collections would only rescan the topology's objects (x2 at 100,000)
    try:
        if args.cmd in ("apply", "prepare"):
            from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import engine
            kw = {"state_dir": args.state_dir} if args.state_dir else {}
            spec = host_spec(args.topology, args.host, os.path.join(kw.get("state_dir", engine.DEFAULT_STATE_DIR),
                                                                    "cache"), store=not getattr(args, "check", False))
            if args.cmd == "prepare":
                facts, changed = engine.prepare(spec, **kw)
                print(json.dumps({"facts": facts, "changed": changed}, indent=1, sort_keys=True))
                return 0
            if args.peers:
                try:
                    with open(args.peers) as f:
                        kw["peers"] = json.load(f)
                except (OSError, ValueError) as e:
                    raise NetstitchError("cannot read the peers file %s: %s" % (args.peers, e))
            if args.docker_force:
                kw["docker_force"] = True
            res = engine.apply(spec, check_mode=args.check, **kw)
            res.pop("diff")
            print(json.dumps(res, indent=1, sort_keys=True))
            return 0
        topo, specs = compile_file(args.topology)
        if args.cmd == "validate":
            print("%s: valid (%d hosts, %d networks, %d containers)"
                  % (escape(args.topology), len(topo.hosts), len(topo.networks), len(topo.containers)))
        else:
            if args.host and args.host not in specs:
                raise NetstitchError("host %r is not in the topology" % args.host)
            print(json.dumps(specs[args.host] if args.host else specs, indent=1, sort_keys=True))
    except NetstitchError as e:
        print(escape(str(e), keep_newlines=True), file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - never a traceback for any input; NETSTITCH_DEBUG=1 shows it
        if os.environ.get("NETSTITCH_DEBUG"):
            raise
        print("netstitch: internal error (%s: %s); run again with NETSTITCH_DEBUG=1 for the traceback, and please "
              "report it" % (type(e).__name__, escape(str(e), 300)), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
