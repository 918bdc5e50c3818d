"""Run one engine.apply in the network namespace this process was started in (bench/ starts it with
``nsenter --net=/run/netns/HOST``), the way the apply module does on a managed host: a compiled host spec in, the
engine's result out. Prints one JSON document: the engine's result (writes, timing) plus the wall time and the user/system CPU time of
the engine.apply call as seen from here.

    nsworker.py SPEC.json STATE_DIR [--check] [--profile OUT.txt]
"""

import argparse
import json
import resource
import sys
import time

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine


def main():
    p = argparse.ArgumentParser()
    p.add_argument("spec")
    p.add_argument("state_dir")
    p.add_argument("--check", action="store_true")
    p.add_argument("--profile", help="write a cProfile report (cumulative, top 40) to this file")
    a = p.parse_args()
    with open(a.spec) as f:
        spec = json.load(f)
    prof = None
    if a.profile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    res = engine.apply(spec, check_mode=a.check, state_dir=a.state_dir)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    if prof is not None:
        import io
        import pstats
        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(40)
        s.write("\n--- by own time ---\n")
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(30)
        with open(a.profile, "w") as f:
            f.write(s.getvalue())
    json.dump({"changed": res["changed"], "actions": len(res["actions"]), "writes": res["writes"],
               "timing": res["timing"], "wall": round(wall, 4), "warnings": res["warnings"],
               # CPU time of this process during engine.apply: user = Python (netstitch's own work),
               # system = the kernel working for it (netlink requests, namespace entries, file I/O)
               "cpu_user": round(r1.ru_utime - r0.ru_utime, 4), "cpu_sys": round(r1.ru_stime - r0.ru_stime, 4)},
              sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
