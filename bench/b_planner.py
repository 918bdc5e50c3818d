"""The planner alone, on a big topology: H hosts x P containers (default 1,000 x 50 = 50,000 containers), half of
each host's containers on a VXLAN overlay spanning 20 hosts (H/20 overlays, so every host has 19 peers and their
MACs for its static FDB) and half on a host-local network. Timed: validate.load (schema + semantic checks of the
whole topology), compile.host_specs (every host's spec), and engine.compute for one host against an empty host
(IPAM, desired state, plan, nftables) -- what the controller and one managed host do, without any kernel.

Each measurement runs in a fresh Python process: once for the times, once more under tracemalloc for the peak of
Python allocations (tracemalloc slows Python down, so its times are not used); ru_maxrss is the process's peak RSS.

    python bench/b_planner.py [--hosts 1000] [--per-host 50] [--tracemalloc]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PER_OVERLAY = 20


def topology(hosts, per_host):
    ho = {"h%d" % i: {"underlay": "10.0.%d.%d/16" % (i // 250, i % 250 + 1)} for i in range(hosts)}
    nets = {"local": {"subnet": "172.16.0.0/20", "internal": True}}
    n_ov = (hosts + PER_OVERLAY - 1) // PER_OVERLAY
    for g in range(n_ov):
        nets["ov%d" % g] = {"subnet": "10.%d.%d.0/20" % (64 + (g * 16) // 256, (g * 16) % 256),
                            "overlay": {"type": "vxlan", "vni": 1000 + g, "slice_len": 27}}
    conts = {}
    half = per_host // 2
    for i in range(hosts):
        for j in range(per_host):
            net = "ov%d" % (i // PER_OVERLAY) if j < half else "local"
            conts["h%dc%d" % (i, j)] = {"host": "h%d" % i, "interfaces": [{"network": net}]}
    return {"version": 1, "hosts": ho, "networks": nets, "containers": conts}


def measure(hosts, per_host, trace):
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as comp
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate
    topo = topology(hosts, per_host)
    if trace:
        import tracemalloc
        tracemalloc.start()
    out = {}
    t0 = time.perf_counter()
    model = validate.load(topo)
    t1 = time.perf_counter()
    specs = comp.host_specs(model)
    t2 = time.perf_counter()
    host = "h%d" % (hosts // 2)
    spec = specs[host]
    current = {"links": {}, "netns": {}, "named_netns": [], "owned_netns": [], "sysctl": {}, "routes": {},
               "nft": None, "hosts_files": {}, "tinc": {}}
    with tempfile.TemporaryDirectory() as sd:
        hstate = engine.HostState(sd, host)
        t3 = time.perf_counter()
        plan = engine.compute(spec, current, hstate)
        t4 = time.perf_counter()
    out.update({"validate": round(t1 - t0, 4), "compile": round(t2 - t1, 4), "plan_one_host": round(t4 - t3, 4),
                "total": round(t4 - t0 - (t3 - t2), 4), "actions": len(plan.actions), "nft_commands": len(plan.nft_cmds),
                "containers": len(topo["containers"]), "hosts": hosts, "networks": len(topo["networks"]),
                "host_containers": len(spec["containers"]),
                "fdb_entries": sum(len(p["macs"]) + 1 for n in spec["networks"] if n.get("overlay")
                                   for p in n["overlay"].get("peers", []))})
    if trace:
        import tracemalloc
        out["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2 ** 20, 1)
    out["maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    return out


def run(hosts, per_host, log):
    py = os.path.join(os.path.dirname(HERE), ".venv", "bin", "python")

    def once(*extra):
        r = subprocess.run([py, os.path.abspath(__file__), "--hosts", str(hosts), "--per-host", str(per_host)]
                           + list(extra), capture_output=True, text=True, timeout=1800, check=False)
        if r.returncode != 0:
            raise RuntimeError("planner benchmark failed: %s" % r.stderr[-3000:])
        return json.loads(r.stdout)
    rows = [once() for _n in range(3)]
    mem = once("--tracemalloc")
    from labkit import median
    out = {k: median([r[k] for r in rows]) for k in ("validate", "compile", "plan_one_host", "total", "maxrss_mb")}
    for k in ("containers", "hosts", "networks", "host_containers", "actions", "nft_commands", "fdb_entries"):
        out[k] = rows[0][k]
    out["tracemalloc_peak_mb"] = mem["tracemalloc_peak_mb"]
    out["rows"] = rows
    log("  %d containers on %d hosts (%d networks): validate %.2fs, compile all hosts %.2fs, plan one host %.3fs "
        "(%d actions); peak Python allocations %.0f MB, peak RSS %.0f MB"
        % (out["containers"], out["hosts"], out["networks"], out["validate"], out["compile"], out["plan_one_host"],
           out["actions"], out["tracemalloc_peak_mb"], out["maxrss_mb"]))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--per-host", type=int, default=50)
    p.add_argument("--tracemalloc", action="store_true")
    a = p.parse_args()
    json.dump(measure(a.hosts, a.per_host, a.tracemalloc), sys.stdout)


if __name__ == "__main__":
    main()
