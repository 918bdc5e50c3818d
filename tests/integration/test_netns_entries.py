"""Namespace files netstitch makes are seen by the whole system, and a dead /run/netns entry never makes a traceback.

- ``ip netns exec HOST bin/netstitch apply ...`` runs in a private mount namespace (a slave copy of the system's):
  namespaces made there by a plain bind mount would be dead files once it ends. netstitch makes them in PID 1's mount
  namespace when it can enter it, and otherwise refuses before changing anything, saying what to run instead.
- A dead entry (a file whose namespace mount is gone, as left by such a run or a crash) is a half-made namespace
  (kinds/netns.py, one mechanism with the crash repair): netstitch's is cleared and made again when wanted, cleared
  when not; someone else's under a name the topology wants is a conflict naming `ip netns del`. Never a traceback
  (the issue: setns() said EINVAL).
"""

import json
import os
import subprocess

import yaml

from nskit import PY, assert_noop, base_topology, endpoints, netns_list, ping

# the checkout's command line with the venv's Python (it has the libnftables binding)
CLI = [PY, "-m", "ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.cli"]


def pid1_mount_ns_enterable():
    try:
        os.close(os.open("/proc/1/ns/mnt", os.O_RDONLY))
        return True
    except OSError:
        return False


def usable(path):
    """The same test as ``ip netns list`` (a live entry is a namespace file: nsfs's device)."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


def one_container(env):
    topo = base_topology(env)
    topo["containers"] = {"web": topo["containers"]["web"], "web2": topo["containers"]["web2"]}
    return topo


def cli(env, topo, *prefix):
    path = os.path.join(os.path.dirname(env.state_dir), "topology.yml")
    with open(path, "w") as f:
        yaml.safe_dump(topo, f)
    cmd = list(prefix) + CLI + ["apply", path, "--host", env.HOST, "--state-dir", env.state_dir, "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    return r


def make_dead_entry(name):
    """What a run in a private mount namespace leaves: the file in /run/netns without its mount."""
    path = "/run/netns/" + name
    if os.path.exists(path):
        subprocess.run(["umount", path], check=True)
    else:
        open(path, "w").close()
    assert os.path.exists(path) and not usable(path)


def test_apply_under_ip_netns_exec(env):
    topo = one_container(env)
    r = cli(env, topo, "ip", "netns", "exec", env.hostns)
    web, web2 = env.ns("web"), env.ns("web2")
    if pid1_mount_ns_enterable():
        # made in PID 1's mount namespace: alive after the command ended, seen by ip netns, reachable
        assert r.returncode == 0, r.stderr
        assert usable("/run/netns/" + web) and usable("/run/netns/" + web2)
        listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
        assert "invalid" not in listing, listing
        assert ping(web, "10.77.1.1")
        assert_noop(json.loads(cli(env, topo, "nsenter", "--net=/run/netns/" + env.hostns).stdout))
    else:
        # refused before anything changed, naming the way that works
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "ip netns exec" in r.stderr and "nsenter --net=" in r.stderr, r.stderr
        assert web not in netns_list() and web2 not in netns_list()
        assert sorted(env.links()) == ["eth0", "lo"], sorted(env.links())
        # the way it names works
        r = cli(env, topo, "nsenter", "--net=/run/netns/" + env.hostns)
        assert r.returncode == 0, r.stderr
        assert usable("/run/netns/" + web) and ping(web, "10.77.1.1")


def test_a_dead_entry_netstitch_did_not_make_is_a_conflict_not_a_traceback(env):
    topo = one_container(env)
    web = env.ns("web")
    subprocess.run(["ip", "netns", "add", web], check=True)
    make_dead_entry(web)                           # someone's entry whose mount went away, under a wanted name
    err = cli(env, topo, "nsenter", "--net=/run/netns/" + env.hostns)
    assert err.returncode == 1, (err.stdout, err.stderr)
    assert "half-made" in err.stderr and "ip netns del %s" % web in err.stderr, err.stderr
    assert os.path.lexists("/run/netns/" + web)    # not netstitch's: left alone
    subprocess.run(["ip", "netns", "del", web], check=True)     # what the message says to do
    res = env.apply(topo)
    assert usable("/run/netns/" + web), res["actions"]
    assert ping(web, "10.77.1.1") and ping(web, addr_of(res, "web2/eth0"))
    assert_noop(env.apply(topo))


def test_an_owned_namespace_whose_mount_went_away_is_repaired_without_a_traceback(env):
    topo = one_container(env)
    res = env.apply(topo)
    web2 = addr_of(res, "web2/eth0")
    make_dead_entry(env.ns("web"))                 # its mount is gone (the issue: setns() said EINVAL here)
    info = env.gather()                            # reading does not die either
    assert info["in_sync"] is False, info
    res = env.apply(topo)
    assert "clear half-made network namespace %s (an interrupted run left an empty /run/netns/%s)" % (
        env.ns("web"), env.ns("web")) in res["actions"], res["actions"]
    assert "create network namespace %s" % env.ns("web") in res["actions"], res["actions"]
    assert addr_of(res, "web/eth0") == "10.77.1.10" and addr_of(res, "web2/eth0") == web2
    assert ping(env.ns("web"), web2) and ping(env.ns("web2"), "10.77.1.10")
    assert_noop(env.apply(topo))
    # and a dead entry of a namespace the topology no longer wants stops nothing
    make_dead_entry(env.ns("web2"))
    topo["containers"].pop("web2")
    res = env.apply(topo)
    assert "clear half-made network namespace %s (an interrupted run left an empty /run/netns/%s)" % (
        env.ns("web2"), env.ns("web2")) in res["actions"], res["actions"]
    assert not os.path.lexists("/run/netns/" + env.ns("web2"))      # netstitch's dead entry is cleared away
    assert ping(env.ns("web"), "10.77.1.1")
    assert_noop(env.apply(topo))


def addr_of(res, key):
    return endpoints(res)[key]["address"].split("/")[0]
