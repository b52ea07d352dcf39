# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""KSR.siputils from a real route: return codes in the reason phrase, R-URI edits as the UAS sees them."""
import email.utils
import unittest

from ksrtest import LOCAL4, RouteCase, make_request, make_response

ROUTE = r'''
local su = KSR.siputils

local function answer(...)
	local out = {}
	for i = 1, select("#", ...) do out[#out + 1] = tostring((select(i, ...))) end
	KSR.sl.sl_send_reply(200, table.concat(out, ","))
end

local function relay()
	KSR.forward_uri(KSR.pv.get("$hdr(X-Dest)"))
end

local cases = {}
cases.msg = function() answer(su.has_totag(), su.is_request(), su.is_reply(), su.is_first_hop(),
	su.is_first_hop_mode(1), su.is_gruu()) end
cases.strings = function()
	answer(su.is_uri("sip:alice@example.com"), su.is_uri("tel:+15551234567"), su.is_uri("urn:service:sos"),
		su.is_uri("alice"), su.is_uri("http://example.com/"), su.is_uri(""), su.is_uri("sip:@"),
		su.is_tel_number("+15551234"), su.is_tel_number("5551234"), su.is_tel_number("+0123"),
		su.is_tel_number("12a"), su.is_tel_number(""), su.is_tel_number("+"),
		su.is_numeric("0123"), su.is_numeric(""), su.is_numeric("12a"), su.is_numeric("-1"),
		su.is_alphanum("abcXYZ019"), su.is_alphanum(""), su.is_alphanum("ab-c"),
		su.is_alphanumex("ab-c.d", "-."), su.is_alphanumex("ab_c", "-."), su.is_alphanumex("", "-"))
end
cases.params = function()
	answer(su.uri_param("lr"), su.uri_param("foo"), su.uri_param("LR"), su.uri_param("nope"),
		su.uri_param_value("foo", "bar"), su.uri_param_value("foo", "BAR"), su.uri_param_value("lr", ""),
		su.uri_param_value("transport", "udp"), su.uri_param_any("FOO"), su.uri_param_any("lr"),
		su.uri_param_any("nope"))
end
cases.rm = function()
	KSR.hdr.append("X-Rc: " .. su.uri_param_rm("FOO") .. "," .. su.uri_param_rm("lr") .. ","
		.. su.uri_param_rm("nope") .. "\r\n")
	relay()
end
cases.add = function()
	KSR.hdr.append("X-Rc: " .. su.add_uri_param("x=1") .. "," .. su.add_uri_param("") .. ","
		.. su.add_uri_param("flag") .. "\r\n")
	relay()
end
cases.add_bad = function()
	local rc = su.add_uri_param("bad param")
	answer(rc, KSR.kx.get_ruri())
end
cases.cmp = function()
	answer(su.cmp_uri("sip:a@H.example.com", "sip:a@h.example.com"),
		su.cmp_uri("sip:A@h.example.com", "sip:a@h.example.com"),
		su.cmp_uri("sip:a@h.com;transport=udp", "sip:a@h.com;Transport=UDP;lr"),
		su.cmp_uri("sip:a@h.com;user=phone", "sip:a@h.com"),
		su.cmp_uri("sip:a@h.com:5060", "sip:a@h.com"),
		su.cmp_uri("sip:a@h.com", "sips:a@h.com"),
		su.cmp_uri("sip:a@h.com;maddr=1.2.3.4", "sip:a@h.com;maddr=1.2.3.5"),
		su.cmp_uri("sip:a@h.com", "not a uri"),
		su.cmp_aor("sip:a@h.com:5060", "sip:a@H.com;x=1"),
		su.cmp_aor("sip:a@h.com:5070", "sip:a@h.com"),
		su.cmp_aor("sip:a@h.com:5070", "sip:a@h.com:5080"),
		su.cmp_aor("sip:b@h.com", "sip:a@h.com"),
		su.cmp_aor("", "sip:a@h.com"),
		su.cmp_hdr_name("Via", "vIA"), su.cmp_hdr_name("b", "a"), su.cmp_hdr_name("a", "b"))
end
cases.options = function()
	local rc = su.options_reply()
	if rc < 0 then KSR.sl.sl_send_reply(404, "rc=" .. rc) end
end
cases.relay = relay
cases.date = function() answer(su.hdr_date_check(tonumber(KSR.pv.get("$hdr(X-Tdiff)")))) end

function ksr_request_route()
	local case = KSR.pv.get("$hdr(X-Case)")
	if case == nil then
		if KSR.is_OPTIONS() then su.options_reply() end
		return
	end
	cases[case]()
end

function ksr_reply_route()
	if KSR.pv.get("$hdr(X-Reply-Case)") then
		KSR.hdr.append("X-Su: " .. table.concat({su.is_request(), su.is_reply(), su.has_totag(), su.is_first_hop(),
			su.is_first_hop_mode(1), su.uri_param("lr"), su.options_reply()}, ",") .. "\r\n")
	end
end
'''


