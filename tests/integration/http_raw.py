#!/usr/bin/env python3
"""http_raw: hostile HTTPS clients for the REST API tests. Standard library only; every wait is
bounded and traffic goes to 127.0.0.1 only. The server is verified against --cafile.

    http_raw.py --port N --cafile CA slow --send TEXT --wait S
        open one TLS connection, send TEXT (a request cut short), then wait up to S seconds for
        the server to close it. Prints "closed after X s" (exit 0) or "still open" (exit 1).
    http_raw.py --port N --cafile CA many --count C --hold S
        open C TLS connections at once and hold them S seconds; then send a request on each that
        is still open. Prints "open=O refused=R answered=A" (exit 0).
"""

import argparse
import socket
import ssl
import sys
import time


def connect(port, ctx, timeout):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    except (ssl.SSLError, OSError):
        raw.close()
        raise


def closed_by_peer(s, deadline):
    """True once the peer closed s (EOF, reset or alert), False if deadline passed first."""
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        except (ssl.SSLError, OSError):
            return True
        if not data:
            return True
    return False


def slow(args, ctx):
    s = connect(args.port, ctx, 10)
    start = time.monotonic()
    s.sendall(args.send.encode().decode("unicode_escape").encode("latin-1"))
    if closed_by_peer(s, start + args.wait):
        print("closed after %.1f s" % (time.monotonic() - start))
        return 0
    print("still open")
    return 1


def many(args, ctx):
    socks, refused = [], 0
    for _ in range(args.count):
        try:
            socks.append(connect(args.port, ctx, 5))
        except (ssl.SSLError, OSError):
            refused += 1
    time.sleep(args.hold)
    answered = 0
    for s in socks:
        try:
            s.settimeout(5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            if s.recv(64).startswith(b"HTTP/1.1 200"):
                answered += 1
        except (ssl.SSLError, OSError):
            pass
        finally:
            s.close()
    print("open=%d refused=%d answered=%d" % (len(socks), refused, answered))
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("slow")
    s.add_argument("--send", required=True)
    s.add_argument("--wait", type=float, required=True)
    m = sub.add_parser("many")
    m.add_argument("--count", type=int, required=True)
    m.add_argument("--hold", type=float, default=1.0)
    args = p.parse_args()
    ctx = ssl.create_default_context(cafile=args.cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return slow(args, ctx) if args.cmd == "slow" else many(args, ctx)


if __name__ == "__main__":
    sys.exit(main())
