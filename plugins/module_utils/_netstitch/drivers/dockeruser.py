"""DOCKER-USER driver: reads and changes netstitch's marked rules in Docker's DOCKER-USER chain (kinds.docker_user)
through the iptables command (Docker's own tool and backend), so Docker keeps reading its tables."""

import shlex
import shutil
import subprocess

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import faults
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import DOCKER_USER_CHAIN as CHAIN
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import DOCKER_USER_MARK as MARK


def _iptables():
    return shutil.which("iptables")


class DockerUser(object):
    def __init__(self):
        self.writes = 0

    def read(self):
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

    def execute(self, action):
        """docker_user_add inserts at the top (before Docker's RETURN), docker_user_del deletes."""
        verb = {"docker_user_add": "-I", "docker_user_del": "-D"}[action["op"]]
        rule = action["rule"]
        self.writes += 1
        faults.point("iptables %s %s" % (verb, CHAIN))
        args = [_iptables(), "-w", "5", verb, CHAIN] + (["1"] if verb == "-I" else []) + list(rule)
        r = subprocess.run(args, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise ApplyError("iptables %s %s failed: %s" % (verb, " ".join(rule), r.stderr.strip()))
