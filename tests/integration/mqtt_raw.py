#!/usr/bin/env python3
"""mqtt_raw: a raw MQTT 3.1.1-over-TLS client for hostile-input tests. Standard library only.

    mqtt_raw.py --host 127.0.0.1 --port N --cafile CA (--cert C --key K | --no-cert)
                [--timeout S] [--tls-max 1.2|1.3] [-v] STEP...

STEP is one of
    send:HEX                            raw bytes, as they are (spaces allowed inside HEX)
    connect:CLIENTID[:KEEPALIVE[:clean]]   a 3.1.1 CONNECT (keep-alive 60 unless given)
    publish:TOPIC:PAYLOAD[:QOS[:retain]]   QoS 0 unless given
    subscribe:FILTER[:QOS]              one filter, QoS 0 unless given
    unsubscribe:FILTER
    puback:PACKETID                     (decimal) e.g. for a QoS 1 PUBLISH the server sent
    pingreq | disconnect
    expect:TYPE[:HEX]                   read one packet within the timeout; its type must be TYPE
                                        (CONNACK, PUBLISH, PUBACK, SUBACK, UNSUBACK, PINGRESP, ...)
                                        and, if HEX is given, the bytes after its fixed header
                                        must be exactly HEX
    expect_close[:any]                  the server closes the connection within the timeout (EOF,
                                        close_notify, a TLS alert or a reset all count); a packet
                                        arriving first fails it, unless ":any"
    sleep:SECONDS
CLIENTID, TOPIC, PAYLOAD and FILTER take %XX escapes (%3A for ':', %25 for '%', %00 ...); an
empty CLIENTID or PAYLOAD is allowed. Packet identifiers are 1, 2, 3 ... in the order of the
publish (QoS > 0), subscribe and unsubscribe steps.

Output: one line per packet received, on stdout: "recv TYPE flags=F body=HEX" (F: the low four
bits of the first byte, hex; HEX: the bytes after the fixed header), and "closed REASON" when the
server is seen to close. Failures and diagnostics go to stderr; -v also logs what is sent.

Exit status: 0 every expect held; 1 an expect failed (the remaining steps are not run); 2 the TLS
handshake failed, the SSL error printed (with TLS 1.3 a client certificate is refused only after
the client's handshake is done: a TLS alert that arrives before any MQTT byte also counts as a
failed handshake, and the first --tls13-settle seconds after the handshake are waited for one);
3 usage; 4 the TCP connection could not be made.

The server certificate is always verified against --cafile, with the host name checked (the host
must be 127.0.0.1 or localhost, and traffic goes to 127.0.0.1 only); TLS 1.2 is the minimum.
--bind 127.x.y.z connects from that loopback address instead, to look like another client.
Every wait is bounded by --timeout (default 5 s).

Half-open handshakes:
    mqtt_raw.py --host 127.0.0.1 --port N --repeat-handshakes COUNT --hold S
                [--partial none|header|half] [--expect-server-close] [-v]
opens COUNT TCP connections, sends on each only part of a real ClientHello (its 5-byte record
header, half of it (default), or nothing), holds them S seconds, notes which the server closes,
then closes the rest and prints one summary line:
    "half-open: opened=N connect_failed=F closed_by_server=C still_open=O [first_close=Xs
    last_close=Ys]". Exit 0, or 4 if a TCP connection could not be made, or 1 with
--expect-server-close if a connection was still open when the hold ended.
"""

import argparse
import selectors
import socket
import ssl
import struct
import sys
import time
import urllib.parse

EXIT_OK, EXIT_EXPECT, EXIT_TLS, EXIT_USAGE, EXIT_TCP = 0, 1, 2, 3, 4

TYPE_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
    7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
    12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT",
}
TYPE_CODES = {v: k for k, v in TYPE_NAMES.items()}
ALLOWED_HOSTS = ("127.0.0.1", "localhost")
MAX_PACKET = 16 << 20          # this tool refuses to buffer more than this from one packet
MAX_COUNT = 10000              # --repeat-handshakes
MAX_WAIT = 3600.0              # --timeout, --hold, sleep:


class UsageError(Exception):
    pass


class HandshakeRefused(Exception):
    """A TLS alert after a TLS 1.3 handshake, before any MQTT byte: the server refused us."""


class Timeout(Exception):
    pass


