"""Published ports at scale: 5,000 ports of 5 containers on one host.

Measured, inside a fresh lab host namespace (medians of the repetitions):
  - the nftables transaction alone: netstitch's table without ports -> with 5,000 published ports, computed by
    nftplan and applied by the nft driver as ONE atomic transaction (time of Nft.apply; commands and elements in it);
  - the same change of one port's container port: elements touched, time of the transaction;
  - through engine.apply (a fresh process, as the module runs): cold apply of the whole host with the 5,000 ports,
    the no-op re-apply (asserted: zero writes), the change of one port (asserted: one nft write).

    python bench/b_ports.py [--ports 5000] [--reps 3]       (root; normally through bench/run.sh)
"""

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import labkit  # noqa: E402

CONTAINERS = 5

WORKER = r'''
import json, sys, time
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import nft as nftplan
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.nft import Nft
spec, addresses = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
addr = {tuple(k.split("/")): v for k, v in addresses.items()}
nft = Nft()
def current():
    return nftplan.current_tables({f: nft.read(f) for f in ("inet", "bridge")})
def elements(cmds):
    return sum(len(c[v]["element"]["elem"]) for c in cmds for v in c if "element" in c[v])
out = {}
bare = dict(spec, publish=[])
cmds, _t = nftplan.diff_all(nftplan.desired_tables(bare, addr, [], True), current())
nft.apply(cmds)                                       # the table as netstitch has it without published ports
cmds, _t = nftplan.diff_all(nftplan.desired_tables(spec, addr, [], True), current())
t = time.perf_counter(); nft.apply(cmds); out["add_all"] = time.perf_counter() - t
out["add_all_commands"], out["add_all_elements"] = len(cmds), elements(cmds)
t = time.perf_counter(); cur = current(); out["read"] = time.perf_counter() - t
t = time.perf_counter()
cmds, _t = nftplan.diff_all(nftplan.desired_tables(spec, addr, [], True), cur)
out["noop_diff"] = time.perf_counter() - t
assert cmds == [], cmds
one = dict(spec, publish=[dict(p) for p in spec["publish"]])
one["publish"][0]["container_port"] = 8443
cmds, texts = nftplan.diff_all(nftplan.desired_tables(one, addr, [], True), cur)
t = time.perf_counter(); nft.apply(cmds); out["change_one"] = time.perf_counter() - t
out["change_one_commands"], out["change_one_elements"], out["change_one_texts"] = len(cmds), elements(cmds), texts
json.dump(out, sys.stdout)
'''


def topology(host, containers, ports):
    per = ports // len(containers)
    conts = {}
    for i, c in enumerate(containers):
        conts[c] = {"host": host, "interfaces": [{"network": "pub"}],
                    "publish": [{"host_port": 10000 + i * per + j, "container_port": 80 + j % 100}
                                for j in range(per)]}
    return {"version": 1, "hosts": {host: {}}, "networks": {"pub": {"subnet": "10.99.0.0/24"}},
            "containers": conts}


def one_rep(run, ports, log):
    host = run.host()
    containers = [run.name("p") for _n in range(CONTAINERS)]
    run.add_netns(containers)
    work = tempfile.mkdtemp(dir=run.workdir)
    state = os.path.join(work, "state")
    topo = topology(host, containers, ports)
    spec = labkit.host_spec(topo, host)
    spec_path = os.path.join(work, "spec.json")
    labkit.write_json(spec_path, spec)
    row = {}
    labkit.settle()
    cold = labkit.engine_apply(host, spec_path, state)
    row["engine_cold"] = cold["timing"]["total"]
    row["engine_cold_process"] = cold["process"]
    labkit.settle()
    noop = labkit.engine_apply(host, spec_path, state)
    assert not noop["changed"] and not any(noop["writes"].values()), noop
    row["engine_noop"] = noop["timing"]["total"]
    row["engine_noop_read"] = noop["timing"]["read"]
    changed = copy.deepcopy(spec)
    changed["publish"][0]["container_port"] = 8443
    labkit.write_json(spec_path, changed)
    labkit.settle()
    one = labkit.engine_apply(host, spec_path, state)
    assert one["writes"]["nft"] == 1 and one["writes"]["netlink"] == 0, one
    row["engine_change_one"] = one["timing"]["total"]
    # the transaction alone, on a second fresh host with the same containers' addresses
    addresses = {}
    gathered = subprocess.run(["nsenter", "--net=/run/netns/%s" % host, "--", labkit.PY, "-c",
                               "import json,sys; from ansible_collections.netstitch.fabric.plugins.module_utils."
                               "netstitch import engine; g = engine.gather(sys.argv[1], state_dir=sys.argv[2]); "
                               "print(json.dumps(g['endpoints']))", host, state],
                              capture_output=True, text=True, check=True)
    for key, ep in json.loads(gathered.stdout).items():
        addresses[key] = ep["address"].split("/")[0]
    addr_path = os.path.join(work, "addresses.json")
    labkit.write_json(addr_path, addresses)
    labkit.write_json(spec_path, spec)
    host2 = run.host()
    labkit.settle()
    r = subprocess.run(["nsenter", "--net=/run/netns/%s" % host2, "--", labkit.PY, "-c", WORKER, spec_path, addr_path],
                       capture_output=True, text=True, timeout=300, check=False)
    if r.returncode != 0:
        raise RuntimeError("ports worker failed: %s" % r.stderr[-2000:])
    row.update(json.loads(r.stdout))
    log("  ports=%d: transaction %.3f s (%d elements), change one %.4f s (%d elements); engine cold %.2f s, "
        "no-op %.2f s, change one %.2f s"
        % (ports, row["add_all"], row["add_all_elements"], row["change_one"], row["change_one_elements"],
           row["engine_cold"], row["engine_noop"], row["engine_change_one"]))
    run.del_netns([host, host2] + containers)
    return row


def run(run_, ports, reps, log):
    rows = [one_rep(run_, ports, log) for _n in range(reps)]
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    return {"ports": ports, "rows": rows, "median": {k: labkit.median([r[k] for r in rows]) for k in keys},
            "change_one_texts": rows[0]["change_one_texts"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--ports", type=int, default=5000)
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    r = labkit.Run(os.path.join(HERE, "results", "work"))
    try:
        print(json.dumps(run(r, a.ports, a.reps, print), indent=1))
    finally:
        r.cleanup()


if __name__ == "__main__":
    main()
