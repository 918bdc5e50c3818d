# Copyright: netstitch developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""per_host: one value per host from hostvars, as a mapping (documentation: per_host.yml)."""

from jinja2.runtime import Undefined

from ansible.errors import AnsibleFilterError


def _lookup(hostvars, host, path):
    try:
        value = hostvars[host]
        for key in path:
            value = value[key]
    except (KeyError, IndexError, TypeError):
        return Undefined()
    return value


def per_host(hosts, hostvars, path):
    """{host: hostvars[host][path[0]][path[1]]...} for the hosts that have the value."""
    if isinstance(path, str):
        path = [path]
    if not isinstance(path, (list, tuple)) or not path:
        raise AnsibleFilterError("per_host: the path must be a variable name or a non-empty list of keys")
    if isinstance(hosts, str):
        raise AnsibleFilterError("per_host: expected a list of host names, got the string %r" % hosts)
    out = {}
    for host in hosts:
        value = _lookup(hostvars, host, path)
        if not isinstance(value, Undefined):
            out[host] = value
    return out


class FilterModule(object):
    def filters(self):
        return {"per_host": per_host}