def err(msg):
    print("mqtt_raw: " + msg, file=sys.stderr, flush=True)


def out(msg):
    print(msg, flush=True)


# ---- encoding ---------------------------------------------------------------------------------

def remaining_length(n):
    b = bytearray()
    while True:
        d, n = n % 128, n // 128
        b.append(d | (0x80 if n else 0))
        if not n:
            return bytes(b)


def packet(first, body):
    return bytes([first]) + remaining_length(len(body)) + body


def mqtt_string(b):
    if len(b) > 0xFFFF:
        raise UsageError("a string field is longer than 65535 bytes")
    return struct.pack("!H", len(b)) + b


def unescape(s):
    return urllib.parse.unquote_to_bytes(s)


def number(s, what, lo, hi, conv=int):
    try:
        v = conv(s)
    except ValueError:
        raise UsageError("%s: not a number: %r" % (what, s)) from None
    if not lo <= v <= hi:
        raise UsageError("%s must be %s..%s" % (what, lo, hi))
    return v


def parse_hex(s, what):
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise UsageError("%s: not hex: %r" % (what, s)) from None


class Steps:
    """Parses every step before anything is sent: a typo is a usage error, not half a test."""

    def __init__(self, specs):
        self.next_id = 1
        self.steps = [self.parse(s) for s in specs]

    def packet_id(self):
        pid = self.next_id
        self.next_id = self.next_id % 0xFFFF + 1
        return pid

    def parse(self, spec):
        kind, _, rest = spec.partition(":")
        f = rest.split(":") if rest else []

        def nargs(lo, hi):
            if not lo <= len(f) <= hi:
                raise UsageError("step %r: wrong number of fields" % spec)

        if kind == "send":
            nargs(1, 1)
            return ("send", spec, parse_hex(f[0], spec))
        if kind == "connect":
            if not rest and spec != "connect:":
                raise UsageError("step %r: connect needs a client id (may be empty: 'connect:')" % spec)
            f = rest.split(":")
            nargs(1, 3)
            keepalive = number(f[1], "keep-alive", 0, 65535) if len(f) > 1 and f[1] != "" else 60
            clean = False
            if len(f) > 2:
                if f[2] != "clean":
                    raise UsageError("step %r: third field must be 'clean'" % spec)
                clean = True
            vh = mqtt_string(b"MQTT") + bytes([4, 0x02 if clean else 0]) + struct.pack("!H", keepalive)
            return ("send", spec, packet(0x10, vh + mqtt_string(unescape(f[0]))))
        if kind == "publish":
            if len(f) == 1:
                f.append("")
            nargs(2, 4)
            qos = number(f[2], "QoS", 0, 2) if len(f) > 2 else 0
            retain = False
            if len(f) > 3:
                if f[3] != "retain":
                    raise UsageError("step %r: fourth field must be 'retain'" % spec)
                retain = True
            body = mqtt_string(unescape(f[0]))
            if qos:
                body += struct.pack("!H", self.packet_id())
            body += unescape(f[1])
            return ("send", spec, packet(0x30 | (qos << 1) | int(retain), body))
        if kind == "subscribe":
            nargs(1, 2)
            qos = number(f[1], "QoS", 0, 2) if len(f) > 1 else 0
            body = struct.pack("!H", self.packet_id()) + mqtt_string(unescape(f[0])) + bytes([qos])
            return ("send", spec, packet(0x82, body))
        if kind == "unsubscribe":
            nargs(1, 1)
            body = struct.pack("!H", self.packet_id()) + mqtt_string(unescape(f[0]))
            return ("send", spec, packet(0xA2, body))
        if kind == "puback":
            nargs(1, 1)
            return ("send", spec, packet(0x40, struct.pack("!H", number(f[0], "packet id", 0, 65535))))
        if kind in ("pingreq", "disconnect"):
            nargs(0, 0)
            return ("send", spec, bytes([0xC0 if kind == "pingreq" else 0xE0, 0]))
        if kind == "expect":
            nargs(1, 2)
            t = f[0].upper()
            if t not in TYPE_CODES:
                raise UsageError("step %r: unknown packet type %r" % (spec, f[0]))
            body = parse_hex(f[1], spec) if len(f) > 1 else None
            return ("expect", spec, (TYPE_CODES[t], body))
        if kind == "expect_close":
            nargs(0, 1)
            if f and f[0] != "any":
                raise UsageError("step %r: the only option is 'any'" % spec)
            return ("expect_close", spec, bool(f))
        if kind == "sleep":
            nargs(1, 1)
            return ("sleep", spec, number(f[0], "sleep", 0, MAX_WAIT, float))
        raise UsageError("unknown step %r" % spec)


