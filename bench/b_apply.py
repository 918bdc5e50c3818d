"""Cold apply, no-op re-apply and prune of N container endpoints on one host, beside the iproute2 baselines.

Per size N and repetition: three fresh, empty "host" namespaces (netstitch, the iproute2 script, the ip -batch
floor), each with its own N container namespaces made beforehand (not timed: containers exist before their
networking). The three are measured one after the other in an order that rotates with the repetition, after the
machine has settled. netstitch runs as the apply module does: a fresh Python process inside the host namespace
calling engine.apply with the compiled host spec; the figure is the engine's own timing.total (the process's wall
time, interpreter start and imports included, is kept too).
"""

import os

import iproute
import labkit
from labkit import engine_apply, host_spec, links_of, settle, write_json


class BenchFailure(AssertionError):
    pass


def _check_noop(res, n):
    bad = {k: v for k, v in res["writes"].items() if v}
    if res["changed"] or bad or res["actions"]:
        raise BenchFailure("no-op re-apply of %d endpoints was not a no-op: changed=%s, %d actions, writes %s"
                           % (n, res["changed"], res["actions"], res["writes"]))


def _check_clean(run, hostns, containers):
    left = [l for l in links_of(hostns) if l != "lo"]
    if left:
        raise BenchFailure("prune left links in %s: %s" % (hostns, left[:10]))
    for ns in containers[:: max(1, len(containers) // 10)]:
        if links_of(ns) != ["lo"]:
            raise BenchFailure("prune left links in container namespace %s: %s" % (ns, links_of(ns)))


def _check_ping(ns, gateway):
    r = labkit.run("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", gateway, check=False)
    if r.returncode != 0:
        raise BenchFailure("container %s does not reach its gateway %s after the apply" % (ns, gateway))


def _group_clean(hostns, spec):
    """Remove the script's links quickly (not timed): one link group, one removal."""
    bridges, endpoints = iproute.plan(spec)
    names = [e["host"] for e in endpoints] + [b["name"] for b in bridges]
    iproute.ip_batch(["link set %s group 4242" % x for x in names] + ["link del group 4242"], ns=hostns)


def run_size(run, n, reps, log, ip_prune_reps=1):
    wd = os.path.join(run.workdir, "apply-%d" % n)
    os.makedirs(wd, exist_ok=True)
    ns_n = ["%sn%dc%d" % (run.prefix, n, i) for i in range(n)]
    ns_s = ["%ss%dc%d" % (run.prefix, n, i) for i in range(n)]
    run.add_netns(ns_n + ns_s)
    spec_n = host_spec(labkit.endpoints_topology("node", ns_n), "node")
    spec_s = host_spec(labkit.endpoints_topology("node", ns_s), "node")
    spec_path = write_json(os.path.join(wd, "spec.json"), spec_n)
    empty_path = write_json(os.path.join(wd, "empty.json"), host_spec(labkit.empty_topology("node"), "node"))
    gateway = spec_n["networks"][0]["gateway"]
    rows = []
    for r in range(reps):
        row = {"rep": r}
        hn, hs, hf = run.host(), run.host(), run.host()
        flat = run.name("f")
        run.add_netns([flat])
        order = ["netstitch", "script", "floor"]
        order = order[r % 3:] + order[:r % 3]
        for what in order:
            row["busy_before_%s" % what] = settle()
            if what == "netstitch":
                sd = os.path.join(wd, "state-%d" % r)
                cold = engine_apply(hn, spec_path, sd)
                _check_ping(ns_n[0], gateway)
                row["busy_before_noop"] = settle()
                noop = engine_apply(hn, spec_path, sd)
                _check_noop(noop, n)
                row["busy_before_prune"] = settle()
                prune = engine_apply(hn, empty_path, sd)
                _check_clean(run, hn, ns_n)
                row.update({
                    "cold": cold["timing"]["total"], "cold_read": cold["timing"]["read"],
                    "cold_process": cold["process"], "cold_writes": cold["writes"], "cold_actions": cold["actions"],
                    "cold_user": cold["cpu_user"], "cold_sys": cold["cpu_sys"],
                    "noop_user": noop["cpu_user"], "noop_sys": noop["cpu_sys"],
                    "noop": noop["timing"]["total"], "noop_read": noop["timing"]["read"],
                    "noop_process": noop["process"], "noop_writes": noop["writes"],
                    "prune": prune["timing"]["total"], "prune_process": prune["process"],
                    "prune_writes": prune["writes"], "prune_actions": prune["actions"]})
            elif what == "script":
                row["script"], row["script_host"] = iproute.script(hs, spec_s)
                _check_ping(ns_s[0], gateway)
                if r < ip_prune_reps:
                    settle()
                    row["ip_prune_each"] = iproute.prune(hs, spec_s)
                    settle()
                    # the same script once more, removed the way netstitch removes (one link group)
                    iproute.script(hs, spec_s)
                    settle()
                    row["ip_prune_group"] = iproute.prune_group(hs, spec_s)
                else:
                    _group_clean(hs, spec_s)
            else:
                row["floor"], row["floor_host"] = iproute.floor(hf, flat, spec_s)
                _group_clean(hf, spec_s)
        row["ops"] = iproute.count_ops(spec_s)
        run.del_netns([hn, hs, hf, flat])
        log("  N=%d rep %d: netstitch cold %.3fs (process %.2fs), no-op %.3fs, prune %.3fs | script %.3fs | floor %.3fs%s"
            % (n, r, row["cold"], row["cold_process"], row["noop"], row["prune"], row["script"], row["floor"],
               " | ip prune each %.2fs, group %.3fs" % (row["ip_prune_each"], row["ip_prune_group"])
               if "ip_prune_each" in row else ""))
        rows.append(row)
    run.del_netns(ns_n + ns_s)
    return rows


def summary(rows):
    med = labkit.median
    out = {k: med([r.get(k) for r in rows]) for k in
           ("cold", "cold_process", "cold_read", "cold_user", "cold_sys", "noop", "noop_process", "noop_read",
            "noop_user", "noop_sys", "prune", "prune_process",
            "script", "script_host", "floor", "floor_host", "ip_prune_each", "ip_prune_group")}
    # ratios measured side by side (same repetition), then the median
    out["script_over_cold"] = med([r["script"] / r["cold"] for r in rows])
    out["cold_over_floor"] = med([r["cold"] / r["floor"] for r in rows])
    out["noop_writes_max"] = max(sum(r["noop_writes"].values()) for r in rows)
    out["cold_writes"] = rows[0]["cold_writes"]
    out["prune_writes"] = rows[0]["prune_writes"]
    out["ops"] = rows[0]["ops"]
    out["reps"] = len(rows)
    return out
