"""netstitch benchmarks (run as root through bench/run.sh). Writes one JSON file of results; bench/report.py turns
it into docs/benchmarks.md and its plots.

    bench.py [--smoke] [--sections apply,ansible,docker,planner,dataplane] [--sizes 10,100,1000] [--reps 3]
             [--out FILE]

Every namespace and Docker object made here carries the run's unique prefix (bn + 6 hex digits) and is removed in a
finally block; nothing in the machine's own namespace is changed.
"""

import argparse
import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import labkit  # noqa: E402

SECTIONS = ("apply", "ansible", "docker", "planner", "ports", "dataplane")


def _commit():
    """The commit of the netstitch code this run measures (the tree the engine is imported from)."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
    r = labkit.run("git", "-C", os.path.dirname(os.path.realpath(engine.__file__)), "rev-parse", "--short", "HEAD",
                   check=False)
    dirty = labkit.run("git", "-C", os.path.dirname(os.path.realpath(engine.__file__)), "status", "--porcelain",
                       "--", "plugins", check=False).stdout.strip()
    return (r.stdout.strip() or "?") + ("+local changes" if dirty else "")


def log(msg):
    print(msg, flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--smoke", action="store_true", help="small sizes, one repetition, no Docker/Ansible/iperf3; "
                                                        "asserts the properties (under a minute)")
    p.add_argument("--sections", default=",".join(SECTIONS))
    p.add_argument("--sizes", default=None, help="endpoint counts for the apply benchmark (default 10,30,100,300,1000)")
    p.add_argument("--reps", type=int, default=None, help="repetitions per size (default 3; medians are reported)")
    p.add_argument("--docker-sizes", default="10,100")
    p.add_argument("--ansible-sizes", default="10,100,1000")
    p.add_argument("--ansible-reps", type=int, default=3)
    p.add_argument("--planner-hosts", type=int, default=1000)
    p.add_argument("--planner-per-host", type=int, default=50)
    p.add_argument("--ports", type=int, default=5000, help="published ports for the ports section")
    p.add_argument("--iperf-seconds", type=int, default=4)
    p.add_argument("--iperf-reps", type=int, default=5)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        log("bench: needs root (it creates network namespaces)")
        return 2
    if a.smoke:
        sizes = [int(x) for x in (a.sizes or "10,100").split(",")]
        reps = a.reps or 1
        sections = [s for s in a.sections.split(",") if s in ("apply", "planner")]
    else:
        sizes = [int(x) for x in (a.sizes or "10,30,100,300,1000").split(",")]
        reps = a.reps or 3
        sections = a.sections.split(",")
    for s in sections:
        if s not in SECTIONS:
            p.error("unknown section %r (known: %s)" % (s, ", ".join(SECTIONS)))
    out_path = a.out or os.path.join(HERE, "results", "smoke.json" if a.smoke else "results.json")
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    run = labkit.Run(os.path.join(HERE, "results", "work"))
    results = {"commit": _commit(), "smoke": a.smoke, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": labkit.machine(),
               "command": "bash bench/run.sh" + (" --smoke" if a.smoke else ""), "prefix": run.prefix}
    t0 = time.monotonic()
    failed = False

    def section(name, fn):
        """Run one section; a failure is recorded (and fails the run) without stopping the other sections."""
        nonlocal failed
        try:
            results[name] = fn()
        except Exception:
            failed = True
            results.setdefault("errors", {})[name] = traceback.format_exc()
            log("bench: section %s FAILED:\n%s" % (name, results["errors"][name]))

    def apply_section():
        import b_apply
        log("== apply: cold / no-op / prune of N endpoints on one host, against iproute2 (reps %d)" % reps)
        out = {}
        for n in sizes:
            rows = b_apply.run_size(run, n, reps, log, ip_prune_reps=1 if n >= 300 else reps)
            out[str(n)] = {"rows": rows, "summary": b_apply.summary(rows)}
        return out

    def ansible_section():
        import b_ansible
        log("== ansible-playbook: the fabric role against one lab host (reps %d)" % a.ansible_reps)
        sizes = [int(x) for x in a.ansible_sizes.split(",")]
        return {str(n): b_ansible.run_size(run, n, a.ansible_reps, log) for n in sizes}

    def docker_section():
        import b_docker
        log("== docker network connect of N containers")
        return b_docker.run(run, [int(x) for x in a.docker_sizes.split(",")], log)

    def planner_section():
        import b_planner
        hosts, per = (20, 50) if a.smoke else (a.planner_hosts, a.planner_per_host)
        log("== planner alone: %d hosts x %d containers, validated, compiled, planned for one host" % (hosts, per))
        return b_planner.run(hosts, per, log)

    def ports_section():
        import b_ports
        log("== published ports: %d in one transaction, then one changed (reps %d)" % (a.ports, reps))
        return b_ports.run(run, a.ports, reps, log)

    def dataplane_section():
        import b_dataplane
        log("== data plane: iperf3 container to container")
        return b_dataplane.run(run, a.iperf_seconds, a.iperf_reps, log)

    fns = {"apply": apply_section, "ansible": ansible_section, "docker": docker_section, "planner": planner_section,
           "ports": ports_section,
           "dataplane": dataplane_section}
    try:
        for name in SECTIONS:
            if name in sections:
                section(name, fns[name])
    finally:
        run.cleanup()
        left = run.mine()
        if left:
            log("bench: namespaces left behind: %s" % left)
            failed = True
    results["seconds"] = round(time.monotonic() - t0, 1)
    results["machine"]["loadavg_end"] = labkit.loadavg()
    with open(out_path, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    log("bench: results in %s (%.0f s)%s" % (out_path, results["seconds"], " -- FAILED" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
