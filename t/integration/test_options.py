# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""OPTIONS to the default route: stateless 200 over every transport, and refusals."""
import unittest

from ksrtest import (LOCAL4, LOCAL6, Server, TcpPeer, Uas, UdpPeer, have_ipv6, make_request,
                     parse_via)


class OptionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ipv6 = have_ipv6()
        cls.srv = Server(ipv6=cls.ipv6)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def assertEchoed(self, req, reply, src, rport):
        """RFC 3261 §8.2.6.2: the reply copies the request's headers; §18.2.1 / RFC 3581 for Via."""
        self.assertIsNotNone(reply, "no reply")
        self.assertEqual(reply.status, 200, reply.start)
        for name in ("From", "Call-ID", "CSeq"):
            self.assertEqual(reply.get_all(name), req.get_all(name), name)
        self.assertEqual(len(reply.vias()), len(req.vias()))
        self.assertEqual(reply.vias()[1:], req.vias()[1:])
        sent, got = parse_via(req.vias()[0]), parse_via(reply.vias()[0])
        self.assertEqual((got.version, got.transport, got.host, got.port),
                         (sent.version, sent.transport, sent.host, sent.port))
        want = dict(sent.params)
        src_ip, src_port = src
        if rport:
            want["rport"] = str(src_port)
        # received only when sent-by is not the source address (RFC 3261 §18.2.1),
        # always with rport (RFC 3581 §4); a bare IPv6 address (RFC 5118 §4.5)
        if rport or sent.host.strip("[]") != src_ip:
            want["received"] = src_ip
        self.assertEqual(got.params, want, f"top Via: sent {sent.text!r}, got {got.text!r}")
        to = req.get("To")
        self.assertTrue(reply.get("To").startswith(to), reply.get("To"))
        self.assertRegex(reply.get("To")[len(to):], r"^;tag=[^;\s]+$")
        self.assertEqual(reply.get("Content-Length"), "0")

    def roundtrip_udp(self, host, dest, rport=True, sent_by=None):
        with UdpPeer(host) as p:
            req = make_request("OPTIONS", self.srv.uri(host=host), p.via(rport=rport, host=sent_by))
            reply = p.request(dest, req)
            self.assertEchoed(req, reply, (p.host, p.port), rport)
            return reply

    def roundtrip_tcp(self, host, dest):
        with TcpPeer(dest) as p:
            req = make_request("OPTIONS", self.srv.uri(host=host), p.via())
            reply = p.request(req)
            self.assertEchoed(req, reply, (p.host, p.port), True)
            # the connection stays usable for a second transaction
            req2 = make_request("OPTIONS", self.srv.uri(host=host), p.via())
            self.assertEchoed(req2, p.request(req2), (p.host, p.port), True)

    def test_udp_rport(self):
        self.roundtrip_udp(LOCAL4, self.srv.udp)

    def test_udp_no_rport_same_address(self):
        # sent-by is the source address: the Via comes back unchanged
        self.roundtrip_udp(LOCAL4, self.srv.udp, rport=False)

    def test_udp_no_rport_other_address(self):
        # sent-by names another host: received= is added, the reply goes to
        # the source IP and the sent-by port (§18.2.2), which is ours
        self.roundtrip_udp(LOCAL4, self.srv.udp, rport=False, sent_by="192.0.2.7")

    def test_tcp(self):
        self.roundtrip_tcp(LOCAL4, self.srv.tcp)

    def test_ipv6_udp(self):
        if not self.ipv6:
            self.skipTest("no IPv6 loopback")
        self.roundtrip_udp(LOCAL6, self.srv.udp6)
        self.roundtrip_udp(LOCAL6, self.srv.udp6, rport=False)

    def test_ipv6_tcp(self):
        if not self.ipv6:
            self.skipTest("no IPv6 loopback")
        self.roundtrip_tcp(LOCAL6, self.srv.tcp6)

    def test_tcp_pipelined_and_dripped(self):
        # framing by Content-Length: two requests in one segment, then one a byte at a time
        with TcpPeer(self.srv.tcp) as p:
            a = make_request("MESSAGE", self.srv.uri(), p.via(), body="first body")
            b = make_request("OPTIONS", self.srv.uri(), p.via())
            p.send(bytes(a) + bytes(b))
            ra, rb = p.recv_msg(), p.recv_msg()
            self.assertIsNotNone(ra)
            self.assertIsNotNone(rb)
            self.assertEqual((ra.get("Call-ID"), ra.status), (a.get("Call-ID"), 403))
            self.assertEqual((rb.get("Call-ID"), rb.status), (b.get("Call-ID"), 200))
            c = make_request("OPTIONS", self.srv.uri(), p.via(), body="drip")
            for i in range(0, len(bytes(c)), 7):
                p.send(bytes(c)[i:i + 7])
            rc = p.recv_msg()
            self.assertIsNotNone(rc, "no answer to a message sent in small pieces")
            self.assertEqual(rc.get("Call-ID"), c.get("Call-ID"))

    def test_compact_names_and_via_list(self):
        # compact header names, two via-parms on one line: the reply keeps them as they were,
        # received/rport going to the first only
        with UdpPeer() as p:
            req = make_request("OPTIONS", self.srv.uri(), [])
            req.headers = [("v", p.via() + " , SIP/2.0/UDP 10.1.2.3:5070;branch=z9hG4bKsecond")] + [
                ({"From": "f", "To": "t", "Call-ID": "i", "Content-Length": "l"}.get(n, n), v)
                for n, v in req.headers]
            reply = p.request(self.srv.udp, req)
            self.assertIsNotNone(reply, "no answer with compact header names")
            self.assertEqual(reply.status, 200, reply.start)
            self.assertEqual(reply.vias()[1], "SIP/2.0/UDP 10.1.2.3:5070;branch=z9hG4bKsecond")
            top = parse_via(reply.vias()[0])
            self.assertEqual((top.params.get("rport"), top.params.get("received")), (str(p.port), LOCAL4))
            for name in ("From", "Call-ID", "CSeq"):
                self.assertEqual(reply.get(name), req.get(name), name)
            self.assertTrue(reply.get("To").startswith(req.get("To")))

    def test_stale_received_and_rport_replaced(self):
        with UdpPeer() as p:
            req = make_request("OPTIONS", self.srv.uri(), p.via(rport=False) + ";received=10.9.9.9;rport=1111")
            reply = p.request(self.srv.udp, req)
            self.assertIsNotNone(reply, "no answer: the stale rport was followed?")
            top = parse_via(reply.vias()[0])
            self.assertEqual(top.param_order.count("received"), 1, top.text)
            self.assertEqual(top.param_order.count("rport"), 1, top.text)
            self.assertEqual((top.params["received"], top.params["rport"]), (LOCAL4, str(p.port)))

    def test_retransmission_same_to_tag(self):
        with UdpPeer() as p:
            req = make_request("OPTIONS", self.srv.uri(), p.via())
            first = p.request(self.srv.udp, req)
            again = p.request(self.srv.udp, req)
            self.assertIsNotNone(first)
            self.assertIsNotNone(again)
            self.assertEqual(first.tag("To"), again.tag("To"))
            # a new transaction gets its own tag
            other = p.request(self.srv.udp, make_request("OPTIONS", self.srv.uri(), p.via()))
            self.assertNotEqual(other.tag("To"), first.tag("To"))

    def test_to_tag_kept(self):
        with UdpPeer() as p:
            req = make_request("OPTIONS", self.srv.uri(), p.via(), to=f"<{self.srv.uri()}>;tag=given")
            reply = p.request(self.srv.udp, req)
            self.assertEqual(reply.status, 200)
            self.assertEqual(reply.get("To"), req.get("To"))

    def test_not_for_us_is_refused_not_relayed(self):
        # a live UAS at the R-URI: an open relay would forward there
        with Uas("udp") as uas, UdpPeer() as p:
            for method in ("OPTIONS", "INVITE", "MESSAGE"):
                req = make_request(method, f"sip:bob@{LOCAL4}:{uas.port}", p.via(), body="hello")
                reply = p.request(self.srv.udp, req)
                self.assertIsNotNone(reply, method)
                self.assertEqual(reply.status, 403, reply.start)
                self.assertEqual(reply.get("Call-ID"), req.get("Call-ID"))
            self.assertTrue(uas.no_request(), "the request was relayed")
        with Uas("tcp") as uas, TcpPeer(self.srv.tcp) as p:
            req = make_request("INVITE", f"sip:bob@{LOCAL4}:{uas.port};transport=tcp", p.via())
            self.assertEqual(p.request(req).status, 403)
            self.assertTrue(uas.no_request(), "the request was relayed")

    def test_ack_gets_no_reply(self):
        with UdpPeer() as p:
            p.send(make_request("ACK", self.srv.uri(), p.via()), self.srv.udp)
            p.send(make_request("ACK", "sip:bob@example.com", p.via()), self.srv.udp)
            self.assertTrue(p.quiet(), "ACK was answered")
        with TcpPeer(self.srv.tcp) as p:
            p.send(make_request("ACK", self.srv.uri(), p.via()))
            self.assertIsNone(p.recv_msg(0.6), "ACK was answered")
            # and the connection is still fine
            self.assertEqual(p.request(make_request("OPTIONS", self.srv.uri(), p.via())).status, 200)


if __name__ == "__main__":
    unittest.main()
