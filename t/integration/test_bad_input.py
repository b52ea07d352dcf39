# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
Malformed and hostile input: a request with a usable Via gets a 400 (505 for
the version) whose reason phrase says what was wrong, anything else is dropped,
and the server keeps serving. Then every RFC 4475 / RFC 5118 torture message.
"""
import csv
import os
import re
import time
import unittest

from ksrtest import (LOCAL4, QUIET, Server, TcpPeer, UdpPeer, make_request, parse, parse_via,
                     still_serving, testdata_dir)


def cut(msg, marker):
    """The bytes of msg up to (not including) marker."""
    raw = bytes(msg)
    return raw[:raw.index(marker)]


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def tearDown(self):
        still_serving(self, self.srv)

    # -- helpers
    def options(self, via, **kw):
        return make_request("OPTIONS", self.srv.uri(), via, **kw)

    def udp(self, data, timeout=1.0):
        with UdpPeer() as p:
            p.send(data(p) if callable(data) else data, self.srv.udp)
            return p.recv_msg(timeout)

    def tcp(self, data, timeout=1.0):
        """Sends over a fresh connection; (reply or None, peer) — the peer is closed."""
        with TcpPeer(self.srv.tcp) as p:
            p.send(data(p) if callable(data) else data)
            return p.recv_msg(timeout)

    def assertRefused(self, reply, code, why):
        """A `code` reply whose reason phrase matches regex why (not a bare 'Bad Request')."""
        self.assertIsNotNone(reply, f"no {code} reply\n{self.srv.log()[-2000:]}")
        self.assertEqual(reply.status, code, reply.start)
        self.assertRegex(reply.reason, re.compile(why, re.I), "the reason phrase does not say what was wrong")

    def each_transport(self, build, code, why):
        """build(peer) -> bytes; sends it over UDP and TCP and expects a `code` refusal."""
        self.assertRefused(self.udp(build), code, why)
        self.assertRefused(self.tcp(build), code, why)

    # -- garbage and truncation
    def test_garbage_udp(self):
        with UdpPeer() as p:
            for junk in (os.urandom(512), b"\x00" * 64, b"hello world\r\n\r\n", b"\xff\xfe\r\n" * 100,
                         b"SIP/2.0 200\r\n\r\n", b"INVITE\r\n\r\n"):
                p.send(junk, self.srv.udp)
            self.assertTrue(p.quiet(), "garbage was answered")
        self.assertTrue(self.srv.wait_log(r"malformed message dropped"), "no log line for a dropped message")

    def test_garbage_tcp(self):
        with TcpPeer(self.srv.tcp) as p:
            p.send(os.urandom(512).replace(b"\r\n\r\n", b"") + b"\r\n\r\n")
            self.assertTrue(p.closed_by_peer(), "the connection stayed open after lost framing")
            self.assertEqual(p.buf, b"", "garbage was answered")

    def test_truncated_headers(self):
        # cut in the middle of a header after the ones a reply needs
        self.assertRefused(self.udp(lambda p: cut(self.options(p.via()), b"Length:")),
                           400, r"truncat|incomplete|empty line|end of")

    def test_truncated_in_via_dropped(self):
        # no usable Via: nobody to answer
        with UdpPeer() as p:
            p.send(cut(self.options(p.via()), b";branch"), self.srv.udp)
            self.assertTrue(p.quiet(), "a message without a usable Via was answered")

    def test_start_line_without_version(self):
        self.each_transport(
            lambda p: bytes(self.options(p.via())).replace(b" SIP/2.0\r\n", b"\r\n", 1),
            400, r"request.line|version")

    def test_sip_3_0(self):
        self.each_transport(
            lambda p: bytes(self.options(p.via())).replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1),
            505, r"version")

    # -- Content-Length
    def test_conflicting_content_length(self):
        def build(p):
            return self.options(p.via(), headers=[("Content-Length", "5"), ("Content-Length", "3")],
                                body="hello", content_length=False)
        self.assertRefused(self.udp(build), 400, r"content.length")
        # over a stream the framing is unknowable: 400, then the connection is closed
        with TcpPeer(self.srv.tcp) as p:
            p.send(build(p))
            self.assertTrue(p.closed_by_peer(), "the connection stayed open")
            self.assertRefused(p.recv_msg(0.1), 400, r"content.length")

    def test_missing_content_length_tcp(self):
        # mandatory on a stream (RFC 3261 §18.3): 400, then close
        with TcpPeer(self.srv.tcp) as p:
            p.send(self.options(p.via(), content_length=False))
            self.assertTrue(p.closed_by_peer(), "the connection stayed open")
            self.assertRefused(p.recv_msg(0.1), 400, r"content.length")

    def test_udp_body_shorter_than_content_length(self):
        reply = self.udp(lambda p: self.options(p.via(), headers=[("Content-Length", "100")],
                                                body="only ten..", content_length=False))
        self.assertRefused(reply, 400, r"content.length|incomplete|truncat")

    def test_udp_body_longer_than_content_length(self):
        # the octets after Content-Length are ignored (RFC 3261 §18.3)
        with UdpPeer() as p:
            req = self.options(p.via(), headers=[("Content-Length", "5")], body="helloEXTRA GARBAGE",
                               content_length=False)
            reply = p.request(self.srv.udp, req)
            self.assertIsNotNone(reply)
            self.assertEqual(reply.status, 200, reply.start)
            self.assertEqual(reply.get("Call-ID"), req.get("Call-ID"))

    # -- size
    def test_tcp_2mb_message(self):
        with TcpPeer(self.srv.tcp) as p:
            req = self.options(p.via(), body=b"x" * (2 << 20))
            try:
                p.send(req)
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed while we were still sending: fine
            self.assertTrue(p.closed_by_peer(), "a 2 MB message did not close the connection")
            reply = p.recv_msg(0.1)
            self.assertTrue(reply is None or reply.status == 513, reply)
        # a 2 MB header block
        with TcpPeer(self.srv.tcp) as p:
            try:
                p.send(b"OPTIONS sip:x SIP/2.0\r\n" + b"X-Pad: " + b"y" * (2 << 20))
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.assertTrue(p.closed_by_peer(), "a 2 MB header line did not close the connection")

    def test_largest_udp_datagram(self):
        with UdpPeer() as p:
            req = self.options(p.via(), headers=[("Content-Type", "text/plain")])
            room = 65507 - len(bytes(req)) - 4  # Content-Length grows from 1 to 5 digits
            req = self.options(p.via(), headers=[("Content-Type", "text/plain")], body=b"z" * room)
            self.assertEqual(len(bytes(req)), 65507)
            reply = p.request(self.srv.udp, req)
            self.assertIsNotNone(reply, f"no answer to a 65507-octet datagram\n{self.srv.log()[-2000:]}")
            self.assertEqual(reply.status, 200, reply.start)

    def test_1000_vias(self):
        # short ones, so that the request and its reply still fit a UDP datagram
        others = [f"SIP/2.0/UDP 10.0.0.{i % 250 + 1};branch=z9hG4bK{i}" for i in range(999)]
        for transport in ("udp", "tcp"):
            with (UdpPeer() if transport == "udp" else TcpPeer(self.srv.tcp)) as p:
                req = self.options([p.via()] + others)
                reply = p.request(self.srv.udp, req) if transport == "udp" else p.request(req)
                self.assertIsNotNone(reply, f"no answer over {transport}\n{self.srv.log()[-2000:]}")
                self.assertEqual(reply.status, 200, reply.start)
                self.assertEqual(reply.vias()[1:], others)

    def test_10kb_uri_user(self):
        user = "u" * 10240
        for transport in ("udp", "tcp"):
            with (UdpPeer() if transport == "udp" else TcpPeer(self.srv.tcp)) as p:
                req = make_request("OPTIONS", self.srv.uri(user=user), p.via())
                reply = p.request(self.srv.udp, req) if transport == "udp" else p.request(req)
                self.assertIsNotNone(reply, f"no answer over {transport}")
                self.assertEqual(reply.status, 200, reply.start)

    # -- odd octets and old peers
    def test_nul_in_header(self):
        self.each_transport(lambda p: self.options(p.via(), call_id="abc\x00def@ksrtest"),
                            400, r"NUL|Call-ID|header")

    def test_nul_as_quoted_pair_is_fine(self):
        # RFC 3261 §25.1 allows a NUL as a quoted-pair inside a quoted string (RFC 4475 intmeth)
        with UdpPeer() as p:
            req = self.options(p.via(), frm='"a\\\x00b" <sip:alice@client.invalid>;tag=nul1')
            reply = p.request(self.srv.udp, req)
            self.assertIsNotNone(reply)
            self.assertEqual(reply.status, 200, reply.start)

    def test_via_without_branch(self):
        # an RFC 2543 request is processed like any other
        for transport in ("udp", "tcp"):
            with (UdpPeer() if transport == "udp" else TcpPeer(self.srv.tcp)) as p:
                via = f"SIP/2.0/{p.transport} {LOCAL4}:{p.port};rport"
                req = self.options(via)
                reply = p.request(self.srv.udp, req) if transport == "udp" else p.request(req)
                self.assertIsNotNone(reply, f"no answer over {transport}")
                self.assertEqual(reply.status, 200, reply.start)
                self.assertNotIn("branch", parse_via(reply.vias()[0]).params)
                again = p.request(self.srv.udp, req) if transport == "udp" else p.request(req)
                self.assertEqual(again.tag("To"), reply.tag("To"))

    # -- keep-alive
    def test_tcp_crlf_keepalive(self):
        with TcpPeer(self.srv.tcp) as p:
            p.send(b"\r\n\r\n")
            self.assertEqual(p.recv_bytes(2), b"\r\n", "no CRLF pong")
            self.assertEqual(p.recv_bytes(1, timeout=0.3), b"", "more than one CRLF")
            reply = p.request(self.options(p.via()))
            self.assertIsNotNone(reply, "the connection is not usable after a keep-alive")
            self.assertEqual(reply.status, 200)

    def test_udp_crlf_keepalive_ignored(self):
        with UdpPeer() as p:
            p.send(b"\r\n\r\n", self.srv.udp)
            p.send(b"\r\n", self.srv.udp)
            self.assertTrue(p.quiet(), "a UDP keep-alive was answered")


class TcpLimitsTest(unittest.TestCase):
    MAX = 4096

    def test_header_block_that_never_ends(self):
        with Server(config={"tcp": {"max_message_size": self.MAX}}) as srv, TcpPeer(srv.tcp) as p:
            head = b"OPTIONS " + srv.uri().encode() + b" SIP/2.0\r\nVia: " + p.via().encode() + b"\r\n"
            pad = b"X-Pad: " + b"p" * 90 + b"\r\n"
            p.send(head + pad * ((self.MAX - 1000) // len(pad)))
            self.assertFalse(p.closed_by_peer(0.3), "closed before max_message_size was reached")
            p.send(pad * (2000 // len(pad)))
            self.assertTrue(p.closed_by_peer(), "still open past max_message_size")
            self.assertEqual(p.buf, b"")
            still_serving(self, srv)

    def test_idle_connection_closed(self):
        with Server(config={"tcp": {"idle_timeout": 1}}) as srv, TcpPeer(srv.tcp) as p:
            self.assertEqual(p.request(make_request("OPTIONS", srv.uri(), p.via())).status, 200)
            self.assertFalse(p.closed_by_peer(0.5), "closed before idle_timeout")
            self.assertTrue(p.closed_by_peer(3.0), "an idle connection was kept past idle_timeout")

    def test_stalled_message_closed_after_read_timeout(self):
        with Server(config={"tcp": {"read_timeout": 1}}) as srv, TcpPeer(srv.tcp) as p:
            p.send(cut(make_request("OPTIONS", srv.uri(), p.via()), b"CSeq"))
            t0 = time.monotonic()
            self.assertFalse(p.closed_by_peer(0.5), "closed at once: the rest may still come")
            self.assertTrue(p.closed_by_peer(3.0), "a stalled message kept the connection open")
            self.assertLess(time.monotonic() - t0, 3.0)
            still_serving(self, srv)


class StatsTest(unittest.TestCase):
    """What the bad-input tests do is counted (read over the control socket)."""

    def test_counters(self):
        with Server() as srv:
            try:
                before = srv.stats()
            except OSError as e:
                self.skipTest(f"no control socket yet ({e})")
            with UdpPeer() as p:
                p.send(b"garbage\r\n\r\n", srv.udp)
                p.send(bytes(make_request("OPTIONS", srv.uri(), p.via())).replace(b"SIP/2.0\r\n", b"\r\n", 1),
                       srv.udp)
                self.assertIsNotNone(p.recv_msg())
            with TcpPeer(srv.tcp) as p:
                p.send(b"\r\n\r\n")
                self.assertEqual(p.recv_bytes(2), b"\r\n")
                p.send(make_request("OPTIONS", srv.uri(), p.via(), content_length=False))
                self.assertTrue(p.closed_by_peer())
            deadline = time.monotonic() + 2
            want = {"core.bad_msgs_dropped": 1, "core.bad_requests_answered": 2,
                    "net.tcp_keepalives": 1, "net.tcp_framing_errors": 1}
            while True:
                after = srv.stats()
                grown = {k: after.get(k, 0) - before.get(k, 0) for k in want}
                if all(grown[k] >= n for k, n in want.items()) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            for k, n in want.items():
                self.assertIn(k, after)
                self.assertGreaterEqual(grown[k], n, k)


# ---------------------------------------------------------------- torture messages

def torture_rows():
    d = testdata_dir() / "torture"
    with open(d / "INDEX.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            yield row, (d / (row["name"] + ".sip")).read_bytes()


def top_via_target(raw):
    """(port the reply goes to, or None for 'the source port' (rport)) from the first Via, or False."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    head = re.sub(r"\r\n[ \t]+", " ", head)
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in ("via", "v"):
            first = value.split(",")[0]
            m = re.match(r"\s*SIP\s*/\s*[^/]+/\s*\S+\s+(\[[^\]]*\]|[^:;\s]+)\s*(?::\s*(\d+))?", first, re.I)
            if not m:
                return False
            if re.search(r";\s*rport\b", first, re.I):
                return None
            return int(m.group(2) or 5060)
    return False


