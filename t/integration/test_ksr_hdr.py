# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""KSR.hdr from a real route: edits seen on the wire by a UAS, reads returned in the reason phrase."""
import unittest

from ksrtest import RouteCase, make_request, make_response

# Each case is selected by the X-Case header; results come back as the reason
# phrase of a 200, values written type:value so nil, "" and 0 stay apart.
ROUTE = r'''
local function enc(v)
	if v == nil then return "nil" end
	return type(v) .. ":" .. tostring(v)
end

local function answer(...)
	local out = {}
	for i = 1, select("#", ...) do out[#out + 1] = enc((select(i, ...))) end
	KSR.sl.sl_send_reply(200, table.concat(out, "|"))
end

local function relay()
	KSR.forward_uri(KSR.pv.get("$hdr(X-Dest)"))
end

local cases = {}
cases.append = function() answer(KSR.hdr.append("X-Test: 1\r\n")); relay() end
cases.append_two = function() KSR.hdr.append("X-A: 1\r\n"); KSR.hdr.append("X-B: 2\r\n"); relay() end
cases.insert = function() answer(KSR.hdr.insert("X-Ins: top\r\n")); relay() end
cases.insert_two = function() KSR.hdr.insert("X-A: 1\r\n"); KSR.hdr.insert("X-B: 2\r\n"); relay() end
cases.empty_text = function() answer(KSR.hdr.append(""), KSR.hdr.insert("")); relay() end
cases.remove = function() answer(KSR.hdr.remove("X-Rm"), KSR.hdr.remove("X-None")); relay() end
cases.remove_compact = function() KSR.hdr.remove("s"); relay() end
cases.remove_then_present = function()
	local rm = KSR.hdr.remove("X-Rm")
	answer(rm, KSR.hdr.is_present("X-Rm"), KSR.hdr.get("X-Rm"))
end
cases.present = function()
	answer(KSR.hdr.is_present("X-Here"), KSR.hdr.is_present("x-here"), KSR.hdr.is_present("X-Gone"),
		KSR.hdr.is_present("Subject"), KSR.hdr.is_present("v"))
end
cases.get = function()
	answer(KSR.hdr.get("X-Here"), KSR.hdr.get("X-Gone"), KSR.hdr.gete("X-Gone"), KSR.hdr.getw("X-Gone"),
		KSR.hdr.gete("X-Here"), KSR.hdr.get("s"), KSR.hdr.get("Subject"))
end
cases.get_idx = function()
	answer(KSR.hdr.get_idx("X-M", 0), KSR.hdr.get_idx("X-M", 1), KSR.hdr.get_idx("X-M", 2),
		KSR.hdr.get_idx("X-M", -1), KSR.hdr.get_idx("X-M", -3), KSR.hdr.get_idx("X-M", 3),
		KSR.hdr.get_idx("X-M", -4), KSR.hdr.gete_idx("X-M", 9), KSR.hdr.getw_idx("X-M", -9),
		KSR.hdr.getw_idx("X-M", 1))
end
cases.bad_name = function()
	answer(KSR.hdr.get(""), KSR.hdr.is_present(""), KSR.hdr.remove(""), KSR.hdr.gete(""),
		KSR.hdr.get(string.rep("a", 300)))
end
cases.after_before = function()
	KSR.hdr.append_after("X-After: 1\r\n", "Subject")
	KSR.hdr.insert_before("X-Before: 1\r\n", "Subject")
	KSR.hdr.append_after("X-After-None: 1\r\n", "X-Nothing")
	KSR.hdr.insert_before("X-Before-None: 1\r\n", "X-Nothing")
	relay()
end
cases.rm_add = function()
	answer(KSR.hdr.rmappend("X-Old", "X-New: appended\r\n"), KSR.hdr.rminsert("X-Old2", "X-New2: inserted\r\n"))
	relay()
end
cases.to_reply = function()
	local rc = KSR.hdr.append_to_reply("X-Reply: yes\r\n")
	KSR.sl.sl_send_reply(200, "rc=" .. rc)
end
cases.match = function()
	answer(KSR.hdr.match_content("X-M", "eq", "one", "f"), KSR.hdr.match_content("X-M", "eq", "ONE", "l"),
		KSR.hdr.match_content("X-M", "eq", "three", "l"), KSR.hdr.match_content("X-M", "ne", "four", "a"),
		KSR.hdr.match_content("X-M", "sw", "t", "a"),
		KSR.hdr.match_content("X-M", "in", "hre", "o"), KSR.hdr.match_content("X-M", "ne", "one", "f"),
		KSR.hdr.match_content("X-M", "in", "zz", "o"), KSR.hdr.match_content("X-None", "eq", "x", "o"),
		KSR.hdr.match_content("X-M", "re", "o.*", "f"), KSR.hdr.match_content("X-M", "eq", "one", "x"))
end
cases.arity = function() answer(KSR.hdr.get(), KSR.hdr.append()) end

function ksr_request_route()
	local case = KSR.pv.get("$hdr(X-Case)")
	if case == nil then
		if KSR.is_OPTIONS() then KSR.sl.sl_send_reply(200, "OK") end
		return
	end
	cases[case]()
end

function ksr_reply_route()
	local case = KSR.pv.get("$hdr(X-Reply-Case)")
	if case == "append" then
		KSR.hdr.append("X-Via-Reply-Route: " .. KSR.hdr.get("X-Reply-Case") .. "\r\n")
		KSR.hdr.remove("X-Drop-Me")
	elseif case == "to_reply" then
		KSR.hdr.append("X-Rc: " .. KSR.hdr.append_to_reply("X-Nope: 1\r\n") .. "\r\n")
	end
end
'''


