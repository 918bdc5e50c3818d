"""Command line face of the library (bin/netstitch): validate, compile and apply without Ansible.

    netstitch validate TOPOLOGY            check a topology; every problem with its path; exit 1 if invalid
    netstitch compile TOPOLOGY [--host H]  print the per-host specs (JSON)
    netstitch apply TOPOLOGY --host H [--check] [--state-dir D] [--peers F] [--docker-force]
                                           reconcile the host this process runs in (root; use nsenter for a lab host)
    netstitch boot --host H [--state-dir D] [--without-docker]
                                           re-apply the host's last applied spec (at boot: see boot.py)
    netstitch watch --host H [--state-dir D] [--docker-host URL]
                                           re-apply the host's last applied spec whenever a Docker container it
                                           names starts (a restarted container gets its interfaces back)
"""

import argparse
import json
import sys

from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import compile as comp
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import validate
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.errors import NetstitchError
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.topofile import load_file


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
    b = sub.add_parser("boot", help="re-apply the host's last applied spec (what the boot unit runs)")
    b.add_argument("--host", required=True)
    b.add_argument("--state-dir", default=None)
    b.add_argument("--without-docker", action="store_true", help="leave Docker alone (at boot it is not up yet)")
    args = p.parse_args(argv)
    if args.cmd == "boot":
        from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import boot, engine
        return boot.restore(args.host, args.state_dir or engine.DEFAULT_STATE_DIR, docker=not args.without_docker)
    if args.cmd == "watch":
        from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import engine, watch
        return watch.main(args.host, args.state_dir or engine.DEFAULT_STATE_DIR, args.docker_host)
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
            if args.docker_force:
                kw["docker_force"] = True
            res = engine.apply(specs[args.host], check_mode=args.check, **kw)
            res.pop("diff")
            print(json.dumps(res, indent=1, sort_keys=True))
    except NetstitchError as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