# ---- the connection ---------------------------------------------------------------------------

class Conn:
    def __init__(self, sock, verbose):
        self.s = sock
        self.verbose = verbose
        self.buf = bytearray()
        self.closed = None              # why, once the server is seen to have gone
        self.got_data = False           # any application byte from the server yet
        self.tls13 = sock.version() == "TLSv1.3"

    def _close(self, why):
        if self.closed is None:
            self.closed = why
            out("closed " + why)

    def recv_some(self, deadline):
        """Appends what arrives to buf; False once closed; Timeout at the deadline."""
        if self.closed is not None:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout()
        self.s.settimeout(left)
        try:
            data = self.s.recv(65536)
        except (socket.timeout, TimeoutError):
            raise Timeout() from None
        except ssl.SSLZeroReturnError:
            data = b""
        except ssl.SSLEOFError:
            self._close("EOF or reset, without close_notify")
            return False
        except ssl.SSLError as e:
            if self.tls13 and not self.got_data:
                raise HandshakeRefused(e) from None
            self._close("TLS error: %s" % e)
            return False
        except ConnectionResetError:
            self._close("reset")
            return False
        except OSError as e:
            self._close("socket error: %s" % e)
            return False
        if not data:
            self._close("close_notify")
            return False
        self.got_data = True
        self.buf += data
        return True

    def settle(self, seconds):
        """TLS 1.3: the server's verdict on our certificate comes after our handshake is done."""
        try:
            self.recv_some(time.monotonic() + seconds)
        except Timeout:
            pass

    def send(self, data, deadline):
        if self.closed is not None:
            err("not sent, the connection is closed: %s" % data.hex())
            return
        try:
            self.s.settimeout(max(deadline - time.monotonic(), 0.001))
            self.s.sendall(data)
        except (socket.timeout, TimeoutError):
            err("send timed out")
        except (ssl.SSLError, OSError) as e:
            err("send failed: %s" % e)
            if self.tls13 and not self.got_data:   # an alert may be waiting: read it
                try:
                    self.recv_some(time.monotonic() + 0.5)
                except Timeout:
                    pass
            self._close("on send: %s" % e)

    def read_packet(self, deadline):
        """(type, flags, body) of the next packet, None if closed first; Timeout; ValueError."""
        while True:
            if self.buf:
                n, mult, i = 0, 1, 1
                complete = False
                while i < len(self.buf) and i <= 4:
                    b = self.buf[i]
                    n += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        complete = True
                        break
                if not complete and (i > 4 or len(self.buf) > 4):
                    raise ValueError("malformed remaining length: %s" % bytes(self.buf[:5]).hex())
                if complete and n > MAX_PACKET:
                    raise ValueError("remaining length %d is more than this tool buffers" % n)
                if complete and len(self.buf) >= i + n:
                    first = self.buf[0]
                    body = bytes(self.buf[i:i + n])
                    del self.buf[:i + n]
                    name = TYPE_NAMES.get(first >> 4, "TYPE%d" % (first >> 4))
                    out("recv %s flags=%x body=%s" % (name, first & 0xF, body.hex()))
                    return first >> 4, first & 0xF, body
            if not self.recv_some(deadline):
                if self.buf:
                    err("the connection closed inside a packet: %s" % bytes(self.buf).hex())
                    self.buf.clear()
                return None


def make_context(args, with_cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)   # CERT_REQUIRED and check_hostname
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.tls_max == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if args.cafile:
        ctx.load_verify_locations(cafile=args.cafile)
    if with_cert:
        ctx.load_cert_chain(args.cert, args.key)
    return ctx


def tcp_connect(port, timeout, bind=None):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(bind, 0) if bind else None)


