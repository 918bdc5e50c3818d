"""tinc's files: the settings that bound recovery in tinc.conf, which settings need a restart of tincd, and the
driver rewriting only the files whose content changes (tincd closes, on SIGHUP, the connection to every peer whose
host file is newer than its last reload)."""

import os
import subprocess
import time

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.tinc import Tinc
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds.tinc import daemon_options, render

KEY = "-----BEGIN RSA PUBLIC KEY-----\nK%s\n-----END RSA PUBLIC KEY-----\n"


def _render(peers):
    return render("h1", {"device": "nstc-ov"}, 6551, "192.0.2.1",
                  [{"host": h, "underlay": "192.0.2.%s" % h[1:], "pubkey": KEY % h} for h in peers], KEY % "h1")


def test_tinc_conf_bounds_recovery():
    opts = daemon_options(_render(["h2"])["tinc.conf"])
    assert opts["Broadcast"] == ["direct"] and opts["KeyExpire"] == ["30"]
    assert opts["PingInterval"] == ["10"] and opts["MaxTimeout"] == ["30"]
    assert "ConnectTo" not in opts and opts["Mode"] == ["switch"]


def test_only_settings_other_than_connectto_need_a_restart():
    one, two = _render(["h2"])["tinc.conf"], _render(["h2", "h3"])["tinc.conf"]
    assert one != two and daemon_options(one) == daemon_options(two)
    moved = render("h1", {"device": "nstc-ov"}, 6552, "192.0.2.1", [], None)["tinc.conf"]
    assert {k for k in daemon_options(moved) if daemon_options(moved)[k] != daemon_options(one)[k]} == {"Port"}


def test_write_keeps_unchanged_files_and_their_times(tmp_path):
    t = Tinc(str(tmp_path), "h1", supervisor="process")
    t.write("ov", _render(["h2"]))
    d = t.confdir("ov")
    paths = {rel: os.path.join(d, rel) for rel in ("tinc.conf", "hosts/h1", "hosts/h2")}
    old = 1000000000
    for p in paths.values():
        os.utime(p, (old, old))
    t.write("ov", _render(["h2", "h3"]))
    assert os.stat(paths["hosts/h1"]).st_mtime == old and os.stat(paths["hosts/h2"]).st_mtime == old
    assert os.stat(paths["tinc.conf"]).st_mtime > old and os.path.exists(os.path.join(d, "hosts", "h3"))
    with open(paths["tinc.conf"]) as f:
        assert "ConnectTo = h3" in f.read()
    t.write("ov", _render(["h3"]))
    assert sorted(os.listdir(os.path.join(d, "hosts"))) == ["h1", "h3"]


def test_a_restarted_tincd_starts_in_a_later_second_than_the_stop(tmp_path, monkeypatch):
    """tincd seeds its request nonces with the second it starts in; peers ignore requests they have seen."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import tinc as driver
    calls = []

    def run(args, **_kw):
        calls.append((time.time(), args))
        return subprocess.CompletedProcess(args, 0, "", "")
    monkeypatch.setattr(driver.subprocess, "run", run)
    t = Tinc(str(tmp_path), "h1", supervisor="process")
    t.stopped["ov"] = stopped = time.time()
    t.start("ov", "nstc-ov", exists=lambda dev: True)
    (when, args), = calls
    assert int(when) > int(stopped) and "--debug=%d" % driver.DEBUG_LEVEL in args
    t.start("ov", "nstc-ov", exists=lambda dev: True)      # no stop before it: no wait
    assert calls[1][0] - calls[0][0] < 0.5


def test_a_tincd_that_ignores_sigterm_is_killed(tmp_path):
    """tinc 1.0 can deadlock in its own signal handler; stop() then kills it, since it holds the TAP device."""
    import signal
    import sys
    t = Tinc(str(tmp_path), "h1", supervisor="process")
    d = t.confdir("ov")
    os.makedirs(d)
    fake = tmp_path / "tincd"                   # a process whose command line reads like tincd's for this network
    fake.symlink_to(sys.executable)
    p = subprocess.Popen([str(fake), "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "print('ready', flush=True); time.sleep(60)", d], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        with open(os.path.join(d, "tinc.pid"), "w") as f:
            f.write("%d\n" % p.pid)
        start = time.monotonic()
        t.stop("ov")
        assert p.wait(timeout=5) == -signal.SIGKILL
        assert time.monotonic() - start < 8
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
