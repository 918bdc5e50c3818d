"""Scale of the controller side: a topology file of N containers (N/50 hosts x 50; half of each host's containers on
a VXLAN overlay of 20 hosts, half on a host-local network, as in b_planner) read, validated and compiled for every
host by the command line, `bin/netstitch validate FILE` (which compiles too), in a fresh process each time.

Measured per N: the wall time of the whole command and its CPU time (user + system), and its peak resident memory
(from wait4's rusage of that very process); then once more in-process, the CPU time of each phase (YAML read,
validation, compile). The growth against N is the exponent k in time ~ N^k between the smallest and largest size.
The goal (issue 12): 100,000 containers in under 10 s and under 1 GB. Wall time depends on what else the machine
runs (the load average is recorded at each run); CPU time much less.

    python bench/b_scale.py [--sizes 10000,30000,100000] [--reps 3] [--out FILE]
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
PY = os.path.join(TOP, ".venv", "bin", "python")
CLI = os.path.join(TOP, "bin", "netstitch")
PER_HOST = 50
# as a user runs it: Python keeps compiled bytecode (PYTHONDONTWRITEBYTECODE, set by some automation, would make every
# start compile netstitch's sources again); a first, unmeasured run per size writes it
ENV = dict((k, v) for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE")
# the interpreter bin/netstitch runs: the checkout's venv (as an installed console script runs its own Python
# directly; a version manager's python3 shim on PATH would add its own start-up, 0.1-0.3 s here)
ENV.setdefault("NETSTITCH_PYTHON", os.path.join(TOP, ".venv", "bin", "python"))


def write_topology(path, n):
    import yaml
    sys.path.insert(0, HERE)
    import b_planner
    topo = b_planner.topology(max(1, n // PER_HOST), PER_HOST)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    with open(path, "w") as f:
        yaml.dump(topo, f, Dumper=dumper, default_flow_style=None, sort_keys=False)
    return os.path.getsize(path)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run_cli(path):
    """(wall s, cpu s, peak RSS MB, stdout) of `bin/netstitch validate path` in a fresh process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen([CLI, "validate", path], stdout=out, stderr=err, env=ENV)
        pid, status, ru = os.wait4(p.pid, 0)      # this very process's rusage (Popen never reaps it first)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        said, errors = out.read().decode().strip(), err.read().decode()
    if p.returncode != 0:
        raise RuntimeError("netstitch validate failed (%s): %s" % (p.returncode, errors[-2000:]))
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0, said


def phases(path):
    """CPU seconds of each phase in one process (as the command line runs them: GC off)."""
    code = r"""
import gc, json, sys, time
gc.disable()
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as comp, validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.safeyaml import load_path
c = time.process_time
t0 = c(); d = load_path(sys.argv[1]); t1 = c(); m = validate.load(d); t2 = c(); s = comp.host_specs(m); t3 = c()
print(json.dumps({"read": round(t1 - t0, 3), "validate": round(t2 - t1, 3), "compile": round(t3 - t2, 3)}))
"""
    r = subprocess.run([PY, "-c", code, path], capture_output=True, text=True, timeout=1800, check=True, env=ENV)
    return json.loads(r.stdout)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2.0


def run(sizes, reps, log):
    out = {"sizes": {}, "goal": {"containers": 100000, "seconds": 10, "rss_mb": 1024}}
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            path = os.path.join(d, "t%d.yml" % n)
            size = write_topology(path, n)
            rows = []
            if n == sizes[0]:
                run_cli(path)       # warm-up: bytecode written, interpreter and libraries in the page cache
            for _rep in range(reps):
                la = loadavg()
                wall, cpu, rss, said = run_cli(path)
                rows.append({"wall": round(wall, 3), "cpu": round(cpu, 3), "rss_mb": round(rss, 1), "loadavg": la})
            ph = phases(path)
            row = {"containers": n, "hosts": max(1, n // PER_HOST), "file_mb": round(size / 2.0 ** 20, 2),
                   "wall": median([r["wall"] for r in rows]), "cpu": median([r["cpu"] for r in rows]),
                   "rss_mb": max(r["rss_mb"] for r in rows), "phases_cpu": ph, "rows": rows, "said": said}
            out["sizes"][str(n)] = row
            log("  %7d containers (%d hosts, %.1f MB of YAML): wall %.2f s, CPU %.2f s (read %.2f, validate %.2f, "
                "compile %.2f), peak RSS %.0f MB; load average %.1f-%.1f"
                % (n, row["hosts"], row["file_mb"], row["wall"], row["cpu"], ph["read"], ph["validate"],
                   ph["compile"], row["rss_mb"], min(r["loadavg"] for r in rows), max(r["loadavg"] for r in rows)))
    if len(sizes) >= 2:
        a, b = out["sizes"][str(sizes[0])], out["sizes"][str(sizes[-1])]
        ratio = math.log(float(sizes[-1]) / sizes[0])
        out["growth"] = {"cpu_exponent": round(math.log(b["cpu"] / a["cpu"]) / ratio, 2),
                         "wall_exponent": round(math.log(b["wall"] / a["wall"]) / ratio, 2),
                         "rss_exponent": round(math.log(b["rss_mb"] / a["rss_mb"]) / ratio, 2)}
        log("  growth %d -> %d: CPU ~ N^%.2f, wall ~ N^%.2f, peak RSS ~ N^%.2f"
            % (sizes[0], sizes[-1], out["growth"]["cpu_exponent"], out["growth"]["wall_exponent"],
               out["growth"]["rss_exponent"]))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("--sizes", default="10000,30000,100000")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    res = run([int(x) for x in a.sizes.split(",")], a.reps, lambda m: print(m, file=sys.stderr, flush=True))
    text = json.dumps(res, indent=1, sort_keys=True)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
