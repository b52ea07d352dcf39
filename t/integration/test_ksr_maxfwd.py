# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""KSR.maxfwd from a real route: return codes in the reason phrase, the header as the UAS sees it."""
import unittest

from ksrtest import RouteCase, make_request, make_response

ROUTE = r'''
local cases = {}

-- the usual REQINIT: 483 when exhausted, else relay
cases.relay = function()
	local rc = KSR.maxfwd.process_maxfwd(10)
	if rc < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops rc=" .. rc)
		return
	end
	KSR.hdr.append("X-Rc: " .. rc .. "\r\n")
	KSR.forward_uri(KSR.pv.get("$hdr(X-Dest)"))
end

cases.sequence = function()
	local p = KSR.maxfwd.process_maxfwd(10)
	KSR.sl.sl_send_reply(200, table.concat({p, KSR.maxfwd.is_maxfwd_lt(71), KSR.maxfwd.is_maxfwd_lt(70),
		KSR.maxfwd.is_maxfwd_lt(10), KSR.maxfwd.is_maxfwd_lt(9)}, ","))
end

cases.lt = function()
	KSR.sl.sl_send_reply(200, table.concat({KSR.maxfwd.is_maxfwd_lt(10), KSR.maxfwd.is_maxfwd_lt(5),
		KSR.maxfwd.is_maxfwd_lt(3), KSR.maxfwd.is_maxfwd_lt(300), KSR.maxfwd.is_maxfwd_lt(-1)}, ","))
end

cases.bad_limit = function()
	KSR.sl.sl_send_reply(200, KSR.maxfwd.process_maxfwd(256) .. "," .. KSR.maxfwd.process_maxfwd(-1))
end

function ksr_request_route()
	local case = KSR.pv.get("$hdr(X-Case)")
	if case == nil then
		if KSR.is_OPTIONS() then KSR.sl.sl_send_reply(200, "OK") end
		return
	end
	cases[case]()
end

function ksr_reply_route()
	if KSR.pv.get("$hdr(X-Reply-Case)") == "process" then
		KSR.hdr.append("X-Rc: " .. KSR.maxfwd.process_maxfwd(10) .. "," .. KSR.maxfwd.is_maxfwd_lt(10) .. "\r\n")
	end
end
'''


class MaxfwdTest(RouteCase):
    ROUTE = ROUTE

    def request(self, case, max_forwards=70):
        return make_request("MESSAGE", self.srv.uri("bob"), self.peer.via(), max_forwards=max_forwards,
                            headers=[("X-Case", case), ("X-Dest", self.uas.uri)])

    def ask(self, case, max_forwards=70):
        reply = self.peer.request(self.srv.udp, self.request(case, max_forwards))
        self.assertIsNotNone(reply, f"no reply\n{self.srv.log()[-2000:]}")
        return reply

    def relay(self, max_forwards):
        self.peer.send(self.request("relay", max_forwards), self.srv.udp)
        got = self.uas.wait_request()
        self.assertIsNotNone(got, f"not relayed\n{self.srv.log()[-2000:]}")
        return got.msg

    def test_decremented(self):
        msg = self.relay(10)
        self.assertEqual(msg.get("X-Rc"), "1")
        self.assertEqual(msg.get_all("Max-Forwards"), ["9"])

    def test_added_when_missing(self):
        msg = self.relay(None)
        self.assertEqual(msg.get("X-Rc"), "2")
        # placed before the received headers, with the limit as value
        self.assertEqual(msg.get_all("Max-Forwards")[0], "10")
        names = [n.lower() for n, _ in msg.headers]
        self.assertLess(names.index("max-forwards"), names.index("from"))

    def test_added_header_is_the_only_one(self):
        """Forwarding leaves Max-Forwards alone once the script has handled it."""
        msg = self.relay(None)
        self.assertEqual(msg.get_all("Max-Forwards"), ["10"])

    def test_lowered_value_is_what_leaves(self):
        """A value above max_limit leaves as 70, as from Kamailio."""
        msg = self.relay(200)
        self.assertEqual(msg.get_all("Max-Forwards"), ["70"])

    def test_exhausted(self):
        reply = self.ask("relay", 0)
        self.assertEqual((reply.status, reply.reason), (483, "Too Many Hops rc=-1"))
        self.assertTrue(self.uas.no_request())

    def test_value_above_max_limit_is_lowered_then_seen_by_is_maxfwd_lt(self):
        # 200 is lowered to max_limit 70, then is_maxfwd_lt reads 70 back
        reply = self.ask("sequence", 200)
        self.assertEqual(reply.reason, "1,1,-1,-1,-1")

    def test_is_maxfwd_lt_sees_the_decrement(self):
        reply = self.ask("sequence", 10)
        self.assertEqual(reply.reason, "1,1,1,1,-1")

    def test_is_maxfwd_lt(self):
        self.assertEqual(self.ask("lt", 5).reason, "1,-1,-1,-1,-1")
        self.assertEqual(self.ask("lt", None).reason, "-2,-2,-2,-1,-1")
        self.assertIsNotNone(self.srv.wait_log(r"is_maxfwd_lt: invalid limit 300"))

    def test_bad_limit(self):
        reply = self.ask("bad_limit", 10)
        self.assertEqual(reply.reason, "-1,-1")
        self.assertIsNotNone(self.srv.wait_log(r"KSR\.maxfwd\.process_maxfwd: invalid limit 256"))

    def test_refused_in_reply_route(self):
        self.uas.status = None
        try:
            self.peer.send(self.request("relay", 10), self.srv.udp)
            got = self.uas.wait_request()
            self.assertIsNotNone(got)
            self.uas.send_along_via(make_response(got.msg, 200, "OK", headers=[("X-Reply-Case", "process")]), got)
        finally:
            self.uas.status = 200
        reply = self.peer.recv_msg()
        self.assertIsNotNone(reply, f"reply not relayed\n{self.srv.log()[-2000:]}")
        self.assertEqual(reply.get("X-Rc"), "-1,-1")
        self.assertIsNotNone(self.srv.wait_log(r"KSR\.maxfwd\.process_maxfwd is not allowed in a reply route"))


if __name__ == "__main__":
    unittest.main()
