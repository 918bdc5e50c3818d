"""Cold apply and no-op re-apply of N container endpoints on one host, IPv4 only beside dual stack (issue 15).

The same containers and networks as b_apply (labkit.endpoints_topology), once IPv4 only and once with a subnet6 on
every network (each container then also gets an IPv6 address, its default route and the bridges their gateway6 and
IPv6 forwarding). Per repetition, two fresh host namespaces with their own N container namespaces (made beforehand,
not timed), measured one after the other in an order that alternates with the repetition; the figure is the engine's
own timing.total, as b_apply reports it. Every no-op is asserted to be one (changed false, zero writes).

    python bench/b_dualstack.py [--endpoints 1000] [--reps 3] [--out FILE]      (root: it creates namespaces)
"""

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import labkit  # noqa: E402


def dual_stack(topology):
    out = json.loads(json.dumps(topology))
    for k, (name, net) in enumerate(sorted(out["networks"].items())):
        net["subnet6"] = "2001:db8:%x::/64" % (0x100 + k)
    return out


def measure(run, n, reps, log):
    rows = []
    for r in range(reps):
        row = {"rep": r}
        order = ["ipv4", "dual"] if r % 2 == 0 else ["dual", "ipv4"]
        for what in order:
            host = run.host()
            conts = ["%s%s%dc%d" % (run.prefix, what[0], r, i) for i in range(n)]
            run.add_netns(conts)
            topo = labkit.endpoints_topology("node", conts)
            spec = labkit.host_spec(dual_stack(topo) if what == "dual" else topo, "node")
            wd = os.path.join(run.workdir, "%s-%d" % (what, r))
            os.makedirs(wd, exist_ok=True)
            path = labkit.write_json(os.path.join(wd, "spec.json"), spec)
            labkit.settle()
            cold = labkit.engine_apply(host, path, os.path.join(wd, "state"))
            labkit.settle()
            noop = labkit.engine_apply(host, path, os.path.join(wd, "state"))
            if noop["changed"] or any(noop["writes"].values()) or noop["actions"]:
                raise AssertionError("%s no-op of %d endpoints was not one: %s" % (what, n, noop["writes"]))
            row[what] = {"cold": cold["timing"]["total"], "cold_writes": sum(cold["writes"].values()),
                         "noop": noop["timing"]["total"], "noop_read": noop["timing"]["read"]}
            run.del_netns(conts + [host])
        log("  N=%d rep %d: IPv4 cold %.3fs no-op %.3fs | dual stack cold %.3fs no-op %.3fs"
            % (n, r, row["ipv4"]["cold"], row["ipv4"]["noop"], row["dual"]["cold"], row["dual"]["noop"]))
        rows.append(row)
    med = labkit.median
    summary = {w: {k: med([row[w][k] for row in rows]) for k in ("cold", "noop", "noop_read", "cold_writes")}
               for w in ("ipv4", "dual")}
    return {"endpoints": n, "reps": reps, "rows": rows, "summary": summary}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("--endpoints", type=int, default=1000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    run = labkit.Run(tempfile.mkdtemp(prefix="netstitch-bench-dual-"))
    try:
        out = measure(run, args.endpoints, args.reps, lambda s: print(s, flush=True))
    finally:
        run.cleanup()
    print(json.dumps(out["summary"], indent=1))
    if args.out:
        labkit.write_json(args.out, out)


if __name__ == "__main__":
    main()
