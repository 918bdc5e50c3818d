"""Run netstitch's engine in the network namespace this process was started in (the tests start it with
``nsenter --net=/run/netns/HOST``) and print one JSON document on stdout; with --serve, answer one request per line
until stdin closes (each request is a fresh engine run, as a module call would be).

Request (JSON on stdin):
    {"op": "apply" | "teardown" | "gather", "topology": {...}, "host": "h1", "state_dir": "/tmp/...",
     "check": false, "lock_timeout": 300, "fail_at": null, "vanish": null, "group": null}
    (fail_at, vanish, group: failures injected through the engine's seams, see TestHost; rollback: false to keep a
     failed apply's changes; fault: a NETSTITCH_FAULT value for the engine's own fault seam (see faults.py);
     fork: run the apply in a forked child and report how it ended, {"signal": N} when it was killed)
Reply:
    {"ok": true, "result": {...}, "lock": {"requested": t, "acquired": t, "released": t}}
    (wall-clock times of the host lock; "locking" is written to stderr the moment the lock is requested)
    {"ok": false, "error": "message", "type": "ApplyError"}
"""

import json
import os
import subprocess
import sys
import time
import traceback

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as comp
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine, faults
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError, NetstitchError

LOCK_TIMES = {}


def _record_lock_times():
    """Wrap HostLock so the reply says when this process held the host lock (to prove two applies serialised)."""
    enter, exit_ = engine.HostLock.__enter__, engine.HostLock.__exit__

    def __enter__(self):
        LOCK_TIMES["requested"] = time.time()
        sys.stderr.write("locking\n")
        sys.stderr.flush()
        r = enter(self)
        LOCK_TIMES["acquired"] = time.time()
        return r

    def __exit__(self, *exc):
        LOCK_TIMES["released"] = time.time()
        return exit_(self, *exc)

    engine.HostLock.__enter__, engine.HostLock.__exit__ = __enter__, __exit__


class TestHost(engine.Host):
    """The engine's host with failures injected through its seams (engine.apply's ``host`` and the netlink driver's
    ``next_group``), for the failure tests: ``fail_at``: fail at the first action of that op, as a kernel refusal
    would; ``vanish``: delete that link just before the first action on it (it disappears between the engine's read
    and its write, as a veth does when its container's namespace is destroyed); ``group``: the link group of a
    batch removal (to make it clash with a foreign link)."""

    def __init__(self, fail_at=None, vanish=None, group=None):
        super(TestHost, self).__init__()
        self.fail_at, self.vanish = fail_at, vanish
        if group:
            self.netlink.next_group = lambda: group

    def execute(self, action):
        if action["op"] == self.fail_at:
            raise ApplyError("%s: injected failure" % action["text"])
        names = [action.get("name")] + [x.get("name") for x in action.get("actions", [])]
        if self.vanish and self.vanish in names:
            subprocess.run(["ip", "link", "del", self.vanish], check=True)
            self.vanish = None
        return super(TestHost, self).execute(action)


def _forked(spec, req, kw):
    """The apply in a child of this process (cheap: everything is imported already) with the engine's fault seam armed
    from the environment, as ``NETSTITCH_FAULT=kill:N netstitch apply`` would; reply how the child ended."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            if req.get("fault"):
                os.environ[faults.ENV] = req["fault"]
            engine.apply(spec, state_dir=req["state_dir"], probe_peers=False, **kw)
            code = 0
        except NetstitchError:
            code = 1
        except BaseException:   # a crash: the test sees exit code 3
            traceback.print_exc()
        finally:
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return {"ok": True, "result": {"signal": os.WTERMSIG(status)}}
    return {"ok": True, "result": {"exit": os.WEXITSTATUS(status)}}


def handle(req):
    LOCK_TIMES.clear()
    host = None
    try:
        if req["op"] == "apply":
            spec = comp.host_specs(validate.load(req["topology"]))[req["host"]]
            kw = {}
            if req.get("lock_timeout") is not None:
                kw["lock_timeout"] = req["lock_timeout"]
            if req.get("fail_at") or req.get("vanish") or req.get("group"):
                host = kw["host"] = TestHost(req.get("fail_at"), req.get("vanish"), req.get("group"))
            if req.get("rollback") is not None:
                kw["rollback"] = req["rollback"]
            if req.get("fork"):
                return _forked(spec, req, kw)
            if req.get("fault_action") is not None:
                os.environ[faults.ENV] = "fail-action:%d" % req["fault_action"]
            if req.get("fault_both") is not None:
                os.environ[faults.ENV] = "fail-both:%d" % req["fault_both"]
            res = engine.apply(spec, check_mode=bool(req.get("check")), state_dir=req["state_dir"],
                               probe_peers=req.get("probe_peers", True), **kw)
        elif req["op"] == "teardown":
            res = engine.teardown(req["host"], check_mode=bool(req.get("check")), state_dir=req["state_dir"])
        elif req["op"] == "gather":
            res = engine.gather(req["host"], state_dir=req["state_dir"])
        else:
            raise ValueError("unknown op %r" % req["op"])
        return {"ok": True, "result": res, "lock": dict(LOCK_TIMES)}
    except NetstitchError as e:
        return {"ok": False, "error": str(e), "type": type(e).__name__}
    except Exception as e:  # a crash is a failure of its own kind: keep the traceback for the test report
        return {"ok": False, "error": "%s: %s" % (type(e).__name__, e), "type": "crash",
                "traceback": traceback.format_exc()}
    finally:
        os.environ.pop(faults.ENV, None)
        if host is not None:
            host.close()


def main(argv):
    _record_lock_times()
    if argv[1:] == ["--serve"]:
        # one request per line, one reply per line, until stdin closes (saves the interpreter start per call)
        for line in sys.stdin:
            sys.stdout.write(json.dumps(handle(json.loads(line)), sort_keys=True, default=str) + "\n")
            sys.stdout.flush()
        return 0
    json.dump(handle(json.load(sys.stdin)), sys.stdout, indent=1, sort_keys=True, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