def run_steps(args, steps):
    try:
        ctx = make_context(args, not args.no_cert)
    except (OSError, ssl.SSLError) as e:
        raise UsageError("cannot load the TLS files: %s" % e) from None
    try:
        raw = tcp_connect(args.port, args.timeout, args.bind)
    except OSError as e:
        err("TCP connect to 127.0.0.1:%d failed: %s" % (args.port, e))
        return EXIT_TCP
    deadline = time.monotonic() + args.timeout
    try:
        raw.settimeout(args.timeout)
        s = ctx.wrap_socket(raw, server_hostname=args.host, do_handshake_on_connect=False,
                            suppress_ragged_eofs=False)
        s.do_handshake()
    except (socket.timeout, TimeoutError):
        err("TLS handshake failed: no handshake within %gs" % args.timeout)
        raw.close()
        return EXIT_TLS
    except (ssl.SSLError, OSError) as e:
        err("TLS handshake failed: %s" % e)
        raw.close()
        return EXIT_TLS
    conn = Conn(s, args.verbose)
    err_msg = None
    try:
        if args.verbose:
            err("TLS up: %s %s" % (s.version(), s.cipher()[0]))
        if conn.tls13 and args.tls13_settle > 0:
            conn.settle(min(args.tls13_settle, max(deadline - time.monotonic(), 0.05)))
        for n, (kind, spec, arg) in enumerate(steps.steps, 1):
            now = time.monotonic()
            if kind == "send":
                if args.verbose:
                    err("send %s: %s" % (spec, arg.hex()))
                conn.send(arg, now + args.timeout)
            elif kind == "sleep":
                time.sleep(arg)
            elif kind == "expect":
                want, body = arg
                try:
                    p = conn.read_packet(now + args.timeout)
                except Timeout:
                    err_msg = "no packet within %gs" % args.timeout
                except ValueError as e:
                    err_msg = str(e)
                else:
                    if p is None:
                        err_msg = "the connection closed (%s)" % conn.closed
                    elif p[0] != want:
                        err_msg = "got %s" % TYPE_NAMES.get(p[0], "type %d" % p[0])
                    elif body is not None and p[2] != body:
                        err_msg = "body %s, wanted %s" % (p[2].hex(), body.hex())
            elif kind == "expect_close":
                end = now + args.timeout
                try:
                    while True:
                        p = conn.read_packet(end)
                        if p is None:
                            break
                        if not arg:
                            err_msg = "got %s instead of a close" % TYPE_NAMES.get(p[0], "type %d" % p[0])
                            break
                except Timeout:
                    err_msg = "still open after %gs" % args.timeout
                except ValueError as e:
                    err_msg = str(e)
            if err_msg:
                err("FAIL step %d (%s): %s" % (n, spec, err_msg))
                return EXIT_EXPECT
            if args.verbose and kind.startswith("expect"):
                err("ok   step %d (%s)" % (n, spec))
    except HandshakeRefused as e:
        err("TLS handshake failed: the server refused us after the TLS 1.3 handshake: %s" % e)
        return EXIT_TLS
    finally:
        s.close()
    return EXIT_OK


# ---- half-open handshakes ---------------------------------------------------------------------

def client_hello(args):
    ctx = make_context(args, False)
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname=args.host)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outg.read()


