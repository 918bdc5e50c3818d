"""The same cold apply and no-op re-apply through ansible-playbook: the fabric role (validate on the controller,
one netstitch.fabric.apply call) against one lab host, reached with the local connection and an interpreter
wrapper that enters its namespace (as ../shared/LAB.md describes). The figure is the wall time of the whole
ansible-playbook process; the module's own timing (engine.apply inside it) comes from the json stdout callback."""

import json
import os
import time

import labkit
from labkit import TOP, settle

PLAYBOOK = os.path.join(TOP, "bench", "ansible", "apply.yml")


def _env():
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": os.path.join(TOP, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_LOCAL_TEMP": os.path.join(TOP, "bench", "results", "work", "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": os.path.join(TOP, ".venv", "bin") + os.pathsep + env.get("PATH", ""),
    })
    return env


def playbook(inventory, topo_file, state_dir):
    import subprocess
    args = [os.path.join(TOP, ".venv", "bin", "ansible-playbook"), "-i", inventory, PLAYBOOK,
            "-e", "netstitch_topology_file=%s" % topo_file, "-e", "netstitch_state_dir=%s" % state_dir,
            "-e", "netstitch_boot=false"]     # the lab host is a namespace of this machine: no boot unit
    t0 = time.monotonic()
    r = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=1800, check=False)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError("ansible-playbook failed (rc %d): %s %s" % (r.returncode, r.stdout[-3000:], r.stderr[-2000:]))
    at = r.stdout.find('"netstitch_bench"')
    if at < 0:
        raise RuntimeError("ansible-playbook did not report the module's timing: %s" % r.stdout[-3000:])
    doc, _rest = json.JSONDecoder().raw_decode(r.stdout[r.stdout.rindex("{", 0, at):])
    applied = doc["msg"]["netstitch_bench"] if "msg" in doc else doc["netstitch_bench"]
    return {"wall": round(wall, 4), "changed": applied["changed"], "module": applied["timing"]["total"],
            "writes": applied["writes"]}


def run_size(run, n, reps, log):
    import yaml
    wd = os.path.join(run.workdir, "ansible-%d" % n)
    os.makedirs(os.path.join(wd, "bin"), exist_ok=True)
    conts = ["%sa%dc%d" % (run.prefix, n, i) for i in range(n)]
    run.add_netns(conts)
    topo_file = os.path.join(wd, "topology.yml")
    with open(topo_file, "w") as f:
        yaml.safe_dump(labkit.endpoints_topology("node", conts), f)
    empty_path = labkit.write_json(os.path.join(wd, "empty.json"),
                                   labkit.host_spec(labkit.empty_topology("node"), "node"))
    rows = []
    try:
        for r in range(reps):
            h = run.host()
            wrapper = os.path.join(wd, "bin", "python-%d" % r)
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\nexec nsenter --net=/run/netns/%s -- %s \"$@\"\n" % (h, labkit.PY))
            os.chmod(wrapper, 0o755)
            inv = os.path.join(wd, "inventory-%d.ini" % r)
            with open(inv, "w") as f:
                f.write("node ansible_connection=local ansible_python_interpreter=%s\n" % wrapper)
            sd = os.path.join(wd, "state-%d" % r)
            settle()
            cold = playbook(inv, topo_file, sd)
            settle()
            noop = playbook(inv, topo_file, sd)
            if noop["changed"] or any(noop["writes"].values()):
                raise AssertionError("ansible no-op of %d endpoints changed something: %s" % (n, noop))
            labkit.engine_apply(h, empty_path, sd)          # clean up (not timed)
            run.del_netns([h])
            row = {"cold": cold["wall"], "cold_module": cold["module"], "noop": noop["wall"],
                   "noop_module": noop["module"], "cold_writes": cold["writes"], "noop_writes": noop["writes"]}
            log("  N=%d rep %d: ansible-playbook cold %.2fs (module %.3fs), no-op %.2fs (module %.3fs)"
                % (n, r, row["cold"], row["cold_module"], row["noop"], row["noop_module"]))
            rows.append(row)
    finally:
        run.del_netns(conts)
    med = labkit.median
    keys = ("cold", "cold_module", "noop", "noop_module")
    return {"rows": rows, "summary": {k: med([r[k] for r in rows]) for k in keys}}
