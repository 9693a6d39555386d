"""Sockets and addresses as the kernel sees them: a port that refuses
connections, the TCP connections and descriptors of a process (from /proc),
IPv6 availability, host:port formatting. No HTTP here (see httpc)."""

import os
import socket

_HELD = []  # sockets bound by refused_port(), kept until the process exits


def refused_port(host="127.0.0.1"):
    """A port on which connections are refused, for "the model is not
    running" cases: a socket bound to port 0 and never listening. It stays
    bound while this process runs, so nobody else can take the port and start
    answering on it."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    _HELD.append(s)
    return s.getsockname()[1]


def tcp_peer_ports(port):
    """Client ports of every TCP connection to 127.0.0.1:`port` the kernel
    still knows about (established, closing or TIME_WAIT), from
    /proc/net/tcp. Counts connections opened to a server without its help.
    Returns None when /proc/net/tcp cannot be read."""
    peers = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                local, remote, state = parts[1], parts[2], parts[3]
                if state == "0A":  # LISTEN
                    continue
                lport = int(local.split(":")[1], 16)
                rport = int(remote.split(":")[1], 16)
                if lport == port:
                    peers.add(rport)
                elif rport == port:
                    peers.add(lport)
    except (OSError, IndexError, ValueError, StopIteration):
        return None
    return peers


def tcp_rows():
    """Each socket row of /proc/net/tcp and tcp6, split into its fields
    (sl, local, remote, st, tx:rx queue, ..., inode at index 9)."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for ln in lines:
            yield ln.split()


def tcp_inode_peers():
    """{socket inode: (local port, remote port, state hex)} of every TCP
    socket in /proc/net/tcp and tcp6."""
    out = {}
    for f in tcp_rows():
        try:
            out[int(f[9])] = (int(f[1].rsplit(":", 1)[1], 16),
                              int(f[2].rsplit(":", 1)[1], 16), f[3])
        except (IndexError, ValueError):
            pass
    return out


def fd_census(pid, peer_port=None):
    """The open file descriptors of process `pid`: (total, to_peer), where
    to_peer counts its TCP sockets whose remote port is `peer_port` (e.g. the
    gateway's pooled connections to the model)."""
    fds = os.listdir("/proc/%d/fd" % pid)
    to_peer = 0
    if peer_port is not None:
        peers = tcp_inode_peers()
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                info = peers.get(int(link[8:-1]))
                if info and info[1] == peer_port:
                    to_peer += 1
    return len(fds), to_peer


def ipv6_loopback_available():
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def fmt_hostport(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