def reply_expectation(row):
    """What a request row must get over UDP: 'code:N', 'final' (any >= 200) or None (not checked)."""
    action = row["expected_server_action"]
    action = action[5:] if action.startswith("UDP: ") else action
    lenient = re.search(r"tolerate|lenient|or ignore", action)
    m = re.match(r"reply (400|505)\b", action)
    if row["expected"] == "invalid" and m:
        return "final" if lenient else "code:" + m.group(1)
    return "final"


class TortureTest(unittest.TestCase):
    def test_torture_messages_over_udp(self):
        rows = list(torture_rows())
        self.assertGreater(len(rows), 50)
        socks = {}
        try:
            with Server() as srv:
                for row, raw in rows:
                    with self.subTest(row["name"]):
                        self.check_one(srv, socks, row, raw)
                still_serving(self, srv)
        finally:
            for s in socks.values():
                s.close()

    def peer_for(self, socks, port):
        """A UDP socket on 127.0.0.1:port (where a reply without rport goes), or None if busy."""
        if port not in socks:
            try:
                socks[port] = UdpPeer(LOCAL4, port)
            except OSError:
                socks[port] = None
        return socks[port]

    @staticmethod
    def reply_to(peer, raw, timeout):
        """The first datagram that is a reply to raw (same Call-ID, when it has one), or None."""
        m = re.search(rb"\r\n(?:call-id|i)[ \t]*:[ \t]*([^\r\n]*)", raw, re.I)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            got = peer.recv(left) if left > 0 else None
            if not got:
                return None
            try:
                reply = parse(got[0])
            except ValueError:
                continue
            if not m or reply.get("Call-ID") == m.group(1).decode("latin-1").strip():
                return reply

    def check_one(self, srv, socks, row, raw):
        is_request = row["kind"] == "request"
        target = top_via_target(raw)
        port = target if is_request and target else 0
        peer = self.peer_for(socks, port) if port else UdpPeer()
        if peer is None:
            self.skipTest(f"127.0.0.1:{port} is busy: the reply would go there")
        try:
            peer.drain()
            peer.send(raw, srv.udp)
            reply = self.reply_to(peer, raw, 1.0 if is_request and target is not False else QUIET)
            why = f"{row['name']}: {row['expected']}, {row['expected_server_action']!r}: got " + (
                reply.start if reply else "nothing")
            self.assertTrue(srv.alive(), "ksrd died on " + row["name"])
            if not is_request:
                self.assertIsNone(reply, why)
                return
            if target is False:
                return  # no usable Via: nothing to check but survival
            expect = reply_expectation(row)
            self.assertIsNotNone(reply, why)
            if expect.startswith("code:"):
                self.assertEqual(reply.status, int(expect[5:]), why)
                self.assertTrue(reply.reason.strip(), "empty reason phrase")
            else:
                self.assertGreaterEqual(reply.status, 200, why)
            if row["expected"] == "valid" and "deliberate deviation" not in row["notes"]:
                self.assertNotIn(reply.status, (400, 505), "a valid message was refused: " + why)
        finally:
            if not port:
                peer.close()


if __name__ == "__main__":
    unittest.main()