class SiputilsTest(RouteCase):
    ROUTE = ROUTE

    def request(self, case, ruri=None, headers=(), method="MESSAGE", **kw):
        hdrs = [("X-Case", case), ("X-Dest", self.uas.uri)] + list(headers)
        return make_request(method, ruri or self.srv.uri("bob"), kw.pop("via", self.peer.via()), headers=hdrs, **kw)

    def ask(self, case, ruri=None, headers=(), **kw):
        reply = self.peer.request(self.srv.udp, self.request(case, ruri, headers, **kw))
        self.assertIsNotNone(reply, f"no reply for {case}\n{self.srv.log()[-2000:]}")
        return reply

    def codes(self, case, ruri=None, headers=(), **kw):
        reply = self.ask(case, ruri, headers, **kw)
        self.assertEqual(reply.status, 200, reply.start)
        return [int(x) if x.lstrip("-").isdigit() else x for x in reply.reason.split(",")]

    def relayed(self, case, ruri):
        self.peer.send(self.request(case, ruri), self.srv.udp)
        got = self.uas.wait_request()
        self.assertIsNotNone(got, f"not relayed\n{self.srv.log()[-2000:]}")
        return got.msg

    # -- message tests in a request
    def test_message_tests(self):
        self.assertEqual(self.codes("msg"), [-1, 1, -1, 1, 1, -1])
        self.assertEqual(self.codes("msg", to="<sip:bob@example.com>;tag=t1")[0], 1)
        two_vias = [self.peer.via(), "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKother"]
        self.assertEqual(self.codes("msg", via=two_vias)[3:5], [-1, -1])

    def test_is_gruu(self):
        base = self.srv.uri("bob")
        self.assertEqual(self.codes("msg", base + ";gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")[5], 1)
        self.assertEqual(self.codes("msg", base + ";gr")[5], 2)

    # -- strings
    def test_string_tests(self):
        self.assertEqual(self.codes("strings"), [
            1, 1, 1, -1, -1, -1, -1,
            1, 1, -2, -2, -2, -2,
            1, -2, -2, -2,
            1, -2, -3,
            1, -3, -2])

    # -- R-URI parameters
    def test_uri_params(self):
        ruri = self.srv.uri("bob") + ";lr;transport=udp;foo=bar"
        # an empty value matches a parameter without one, as in Kamailio
        self.assertEqual(self.codes("params", ruri), [1, -1, -1, -1, 1, -1, 1, 1, 1, 1, -1])

    def test_uri_param_rm(self):
        ruri = self.srv.uri("bob") + ";lr;foo=bar;transport=udp"
        msg = self.relayed("rm", ruri)
        self.assertEqual(msg.get("X-Rc"), "1,1,1")
        self.assertEqual(msg.ruri, self.srv.uri("bob") + ";transport=udp")

    def test_add_uri_param(self):
        msg = self.relayed("add", self.srv.uri("bob") + ";lr")
        self.assertEqual(msg.get("X-Rc"), "1,1,1")
        self.assertEqual(msg.ruri, self.srv.uri("bob") + ";lr;x=1;flag")

    def test_add_uri_param_before_uri_headers(self):
        msg = self.relayed("add", self.srv.uri("bob") + "?X-H=1")
        self.assertEqual(msg.ruri, self.srv.uri("bob") + ";x=1;flag?X-H=1")

    def test_add_uri_param_refuses_a_broken_uri(self):
        reply = self.ask("add_bad")
        self.assertEqual(reply.reason, "-1," + self.srv.uri("bob"))
        self.assertIsNotNone(self.srv.wait_log(r"add_uri_param: the new R-URI does not parse"))

    # -- comparisons
    def test_comparisons(self):
        self.assertEqual(self.codes("cmp"), [1, -1, 1, -1, -1, -1, -1, -2, 1, -1, -1, -1, -2, 1, -1, -2])

    # -- Date
    def test_hdr_date_check(self):
        def check(date, tdiff=60):
            hdrs = [("X-Tdiff", str(tdiff))] + ([("Date", date)] if date else [])
            return self.codes("date", headers=hdrs)[0]
        now = email.utils.formatdate(usegmt=True)
        self.assertEqual(check(now), 1)
        self.assertEqual(check("Sat, 13 Nov 2010 23:29:00 GMT"), -4)
        self.assertEqual(check("Sat, 13 Nov 2010 23:29:00 GMT", 2 ** 31), 1)
        self.assertEqual(check(None), -1)
        self.assertEqual(check("13 Nov 2010 23:29:00 GMT"), -1)
        self.assertEqual(check("Sat, 13 Nov 2010 23:29:00 CET"), -1)
        self.assertIsNotNone(self.srv.wait_log(r"hdr_date_check: malformed Date header"))

    # -- OPTIONS
    def test_options_reply(self):
        reply = self.peer.request(self.srv.udp, make_request("OPTIONS", self.srv.uri(), self.peer.via()))
        self.assertIsNotNone(reply)
        self.assertEqual((reply.status, reply.reason), (200, "OK"))
        self.assertEqual([reply.get(h) for h in ("Accept", "Accept-Encoding", "Accept-Language", "Supported")],
                         ["*/*", "", "en", ""])
        self.assertRegex(reply.get("To"), r";tag=")

    def test_options_reply_refused(self):
        reply = self.ask("options", method="OPTIONS")  # R-URI with a user
        self.assertEqual((reply.status, reply.reason), (404, "rc=-1"))
        self.assertIsNotNone(self.srv.wait_log(r"options_reply: the R-URI has a user part"))
        reply = self.ask("options", self.srv.uri())  # a MESSAGE
        self.assertEqual((reply.status, reply.reason), (404, "rc=-1"))
        self.assertIsNotNone(self.srv.wait_log(r"options_reply: called for a non-OPTIONS request"))

    # -- in the reply route
    def reply_through(self, extra):
        self.uas.status = None
        try:
            self.peer.send(self.request("relay", to="<sip:bob@example.com>"), self.srv.udp)
            got = self.uas.wait_request()
            self.assertIsNotNone(got, self.srv.log()[-2000:])
            self.uas.send_along_via(make_response(got.msg, 200, "OK", headers=[("X-Reply-Case", "1")] + extra), got)
        finally:
            self.uas.status = 200
        reply = self.peer.recv_msg()
        self.assertIsNotNone(reply, self.srv.log()[-2000:])
        return [int(x) for x in reply.get("X-Su").split(",")]

    def test_reply_route(self):
        # no Record-Route: first hop; uri_param and options_reply are request-only
        self.assertEqual(self.reply_through([]), [-1, 1, 1, 1, 1, -1, -1])
        self.assertIsNotNone(self.srv.wait_log(r"KSR\.siputils\.uri_param is not allowed in a reply route"))
        self.assertIsNotNone(self.srv.wait_log(r"KSR\.siputils\.options_reply is not allowed in a reply route"))

    def test_first_hop_of_a_reply_follows_record_route(self):
        us = f"<sip:{LOCAL4}:{self.srv.port};lr>"
        self.assertEqual(self.reply_through([("Record-Route", us)])[3:5], [1, 1])
        self.assertEqual(self.reply_through([("Record-Route", "<sip:192.0.2.1;lr>"), ("Record-Route", us)])[3:5],
                         [-1, -1])
        # mode 0 wants an IP address in the top Record-Route
        self.assertEqual(self.reply_through([("Record-Route", "<sip:proxy.invalid;lr>")])[3], -1)


if __name__ == "__main__":
    unittest.main()
