# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""Stateless forwarding (RFC 3261 §16.11): requests to a test UAS, replies back along the Vias."""
import unittest

from ksrtest import (LOCAL4, Server, TcpPeer, Uas, UdpPeer, make_request, make_response,
                     new_branch, parse_via)

# The R-URI user picks the UAS: sip:udp@... or sip:tcp@...
ROUTE = """
local UAS = { udp = "sip:127.0.0.1:%d;transport=udp", tcp = "sip:127.0.0.1:%d;transport=tcp" }

function ksr_request_route()
	if KSR.is_OPTIONS() and KSR.is_myself_ruri() then
		KSR.sl.sl_send_reply(200, "OK")
		return
	end
	KSR.setdsturi(UAS[KSR.pv.get("$rU")] or UAS.udp)
	if KSR.forward() < 0 then
		if KSR.pv.getw("$hdr(Max-Forwards)") == "0" then
			KSR.sl.sl_send_reply(483, "Too Many Hops")
		else
			KSR.sl.sl_send_reply(500, "Forwarding failed")
		end
	end
end

function ksr_reply_route()
	if KSR.pv.get("$rr") == "Drop Me" then
		KSR.x.drop()
	end
end
"""


class ForwardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.uas = {"udp": Uas("udp"), "tcp": Uas("tcp")}
        cls.srv = Server(script=ROUTE % (cls.uas["udp"].port, cls.uas["tcp"].port))
        try:
            cls.srv.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for u in cls.uas.values():
            u.close()
        cls.srv.close()

    def setUp(self):
        for u in self.uas.values():
            u.status, u.reason, u.content_length = 200, "OK", True
            u.drain()

    def forwarded(self, leg):
        rec = self.uas[leg].wait_request()
        self.assertIsNotNone(rec, f"nothing reached the {leg} UAS\n{self.srv.log()[-3000:]}")
        return rec

    def assertForwarded(self, req, rec, leg, mf="69"):
        """The UAS got req with our Via on top and only the allowed changes."""
        got = rec.msg
        self.assertEqual(got.start, req.start, "request line (R-URI) changed")
        top = parse_via(got.vias()[0])
        self.assertEqual(top.transport.upper(), leg.upper())
        self.assertEqual((top.host, top.port), (LOCAL4, self.srv.port), top.text)
        self.assertTrue(top.branch and top.branch.startswith("z9hG4bK") and len(top.branch) > 7, top.text)
        self.assertEqual(len(got.vias()), len(req.vias()) + 1)
        # the client's Via below ours: the same, plus received/rport at most (§18.2.1)
        sent, below = parse_via(req.vias()[0]), parse_via(got.vias()[1])
        self.assertEqual((below.transport, below.host, below.port), (sent.transport, sent.host, sent.port))
        extra = {k: v for k, v in below.params.items() if sent.params.get(k, "\0") != v}
        self.assertLessEqual(set(extra), {"received", "rport"}, below.text)
        self.assertEqual(got.get_all("Max-Forwards"), [mf])
        for name in ("From", "To", "Call-ID", "CSeq"):
            self.assertEqual(got.get_all(name), req.get_all(name), name)
        self.assertEqual(got.body, req.body)
        return top

    def assertReplyBack(self, reply, req, status=200):
        """The client got the UAS's reply with our Via removed."""
        self.assertIsNotNone(reply, f"the reply did not come back\n{self.srv.log()[-3000:]}")
        self.assertEqual(reply.status, status, reply.start)
        self.assertEqual(len(reply.vias()), 1, reply.vias())
        self.assertEqual(parse_via(reply.vias()[0]).branch, parse_via(req.vias()[0]).branch)
        self.assertEqual(reply.get("Call-ID"), req.get("Call-ID"))

    # ------------------------------------------------------------ UDP -> UDP

    def test_udp_request_and_reply(self):
        with UdpPeer() as p:
            req = make_request("MESSAGE", "sip:udp@example.com", p.via(),
                               headers=[("Content-Type", "text/plain")], body="hello")
            p.send(req, self.srv.udp)
            self.assertForwarded(req, self.forwarded("udp"), "udp")
            self.assertReplyBack(p.recv_msg(), req)

    def test_max_forwards_added_when_absent(self):
        with UdpPeer() as p:
            req = make_request("OPTIONS", "sip:udp@example.com", p.via(), max_forwards=None)
            p.send(req, self.srv.udp)
            self.assertForwarded(req, self.forwarded("udp"), "udp", mf="70")
            self.assertReplyBack(p.recv_msg(), req)

    def test_max_forwards_one_leaves_with_zero(self):
        with UdpPeer() as p:
            req = make_request("OPTIONS", "sip:udp@example.com", p.via(), max_forwards=1)
            p.send(req, self.srv.udp)
            self.assertForwarded(req, self.forwarded("udp"), "udp", mf="0")

    def test_max_forwards_zero_not_forwarded(self):
        with UdpPeer() as p:
            req = make_request("MESSAGE", "sip:udp@example.com", p.via(), max_forwards=0)
            reply = p.request(self.srv.udp, req)
            self.assertIsNotNone(reply, "no reply to Max-Forwards: 0")
            self.assertEqual(reply.status, 483, reply.start)
            self.assertTrue(self.uas["udp"].no_request(), "Max-Forwards: 0 was forwarded")

    def test_retransmission_keeps_branch(self):
        with UdpPeer() as p:
            req = make_request("INVITE", "sip:udp@example.com", p.via())
            self.uas["udp"].status = None
            p.send(req, self.srv.udp)
            first = parse_via(self.forwarded("udp").msg.vias()[0]).branch
            p.send(req, self.srv.udp)
            again = parse_via(self.forwarded("udp").msg.vias()[0]).branch
            self.assertEqual(first, again)
            # a new transaction leaves with another branch
            p.send(make_request("INVITE", "sip:udp@example.com", p.via()), self.srv.udp)
            self.assertNotEqual(parse_via(self.forwarded("udp").msg.vias()[0]).branch, first)

    def test_ack_for_error_reply_keeps_invite_branch(self):
        # §16.11: the ACK for a non-2xx reply carries the INVITE's branch, and so
        # must the request it turns into
        with UdpPeer() as p:
            self.uas["udp"].status, self.uas["udp"].reason = 486, "Busy Here"
            via = p.via()
            inv = make_request("INVITE", "sip:udp@example.com", via, cseq=1)
            p.send(inv, self.srv.udp)
            inv_branch = parse_via(self.forwarded("udp").msg.vias()[0]).branch
            reply = p.recv_msg()
            self.assertReplyBack(reply, inv, 486)
            ack = make_request("ACK", "sip:udp@example.com", via, cseq=1, call_id=inv.get("Call-ID"),
                               frm=inv.get("From"), to=reply.get("To"))
            p.send(ack, self.srv.udp)
            rec = self.forwarded("udp")
            self.assertEqual(rec.msg.method, "ACK")
            self.assertEqual(parse_via(rec.msg.vias()[0]).branch, inv_branch)
            self.assertTrue(p.quiet(), "ACK was answered")

    def test_reply_goes_to_source_port_with_rport(self):
        # sent-by names another of our sockets; with rport the reply must come
        # to the port the request came from (RFC 3581 §4)
        with UdpPeer() as p, UdpPeer() as decoy:
            req = make_request("MESSAGE", "sip:udp@example.com", p.via(port=decoy.port, rport=True))
            p.send(req, self.srv.udp)
            self.forwarded("udp")
            self.assertReplyBack(p.recv_msg(), req)
            self.assertTrue(decoy.quiet(0.2), "the reply went to the sent-by port despite rport")

    def test_reply_goes_to_sent_by_without_rport(self):
        with UdpPeer() as p, UdpPeer() as listener:
            req = make_request("MESSAGE", "sip:udp@example.com", p.via(port=listener.port, rport=False))
            p.send(req, self.srv.udp)
            self.forwarded("udp")
            self.assertReplyBack(listener.recv_msg(), req)
            self.assertTrue(p.quiet(0.2), "the reply went to the source port without rport")

    def test_reply_goes_to_received(self):
        # sent-by is a host that does not exist here: received= (the source IP) wins
        with UdpPeer() as p:
            req = make_request("MESSAGE", "sip:udp@example.com", p.via(host="192.0.2.33", rport=True))
            p.send(req, self.srv.udp)
            below = parse_via(self.forwarded("udp").msg.vias()[1])
            self.assertEqual(below.params.get("received"), LOCAL4, below.text)
            self.assertEqual(below.params.get("rport"), str(p.port), below.text)
            self.assertReplyBack(p.recv_msg(), req)

    def test_reply_with_foreign_top_via_dropped(self):
        uas = self.uas["udp"]
        uas.status = None
        with UdpPeer() as p:
            req = make_request("MESSAGE", "sip:udp@example.com", p.via())
            p.send(req, self.srv.udp)
            rec = self.forwarded("udp")
            # a reply whose top Via is someone else's, the client's Via below it
            forged = make_response(rec.msg, 200)
            vias = forged.get_all("Via")
            forged.remove("Via")
            forged.headers[0:0] = [("Via", f"SIP/2.0/UDP 192.0.2.99:5060;branch={new_branch()}"),
                                   ("Via", vias[1])]
            uas.send_to(forged, self.srv.udp)
            # and one with our Via but nothing below it
            alone = make_response(rec.msg, 200)
            alone.remove("Via")
            alone.headers.insert(0, ("Via", vias[0]))
            uas.send_to(alone, self.srv.udp)
            self.assertTrue(p.quiet(), "a reply not for us was forwarded")
            # the real reply still goes through
            uas.reply(rec, 200)
            self.assertReplyBack(p.recv_msg(), req)

    def test_via_lists_on_one_line(self):
        # the request's Vias in one comma list; the UAS answers with all of them on one line
        uas = self.uas["udp"]
        uas.status = None
        with UdpPeer() as p:
            second = "SIP/2.0/UDP 10.1.2.3:5070;branch=z9hG4bKsecond"
            req = make_request("MESSAGE", "sip:udp@example.com", [])
            req.headers.insert(0, ("Via", p.via() + ", " + second))
            p.send(req, self.srv.udp)
            rec = self.forwarded("udp")
            self.assertEqual(rec.msg.vias()[2], second)
            reply = make_response(rec.msg, 200)
            vias = reply.get_all("Via")
            reply.remove("Via")
            reply.headers.insert(0, ("Via", ", ".join(vias)))
            uas.send_along_via(reply, rec)
            back = p.recv_msg()
            self.assertIsNotNone(back, f"the reply did not come back\n{self.srv.log()[-2000:]}")
            self.assertEqual(len(back.vias()), 2, back.vias())
            self.assertEqual(back.vias()[1], second)
            self.assertEqual(parse_via(back.vias()[0]).branch, parse_via(req.vias()[0]).branch)

    def test_reply_route_drop(self):
        with UdpPeer() as p:
            self.uas["udp"].reason = "Drop Me"
            p.send(make_request("MESSAGE", "sip:udp@example.com", p.via()), self.srv.udp)
            self.forwarded("udp")
            self.assertTrue(p.quiet(), "ksr_reply_route's KSR.x.drop() did not drop the reply")

    # ------------------------------------------------------------ bridging

    def test_udp_client_tcp_uas(self):
        with UdpPeer() as p:
            # no Content-Length over UDP: the TCP leg must get one
            req = make_request("OPTIONS", "sip:tcp@example.com", p.via(), content_length=False)
            p.send(req, self.srv.udp)
            rec = self.forwarded("tcp")
            self.assertForwarded(req, rec, "tcp")
            self.assertEqual(rec.msg.get_all("Content-Length"), ["0"])
            self.assertReplyBack(p.recv_msg(), req)
            # with a body
            req = make_request("MESSAGE", "sip:tcp@example.com", p.via(), body="x" * 300)
            p.send(req, self.srv.udp)
            rec = self.forwarded("tcp")
            self.assertForwarded(req, rec, "tcp")
            self.assertEqual(rec.msg.get_all("Content-Length"), ["300"])
            self.assertReplyBack(p.recv_msg(), req)

    def test_tcp_client_udp_uas(self):
        self.uas["udp"].content_length = False  # the TCP leg back must get one
        with TcpPeer(self.srv.tcp) as p:
            req = make_request("MESSAGE", "sip:udp@example.com", p.via(), body="over tcp")
            p.send(req)
            self.assertForwarded(req, self.forwarded("udp"), "udp")
            reply = p.recv_msg()
            self.assertReplyBack(reply, req)
            self.assertEqual(reply.get_all("Content-Length"), ["0"])

    def test_tcp_client_tcp_uas(self):
        with TcpPeer(self.srv.tcp) as p:
            for _ in range(2):
                req = make_request("MESSAGE", "sip:tcp@example.com", p.via(), body="both tcp")
                p.send(req)
                self.assertForwarded(req, self.forwarded("tcp"), "tcp")
                self.assertReplyBack(p.recv_msg(), req)


if __name__ == "__main__":
    unittest.main()
