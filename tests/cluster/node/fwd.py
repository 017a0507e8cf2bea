#!/usr/bin/env python3
"""Loopback TCP forwarder from the host into the real node's network namespace.

    fwd.py --netns /run/netns/NAME --target 127.0.0.1:6443 --port-file FILE

Listens on 127.0.0.1 (a free port, written to FILE once listening) in the network namespace it
was started in, then switches this process into NETNS. A socket stays in the namespace it was
created in, so the listener keeps serving the host's loopback while every upstream connection is
made inside NETNS. Only loopback is ever bound; the target must be an address inside NETNS.
Standard library only; one thread per direction of each connection.
"""
import argparse
import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def enter_netns(path):
    """setns(2) into the network namespace at path (os.setns needs Python 3.12)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if hasattr(os, "setns"):
            os.setns(fd, CLONE_NEWNET)
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def copy(src, dst):
    """Copies src to dst until EOF, then half-closes dst so the peer sees the end too."""
    try:
        while True:
            data = src.recv(1 << 16)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(client, target):
    try:
        upstream = socket.create_connection(target, timeout=10)
    except OSError as e:
        print(f"connect {target[0]}:{target[1]}: {e}", file=sys.stderr, flush=True)
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=copy, args=(upstream, client), daemon=True)
    back.start()
    copy(client, upstream)
    back.join()
    client.close()
    upstream.close()


def write_port(path, port):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--netns", required=True, help="network namespace file, e.g. /run/netns/NAME")
    ap.add_argument("--target", default="127.0.0.1:6443", help="HOST:PORT inside the namespace")
    ap.add_argument("--port-file", required=True, help="where to write the listening port")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    args = ap.parse_args()
    host, _, port = args.target.rpartition(":")
    target = (host, int(port))

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(128)
    enter_netns(args.netns)
    write_port(args.port_file, listener.getsockname()[1])
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve, args=(client, target), daemon=True).start()


if __name__ == "__main__":
    main()
