"""NETLINK_ROUTE sockets for rtnl: one per network namespace, made by entering the namespace on the calling thread
just long enough to create it (a socket stays in the namespace it was made in), with extended acks on."""

import ctypes
import ctypes.util
import os
import socket

NETLINK_ROUTE = 0
CLONE_NEWNET = 0x40000000
SOL_NETLINK, NETLINK_EXT_ACK = 270, 11

_libc = None


def _setns(fd):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: %s" % os.strerror(e))


def open_socket(netns_path=None, home_fd=None):
    """A NETLINK_ROUTE socket bound in the network namespace at ``netns_path`` (None: this thread's own). The
    calling thread enters the namespace just long enough to create the socket (a socket stays in the namespace it
    was made in), then returns to ``home_fd`` (its own namespace, opened by the caller once)."""
    if netns_path is None:
        return _new_socket()
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd)
        try:
            return _new_socket()
        finally:
            _setns(home_fd)
    finally:
        os.close(fd)


def _new_socket():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        try:
            s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        except OSError:     # a kernel before 4.12: refusals come without the kernel's text
            pass
        s.bind((0, 0))
    except OSError:
        s.close()
        raise
    return s


def enter_netns(fd):
    """Move the calling thread into the network namespace of ``fd`` (the caller returns it to its own)."""
    _setns(fd)