def parse_answer(reply):
    return reply.reason.split("|")


class HdrTest(RouteCase):
    ROUTE = ROUTE

    def request(self, case, headers=()):
        hdrs = [("X-Case", case), ("X-Dest", self.uas.uri)] + list(headers)
        return make_request("MESSAGE", self.srv.uri("bob"), self.peer.via(), headers=hdrs)

    def ask(self, case, headers=()):
        reply = self.peer.request(self.srv.udp, self.request(case, headers))
        self.assertIsNotNone(reply, f"no reply for case {case}\n{self.srv.log()[-2000:]}")
        return reply

    def relayed(self, case, headers=(), answers=False):
        """Runs a case that forwards; returns (what the UAS got, the route's answer or None)."""
        reply = self.ask(case, headers) if answers else None
        if not answers:
            self.peer.send(self.request(case, headers), self.srv.udp)
        got = self.uas.wait_request()
        self.assertIsNotNone(got, f"the UAS got nothing for case {case}\n{self.srv.log()[-2000:]}")
        return got.msg, reply

    def names(self, msg):
        return [n.lower() for n, _ in msg.headers]

    # -- adding
    def test_append_goes_after_the_last_header(self):
        msg, reply = self.relayed("append", answers=True)
        self.assertEqual(parse_answer(reply), ["number:1"])
        self.assertEqual(msg.headers[-1], ("X-Test", "1"))

    def test_append_keeps_call_order(self):
        msg, _ = self.relayed("append_two")
        self.assertEqual(msg.headers[-2:], [("X-A", "1"), ("X-B", "2")])

    def test_insert_goes_before_the_received_headers(self):
        msg, reply = self.relayed("insert", answers=True)
        self.assertEqual(parse_answer(reply), ["number:1"])
        names = self.names(msg)
        # our own Via comes first; the inserted line precedes every received header
        self.assertLess(names.index("x-ins"), names.index("x-case"))
        client_via = self.peer.host + ":" + str(self.peer.port)
        first_client_via = next(i for i, (n, v) in enumerate(msg.headers) if n.lower() == "via" and client_via in v)
        self.assertLess(names.index("x-ins"), first_client_via)

    def test_insert_keeps_call_order(self):
        msg, _ = self.relayed("insert_two")
        names = self.names(msg)
        self.assertLess(names.index("x-a"), names.index("x-b"))

    def test_empty_text_is_a_noop(self):
        msg, reply = self.relayed("empty_text", answers=True)
        self.assertEqual(parse_answer(reply), ["number:1", "number:1"])
        self.assertEqual(msg.get("X-Case"), "empty_text")

    # -- removing
    def test_remove_every_spelling(self):
        msg, reply = self.relayed("remove", [("X-Rm", "1"), ("x-rm", "2"), ("X-Keep", "k"), ("X-RM", "3")],
                                  answers=True)
        self.assertEqual(parse_answer(reply), ["number:1", "number:1"])
        self.assertFalse(msg.has("X-Rm"), msg.headers)
        self.assertEqual(msg.get("X-Keep"), "k")

    def test_remove_by_compact_name(self):
        msg, _ = self.relayed("remove_compact", [("Subject", "long form"), ("s", "compact")])
        self.assertFalse(msg.has("Subject"), msg.headers)

    def test_removed_header_stays_readable_like_kamailio(self):
        reply = self.ask("remove_then_present", [("X-Rm", "still")])
        self.assertEqual(parse_answer(reply), ["number:1", "number:1", "string:still"])

    # -- reading
    def test_is_present(self):
        reply = self.ask("present", [("X-Here", "yes"), ("s", "compact subject")])
        self.assertEqual(parse_answer(reply), ["number:1", "number:1", "number:-1", "number:1", "number:1"])

    def test_get_and_null_modes(self):
        reply = self.ask("get", [("X-Here", "some value"), ("Subject", "hi there")])
        self.assertEqual(parse_answer(reply), ["string:some value", "nil", "string:", "string:<null>",
                                               "string:some value", "string:hi there", "string:hi there"])

    def test_get_idx(self):
        reply = self.ask("get_idx", [("X-M", "one"), ("X-Other", "o"), ("x-m", "two"), ("X-M", "three")])
        self.assertEqual(parse_answer(reply), [
            "string:one", "string:two", "string:three", "string:three", "string:one", "nil", "nil",
            "string:", "string:<null>", "string:two"])

    def test_bad_header_name(self):
        reply = self.ask("bad_name")
        self.assertEqual(parse_answer(reply), ["nil", "number:-1", "number:-1", "string:", "nil"])
        self.assertIsNotNone(self.srv.wait_log(r"KSR\.hdr\.get: bad header name"))

    def test_missing_arguments(self):
        reply = self.ask("arity")
        self.assertEqual(parse_answer(reply), ["nil", "number:-1"])
        self.assertIsNotNone(self.srv.wait_log(r"KSR\.hdr\.get: expected 1 argument"))

    # -- placing relative to a header
    def test_append_after_and_insert_before(self):
        msg, _ = self.relayed("after_before", [("X-Pad", "p"), ("Subject", "s1"), ("Subject", "s2")])
        names = self.names(msg)
        subj = names.index("subject")
        self.assertEqual(names[subj - 1], "x-before")
        self.assertEqual(names[subj + 1], "x-after")
        # no such header: after the last / before the first received header
        self.assertEqual(names[-1], "x-after-none")
        self.assertLess(names.index("x-before-none"), names.index("x-case"))

    def test_rmappend_rminsert(self):
        msg, reply = self.relayed("rm_add", [("X-Old", "a"), ("X-Old2", "b"), ("X-Old", "c")], answers=True)
        self.assertEqual(parse_answer(reply), ["number:1", "number:1"])
        self.assertFalse(msg.has("X-Old") or msg.has("X-Old2"), msg.headers)
        self.assertEqual(msg.headers[-1], ("X-New", "appended"))
        names = self.names(msg)
        self.assertLess(names.index("x-new2"), names.index("x-case"))

    def test_append_to_reply(self):
        reply = self.ask("to_reply")
        self.assertEqual(reply.reason, "rc=1")
        self.assertEqual(reply.get("X-Reply"), "yes")

    def test_match_content(self):
        reply = self.ask("match", [("X-M", " one "), ("X-M", "two"), ("X-M", "three")])
        self.assertEqual(parse_answer(reply), [
            "boolean:true", "boolean:false", "boolean:true", "boolean:true", "boolean:false", "boolean:true",
            "boolean:false", "boolean:false", "boolean:false", "boolean:false", "boolean:false"])
        self.assertIsNotNone(self.srv.wait_log(r"match_content: invalid operator 're'"))
        self.assertIsNotNone(self.srv.wait_log(r"match_content: invalid header index 'x'"))

    # -- in the reply route
    def reply_through(self, reply_case, extra=()):
        req = make_request("MESSAGE", self.srv.uri("bob"), self.peer.via(),
                           headers=[("X-Case", "append_two"), ("X-Dest", self.uas.uri)])
        self.uas.status = None
        try:
            self.peer.send(req, self.srv.udp)
            got = self.uas.wait_request()
            self.assertIsNotNone(got)
            self.uas.send_along_via(make_response(got.msg, 200, "OK",
                                                  headers=[("X-Reply-Case", reply_case)] + list(extra)), got)
        finally:
            self.uas.status = 200
        reply = self.peer.recv_msg()
        self.assertIsNotNone(reply, f"the reply was not relayed\n{self.srv.log()[-2000:]}")
        return reply

    def test_edits_in_reply_route(self):
        reply = self.reply_through("append", [("X-Drop-Me", "x")])
        self.assertEqual(reply.get("X-Via-Reply-Route"), "append")
        self.assertFalse(reply.has("X-Drop-Me"))

    def test_append_to_reply_refused_in_reply_route(self):
        reply = self.reply_through("to_reply")
        self.assertEqual(reply.get("X-Rc"), "-1")
        self.assertIsNotNone(self.srv.wait_log(r"KSR\.hdr\.append_to_reply is not allowed in a reply route"))


if __name__ == "__main__":
    unittest.main()
