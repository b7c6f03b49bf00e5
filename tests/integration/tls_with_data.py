#!/usr/bin/env python3
"""tls_with_data: a resumed TLS 1.2 handshake whose last client flight carries MQTT data in the
same write. Standard library only (Python's ssl, i.e. OpenSSL, in memory-BIO mode).

    tls_with_data.py --port N --cafile CA --cert C --key K --id CLIENTID [--timeout S]

Connects once to get a session ticket, then again resuming it: the client's ChangeCipherSpec and
Finished, a CONNECT and a QoS 1 PUBLISH to hearth/v1/CLIENTID/telemetry leave in one send, so
they reach the server together. Prints "resumed=0|1 connack=RC puback=ID" and exits 0 when the
session was resumed, the CONNACK accepted and the PUBACK names the PUBLISH; 1 otherwise; 2 when
a handshake failed. Connects to 127.0.0.1 only; every wait is bounded by --timeout (default 5 s).
"""
import argparse
import os
import socket
import ssl
import sys
import time

sys.dont_write_bytecode = True   # nothing left beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqtt_raw import mqtt_string, packet  # noqa: E402  (the MQTT encoders of the hostile-input client)


def connect_packet(client_id):
    return packet(0x10, mqtt_string(b"MQTT") + bytes([4, 0x02]) + (60).to_bytes(2, "big")
                  + mqtt_string(client_id.encode()))


def publish_packet(topic, payload, pid):
    return packet(0x32, mqtt_string(topic.encode()) + pid.to_bytes(2, "big") + payload)


class Conn:
    """One TLS connection over a socket, driven by hand through memory BIOs."""

    def __init__(self, ctx, port, deadline, session=None):
        self.deadline = deadline
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=1)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_hostname="127.0.0.1", session=session)
        self.buf = b""

    def pump_in(self):
        self.sock.settimeout(max(0.01, self.deadline - time.monotonic()))
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.inc.write(data)

    def send_out(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def handshake(self):
        """Until the client's side is done; its last flight stays unsent in self.out."""
        while True:
            try:
                self.tls.do_handshake()
                return
            except ssl.SSLWantReadError:
                self.send_out()
                self.pump_in()

    def take_packet(self):
        """One whole MQTT packet off the front of what was read, or None."""
        n, mult, i = 0, 1, 1
        while True:
            if i >= len(self.buf) or i > 4:
                return None
            n += (self.buf[i] & 0x7F) * mult
            mult *= 128
            if not self.buf[i] & 0x80:
                break
            i += 1
        if len(self.buf) < i + 1 + n:
            return None
        pkt = (self.buf[0], self.buf[i + 1:i + 1 + n])
        self.buf = self.buf[i + 1 + n:]
        return pkt

    def read_packet(self):
        while True:
            pkt = self.take_packet()
            if pkt:
                return pkt
            try:
                self.buf += self.tls.read(65536)
            except ssl.SSLWantReadError:
                self.pump_in()

    def close(self):
        self.sock.close()


def main(argv):
    ap = argparse.ArgumentParser(description="a resumed handshake with MQTT data in its last flight")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--id", required=True)
    ap.add_argument("--timeout", type=float, default=5.0)
    args = ap.parse_args(argv)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=args.cafile)
    ctx.load_cert_chain(args.cert, args.key)
    deadline = time.monotonic() + args.timeout
    try:
        first = Conn(ctx, args.port, deadline)
        first.handshake()
        first.send_out()
        # The ticket comes with the server's last flight: read until CONNACK to have it.
        first.tls.write(connect_packet(args.id))
        first.send_out()
        first.read_packet()
        session = first.tls.session
        first.close()
        conn = Conn(ctx, args.port, deadline, session)
        conn.handshake()
        conn.tls.write(connect_packet(args.id) + publish_packet("hearth/v1/%s/telemetry" % args.id,
                                                                  b'{"temperature":21.5}', 7))
        conn.send_out()   # ChangeCipherSpec, Finished, CONNECT and PUBLISH in one send
    except (ssl.SSLError, ConnectionError, OSError) as e:
        print("handshake failed: %s" % e, file=sys.stderr)
        return 2
    try:
        t1, connack = conn.read_packet()
        t2, puback = conn.read_packet()
    except (ssl.SSLError, ConnectionError, OSError) as e:
        print("no answer: %s" % e, file=sys.stderr)
        return 1
    resumed = int(conn.tls.session_reused)
    rc = connack[1] if t1 == 0x20 and len(connack) == 2 else -1
    pid = int.from_bytes(puback, "big") if t2 == 0x40 and len(puback) == 2 else -1
    print("resumed=%d connack=%d puback=%d" % (resumed, rc, pid))
    conn.close()
    return 0 if resumed and rc == 0 and pid == 7 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
