"""Drivers: the only code that touches a host (netlink, nftables, Docker)."""
