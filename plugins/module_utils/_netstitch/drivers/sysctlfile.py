"""Reading and writing sysctls through /proc/sys (the netlink driver's sysctl_set, the host's reads)."""


def _sysctl_path(key):
    """A dotted key (net.ipv4.ip_forward), or a path under /proc/sys (net/ipv4/conf/NAME/route_localnet)."""
    return "/proc/sys/" + (key if "/" in key else key.replace(".", "/"))


def read_sysctl(key):
    try:
        with open(_sysctl_path(key)) as f:
            return f.read().strip()
    except OSError:
        return None


def write_sysctl(key, value):
    with open(_sysctl_path(key), "w") as f:
        f.write(str(value))
