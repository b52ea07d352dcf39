# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
KSR.sanity from a real route. A failing check sends its own reply (Kamailio's
noreply = 0); the route then reports the return code in the log ("after rc=N",
with the Call-ID) and tries a 200 "after rc=N", which ksrd refuses when the
request was already answered (one final reply per request): so the client sees
the check's reply when a check failed, the 200 when none did.
"""
import re
import unittest

from ksrtest import RouteCase, make_request, make_response

ROUTE = r'''
local function after(rc)
	KSR.info("after rc=" .. rc)
	KSR.sl.sl_send_reply(200, "after rc=" .. rc)
end

local cases = {}
cases.check = function()
	local m = tonumber(KSR.pv.get("$hdr(X-Checks)"))
	local u = tonumber(KSR.pv.get("$hdr(X-Uri-Checks)") or "7")
	after(KSR.sanity.sanity_check(m, u))
end
cases.defaults = function() after(KSR.sanity.sanity_check_defaults()) end
cases.reply = function()
	local rc = KSR.sanity.sanity_check(256, 7)
	after(rc .. "," .. KSR.sanity.sanity_reply())
end
cases.ack = function()
	local rc = KSR.sanity.sanity_check(256, 7)
	KSR.info("sanity on ACK rc=" .. rc .. "\n")
end
cases.relay = function() KSR.forward_uri(KSR.pv.get("$hdr(X-Dest)")) end

function ksr_request_route()
	local case = KSR.pv.get("$hdr(X-Case)")
	if case == nil then
		if KSR.is_OPTIONS() then KSR.sl.sl_send_reply(200, "OK") end
		return
	end
	cases[case]()
end

function ksr_reply_route()
	local m = KSR.pv.get("$hdr(X-Reply-Checks)")
	if m then
		KSR.hdr.append("X-Rc: " .. KSR.sanity.sanity_check(tonumber(m), 7) .. "\r\n")
	end
end
'''

ALL_CHECKS = 32767   # every bit Kamailio defines
KAMAILIO_CFG = 17895  # what kamailio.cfg's REQINIT uses


class SanityTest(RouteCase):
    ROUTE = ROUTE

    def request(self, checks=None, uri_checks=None, headers=(), case="check", ruri=None, **kw):
        hdrs = [("X-Case", case)]
        if checks is not None:
            hdrs.append(("X-Checks", str(checks)))
        if uri_checks is not None:
            hdrs.append(("X-Uri-Checks", str(uri_checks)))
        kw.setdefault("to", "<sip:bob@example.com>")
        return make_request(kw.pop("method", "MESSAGE"), ruri or self.srv.uri("bob"), self.peer.via(),
                            headers=hdrs + list(headers), **kw)

    def replies(self, msg, n):
        """Sends msg and collects n replies."""
        self.peer.send(msg, self.srv.udp)
        out = []
        for _ in range(n):
            r = self.peer.recv_msg()
            self.assertIsNotNone(r, f"got {[x.start for x in out]}, expected {n} replies\n{self.srv.log()[-2000:]}")
            out.append(r)
        self.assertTrue(self.peer.quiet(0.3), "more replies than expected")
        return out

    def passes(self, msg):
        (r,) = self.replies(msg, 1)
        self.assertEqual((r.status, r.reason), (200, "after rc=1"))

    def after(self, msg, rc):
        """The route logged the return code for this request."""
        line = self.srv.wait_log(r"(?m)\[" + re.escape(msg.get("Call-ID")) + r"\] after rc=" + re.escape(rc) + r"$")
        self.assertIsNotNone(line, f"no 'after rc={rc}' for {msg.get('Call-ID')}\n{self.srv.log()[-2000:]}")

    def fails_with(self, msg, status, reason):
        (first,) = self.replies(msg, 1)
        self.assertEqual((first.status, first.reason), (status, reason))
        self.after(msg, "-1")
        return first

    def fails_quietly(self, msg):
        (r,) = self.replies(msg, 1)
        self.assertEqual((r.status, r.reason), (200, "after rc=-1"))

    # -- clean messages pass every check
    def test_clean_request_passes_everything(self):
        self.passes(self.request(ALL_CHECKS, 15, headers=[("Contact", "<sip:alice@192.0.2.1>"),
                                                          ("Expires", "3600")]))
        self.passes(self.request(KAMAILIO_CFG, 7))

    def test_defaults(self):
        (r,) = self.replies(self.request(case="defaults"), 1)
        self.assertEqual(r.reason, "after rc=1")
        # defaults (3047) include proxy require
        self.fails_with(self.request(case="defaults", headers=[("Proxy-Require", "foo")]), 420,
                        "Bad Proxy Require Extension")

    # -- Expires (256)
    def test_expires(self):
        self.fails_with(self.request(256, headers=[("Expires", "soon")]), 400, "Bad Expires Header")
        self.fails_with(self.request(256, headers=[("Expires", "4294967297")]), 400, "Expires value is illegal")
        self.fails_with(self.request(256, headers=[("Expires", "12345678901")]), 400, "Expires value is illegal")
        # Kamailio's own bound lets 2^32 through
        self.passes(self.request(256, headers=[("Expires", "4294967296")]))
        # only the first Expires counts, and only when asked for
        self.passes(self.request(256, headers=[("Expires", "60"), ("Expires", "x")]))
        self.passes(self.request(1 | 2 | 4, headers=[("Expires", "soon")]))

    # -- Proxy-Require (512): no extension is supported
    def test_proxy_require(self):
        r = self.fails_with(self.request(512, headers=[("Proxy-Require", "sec-agree, foo")]), 420,
                            "Bad Proxy Require Extension")
        self.assertEqual(r.get("Unsupported"), "sec-agree")
        self.passes(self.request(511, headers=[("Proxy-Require", "foo")]))

    # -- R-URI (2, and 1024 with uri bit 1)
    def test_ruri_scheme(self):
        self.fails_with(self.request(2, ruri="foo:bar"), 400, "Bad Request URI")
        self.fails_with(self.request(1024, 1, ruri="foo:bar"), 400, "Bad Request URI")
        self.passes(self.request(2, ruri="urn:service:sos"))
        self.passes(self.request(2, ruri="tel:+15551234567"))
        self.passes(self.request(1024, 6, ruri="foo:bar"))

    # -- From, To, Contact URIs (1024)
    def test_parse_uris(self):
        self.fails_with(self.request(1024, 2, frm="<http://example.com/alice>;tag=a1"), 400, "Invalid From Header")
        self.fails_with(self.request(1024, 4, to="<mailto:bob@example.com>"), 400, "Invalid To Header")
        self.fails_with(self.request(1024, 8, headers=[("Contact", "<mailto:alice@example.com>")]), 400,
                        "Bad Contact URI")
        self.passes(self.request(1024, 8, headers=[("Contact", "*")]))
        self.passes(self.request(1024, 8))  # no Contact at all
        self.passes(self.request(1024, 1, frm="<http://example.com/alice>;tag=a1"))

    # -- credentials (2048 digest, 8192 authorization)
    def test_digest_credentials(self):
        good = 'Digest username="alice", realm="example.com", nonce="abc", uri="sip:example.com", response="0123"'
        self.passes(self.request(2048 | 8192, headers=[("Authorization", good)]))
        self.fails_with(self.request(2048, headers=[("Authorization", 'Digest username="alice", realm="r", '
                                                                      'uri="sip:x", response="1"')]),
                        400, "Bad Auth Credentials")
        self.fails_with(self.request(8192, headers=[("Proxy-Authorization", good.replace('"alice"', '""'))]),
                        400, "Auth Empty User")
        self.fails_with(self.request(2048, headers=[("Authorization", good.replace('"abc"', '""'))]), 400,
                        "Auth Empty Nonce")
        self.fails_with(self.request(2048, headers=[("Authorization", good.replace('"0123"', '""'))]), 400,
                        "Auth Empty Response")
        # qop=auth requires cnonce and nc
        self.fails_with(self.request(2048, headers=[("Authorization", good + ', qop=auth')]), 400,
                        "Bad Auth Credentials")
        self.passes(self.request(2048, headers=[("Authorization", good + ', qop=auth, nc=00000001, cnonce="x"')]))

    def test_non_digest_credentials(self):
        basic = [("Authorization", "Basic YWxpY2U6c2VjcmV0")]
        # 2048 insists on Digest but says nothing; 8192 lets other schemes pass
        self.fails_quietly(self.request(2048, headers=basic))
        self.passes(self.request(8192, headers=basic))

    # -- duplicate tags (4096)
    def test_duplicate_tags(self):
        self.fails_with(self.request(4096, frm="<sip:alice@example.com>;tag=1;tag=2"), 400, "Many From Tag Params")
        self.fails_with(self.request(4096, to="<sip:bob@example.com>;tag=x;TAG=y"), 400, "Many To Tag Params")
        self.passes(self.request(4096, to="<sip:bob@example.com>;tag=x"))

    # -- checks the core already enforces pass on what reaches the route
    def test_core_checked_bits_pass(self):
        self.passes(self.request(1 | 4 | 8 | 16 | 32 | 64 | 128 | 16384, body="hello",
                                 headers=[("Content-Type", "text/plain")]))

    # -- sanity_reply: the check has answered already
    def test_sanity_reply(self):
        req = self.request(case="reply", headers=[("Expires", "x")])
        (first,) = self.replies(req, 1)
        self.assertEqual((first.status, first.reason), (400, "Bad Expires Header"))
        self.after(req, "-1,1")
        (r,) = self.replies(self.request(case="reply"), 1)
        self.assertEqual(r.reason, "after rc=1,1")

    def test_ack_is_never_answered(self):
        self.peer.send(self.request(case="ack", method="ACK", headers=[("Expires", "x")]), self.srv.udp)
        self.assertIsNotNone(self.srv.wait_log(r"sanity on ACK rc=-1"))
        self.assertTrue(self.peer.quiet())

    # -- in the reply route: checks run, nothing is answered
    def reply_through(self, checks, extra):
        self.uas.status = None
        try:
            self.peer.send(self.request(case="relay", headers=[("X-Dest", self.uas.uri)]), self.srv.udp)
            got = self.uas.wait_request()
            self.assertIsNotNone(got, self.srv.log()[-2000:])
            self.uas.send_along_via(make_response(got.msg, 200, "OK",
                                                  headers=[("X-Reply-Checks", str(checks))] + extra), got)
        finally:
            self.uas.status = 200
        reply = self.peer.recv_msg()
        self.assertIsNotNone(reply, self.srv.log()[-2000:])
        self.assertTrue(self.uas.no_request(0.3), "a reply was answered")
        return reply

    def test_reply_route(self):
        self.assertEqual(self.reply_through(ALL_CHECKS, []).get("X-Rc"), "1")
        self.assertEqual(self.reply_through(256, [("Expires", "x")]).get("X-Rc"), "-1")
        # Proxy-Require concerns requests only
        self.assertEqual(self.reply_through(512, [("Proxy-Require", "foo")]).get("X-Rc"), "1")


if __name__ == "__main__":
    unittest.main()
