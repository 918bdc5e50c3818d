"""No-op latency as the user sees it: `bin/netstitch apply TOPOLOGY --host H` of an unchanged host of N container
endpoints (default 1,000), the wall clock of the whole command (interpreter start, imports, the host's spec, reading
the kernel, planning, printing), beside the engine's own figure (timing.total, what b_apply reports).

Per repetition, in a fresh process inside the host namespace: once with the spec cache warm (the usual case: the
topology file has not changed since the last apply) and once with it removed first (the spec compiled from the whole
topology again). Every run is asserted to be a no-op (changed false, zero writes). Wall and CPU time (user + system)
come from wait4's rusage of that very process; the load average at each run is kept.

    python bench/b_cli_noop.py [--endpoints 1000] [--reps 5] [--out FILE]      (root: it creates namespaces)
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import labkit  # noqa: E402

TOP = os.path.dirname(HERE)
CLI = os.path.join(TOP, "bin", "netstitch")
# as a user runs it: Python keeps compiled bytecode (some shells of automation set PYTHONDONTWRITEBYTECODE, which
# makes every start compile netstitch's sources again, about 0.15 s); the cold apply before the measured runs writes it
ENV = dict((k, v) for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE")
# the interpreter bin/netstitch runs: the checkout's venv (as an installed console script runs its own Python
# directly; a version manager's python3 shim on PATH would add its own start-up, 0.1-0.3 s here)
ENV.setdefault("NETSTITCH_PYTHON", os.path.join(TOP, ".venv", "bin", "python"))


def _cli(hostns, *args):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        la = labkit.loadavg()
        t0 = time.monotonic()
        p = subprocess.Popen(["nsenter", "--net=/run/netns/%s" % hostns, "--", CLI] + list(args), stdout=out,
                             stderr=err, env=ENV)
        pid, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    if p.returncode != 0:
        raise RuntimeError("netstitch %s failed (%s): %s" % (args[0], p.returncode, errors[-3000:]))
    res = json.loads(text)
    return {"wall": round(wall, 4), "cpu": round(ru.ru_utime + ru.ru_stime, 4), "loadavg": la,
            "engine_total": res["timing"]["total"], "engine_read": res["timing"]["read"], "result": res}


def _noop(row, n):
    res = row.pop("result")
    if res["changed"] or res["actions"] or any(res["writes"].values()):
        raise AssertionError("the re-apply of %d endpoints was not a no-op: changed=%s, actions %s, writes %s"
                             % (n, res["changed"], res["actions"][:5], res["writes"]))
    return row


def run(workdir, n, reps, log):
    import yaml
    run_ = labkit.Run(workdir)
    try:
        conts = [run_.name("c") for _i in range(n)]
        run_.add_netns(conts)
        hostns = run_.host()
        topo = os.path.join(workdir, "topology-%d.yml" % n)
        with open(topo, "w") as f:
            yaml.safe_dump(labkit.endpoints_topology("node", conts), f, default_flow_style=None)
        empty = os.path.join(workdir, "empty.yml")
        with open(empty, "w") as f:
            yaml.safe_dump(labkit.empty_topology("node"), f)
        sd = os.path.join(workdir, "state-%s" % run_.prefix)
        args = ["apply", topo, "--host", "node", "--state-dir", sd, "--json"]
        cold = _cli(hostns, *args)
        if not cold["result"]["changed"]:
            raise AssertionError("the cold apply changed nothing")
        cold.pop("result")
        warm, fresh = [], []
        for _rep in range(reps):
            labkit.settle(max_wait=3)
            warm.append(_noop(_cli(hostns, *args), n))
            shutil.rmtree(os.path.join(sd, "cache"), ignore_errors=True)
            labkit.settle(max_wait=3)
            fresh.append(_noop(_cli(hostns, *args), n))
        _cli(hostns, "apply", empty, "--host", "node", "--state-dir", sd, "--json")      # prune (not timed)
    finally:
        run_.cleanup()

    def med(rows, k):
        return labkit.median([r[k] for r in rows])
    out = {"endpoints": n, "cold": cold, "cached": warm, "uncached": fresh,
           "summary": {k: {m: med(rows, m) for m in ("wall", "cpu", "engine_total", "engine_read")}
                       for k, rows in (("cached", warm), ("uncached", fresh))},
           "loadavg": [min(r["loadavg"] for r in warm + fresh), max(r["loadavg"] for r in warm + fresh)]}
    s = out["summary"]
    log("  no-op `netstitch apply` of %d endpoints, whole command: %.2f s wall / %.2f s CPU with the spec cached, "
        "%.2f s / %.2f s compiling the spec; the engine's own figure %.2f s (kernel read %.2f s); load average "
        "%.1f-%.1f" % (n, s["cached"]["wall"], s["cached"]["cpu"], s["uncached"]["wall"], s["uncached"]["cpu"],
                       s["cached"]["engine_total"], s["cached"]["engine_read"], out["loadavg"][0], out["loadavg"][1]))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("--endpoints", type=int, default=1000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as wd:
        res = run(wd, a.endpoints, a.reps, lambda m: print(m, file=sys.stderr, flush=True))
    text = json.dumps(res, indent=1, sort_keys=True)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
