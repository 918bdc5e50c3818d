"""Coexistence with Docker's firewall. Where Docker runs, its iptables FORWARD policy is DROP and every base chain
must accept a packet for it to pass, so netstitch's own table cannot open forwarding alone. Docker documents one
place for users' rules: the DOCKER-USER chain. netstitch keeps there only accept rules for its own bridges, each
marked with a comment "netstitch ...", and never touches another rule, chain or table of Docker's. The real policy
(isolation, closed networks) stays in netstitch's own table, which every packet also passes.

The rules go through the iptables command (Docker's own tool and backend), so Docker keeps reading its tables.
"""

import shlex
import shutil
import subprocess

from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.errors import ApplyError

CHAIN = "DOCKER-USER"
MARK = "netstitch"


def _iptables():
    return shutil.which("iptables")


def read():
    """netstitch's rules in DOCKER-USER as argument tuples, or None when there is no DOCKER-USER chain here."""
    exe = _iptables()
    if not exe:
        return None
    r = subprocess.run([exe, "-w", "5", "-S", CHAIN], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        return None
    out = []
    for line in r.stdout.splitlines():
        args = shlex.split(line)
        if args[:2] == ["-A", CHAIN] and "--comment" in args:
            comment = args[args.index("--comment") + 1]
            if comment.startswith(MARK + " "):
                out.append(tuple(args[2:]))
    return sorted(out)


def desired(bridges):
    """Accept rules for netstitch's bridges, in the form `iptables -S` prints them."""
    out = []
    for br in sorted(bridges):
        out.append(("-i", br, "-m", "comment", "--comment", "%s %s out" % (MARK, br), "-j", "ACCEPT"))
        out.append(("-o", br, "-m", "comment", "--comment", "%s %s in" % (MARK, br), "-j", "ACCEPT"))
    return sorted(out)


def change(verb, rule):
    """verb: "-I" (insert at the top, before Docker's RETURN) or "-D"."""
    args = [_iptables(), "-w", "5", verb, CHAIN] + (["1"] if verb == "-I" else []) + list(rule)
    r = subprocess.run(args, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise ApplyError("iptables %s %s failed: %s" % (verb, " ".join(rule), r.stderr.strip()))