def raise_fd_limit(want):
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < want:
            new = want if hard == resource.RLIM_INFINITY else min(want, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    except (ImportError, ValueError, OSError):
        pass


def run_half_open(args):
    hello = client_hello(args)
    part = {"none": b"", "header": hello[:5], "half": hello[:len(hello) // 2]}[args.partial]
    raise_fd_limit(args.repeat_handshakes + 64)
    sel = selectors.DefaultSelector()
    conns = []                      # [socket, opened_at, closed_after or None]
    failed = 0
    try:
        for i in range(args.repeat_handshakes):
            try:
                c = tcp_connect(args.port, args.timeout, args.bind)
                if part:
                    c.sendall(part)
                c.setblocking(False)
            except OSError as e:
                failed += 1
                if args.verbose or failed == 1:
                    err("connection %d: %s" % (i + 1, e))
                continue
            rec = [c, time.monotonic(), None]
            conns.append(rec)
            sel.register(c, selectors.EVENT_READ, rec)
        if args.verbose:
            err("%d connections open, %d bytes of a %d-byte ClientHello sent on each; holding %gs"
                % (len(conns), len(part), len(hello), args.hold))
        end = time.monotonic() + args.hold
        open_n = len(conns)
        while open_n and time.monotonic() < end:
            for key, _ in sel.select(timeout=max(end - time.monotonic(), 0)):
                rec = key.data
                try:
                    data = rec[0].recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    if args.verbose:
                        err("server sent %d bytes: %s" % (len(data), data[:16].hex()))
                    continue
                rec[2] = time.monotonic() - rec[1]
                sel.unregister(rec[0])
                open_n -= 1
                if args.verbose:
                    err("closed by the server after %.2fs" % rec[2])
    finally:
        for rec in conns:
            rec[0].close()
        sel.close()
    closes = sorted(r[2] for r in conns if r[2] is not None)
    line = "half-open: opened=%d connect_failed=%d closed_by_server=%d still_open=%d" % (
        len(conns), failed, len(closes), len(conns) - len(closes))
    if closes:
        line += " first_close=%.2fs last_close=%.2fs" % (closes[0], closes[-1])
    out(line)
    if failed:
        return EXIT_TCP
    if args.expect_server_close and len(closes) != len(conns):
        err("FAIL %d connections still open after %gs" % (len(conns) - len(closes), args.hold))
        return EXIT_EXPECT
    return EXIT_OK


# ---- command line -----------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    def error(self, message):       # argparse's own status (2) would read as "handshake failed"
        self.print_usage(sys.stderr)
        err(message)
        sys.exit(EXIT_USAGE)


def main(argv):
    p = Parser(prog="mqtt_raw.py", description=__doc__.split("\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="127.0.0.1 or localhost (the name checked)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", help="verifies the server (required but for --repeat-handshakes)")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--no-cert", action="store_true", help="offer no client certificate")
    p.add_argument("--timeout", type=float, default=5.0, help="bound on every wait (default 5)")
    p.add_argument("--bind", metavar="ADDR",
                   help="connect from this loopback address (127.x.y.z), as another client would")
    p.add_argument("--tls-max", choices=("1.2", "1.3"), default="1.3")
    p.add_argument("--tls13-settle", type=float, default=0.3, metavar="S",
                   help="after a TLS 1.3 handshake, wait up to S for the server's verdict (0.3)")
    p.add_argument("--repeat-handshakes", type=int, metavar="COUNT")
    p.add_argument("--hold", type=float, metavar="S")
    p.add_argument("--partial", choices=("none", "header", "half"), default="half")
    p.add_argument("--expect-server-close", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("steps", nargs="*", metavar="STEP")
    args = p.parse_args(argv)
    try:
        if args.host not in ALLOWED_HOSTS:
            raise UsageError("--host must be one of %s" % ", ".join(ALLOWED_HOSTS))
        if not 1 <= args.port <= 65535:
            raise UsageError("--port must be 1..65535")
        if not 0 < args.timeout <= MAX_WAIT:
            raise UsageError("--timeout must be in (0, %g]" % MAX_WAIT)
        if not 0 <= args.tls13_settle <= 10:
            raise UsageError("--tls13-settle must be 0..10")
        if args.bind is not None:
            try:
                ok = socket.inet_aton(args.bind)[0] == 127 and args.bind.count(".") == 3
            except OSError:
                ok = False
            if not ok:
                raise UsageError("--bind must be a loopback IPv4 address (127.x.y.z)")
        if args.repeat_handshakes is not None:
            if args.steps:
                raise UsageError("--repeat-handshakes takes no steps")
            if not 1 <= args.repeat_handshakes <= MAX_COUNT:
                raise UsageError("--repeat-handshakes must be 1..%d" % MAX_COUNT)
            if args.hold is None or not 0 <= args.hold <= MAX_WAIT:
                raise UsageError("--repeat-handshakes needs --hold 0..%g" % MAX_WAIT)
            if args.cafile:
                try:
                    make_context(args, False)
                except (OSError, ssl.SSLError) as e:
                    raise UsageError("cannot load --cafile: %s" % e) from None
            return run_half_open(args)
        if args.hold is not None:
            raise UsageError("--hold goes with --repeat-handshakes")
        if not args.cafile:
            raise UsageError("--cafile is required: the server is always verified")
        if args.no_cert:
            if args.cert or args.key:
                raise UsageError("--no-cert with --cert/--key")
        elif not (args.cert and args.key):
            raise UsageError("--cert and --key are required (or --no-cert)")
        steps = Steps(args.steps)
        return run_steps(args, steps)
    except UsageError as e:
        err(str(e))
        return EXIT_USAGE


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
