# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
Record-routing and Route processing (core/rr): record_route (single, double
with r2=on when the request changes transport), add_rr_param, loose_route's
return codes, strict-router compatibility (RFC 3261 §16.4, §16.12),
check_route_param and is_direction with the ftag.

The route reports what loose_route and friends said in an X-LR header added
to the request it relays, so the UAS that receives it shows both the verdict
and what was done to the Route set and the R-URI.
"""
import re
import time
import unittest

from ksrtest import LOCAL4, QUIET, Server, TcpPeer, UdpPeer, make_request, parse_via, unique
from sipua import ScriptedUas, Uac, ring_then, route_values, uri_of, uri_params

ROUTE = r"""
function ksr_request_route()
	local test = KSR.pv.get("$hdr(X-Test)")
	if KSR.is_OPTIONS() and KSR.is_myself_ruri() and test == nil and KSR.siputils.has_totag() < 0 then
		KSR.sl.sl_send_reply(200, "Keepalive")
		return
	end
	if KSR.is_CANCEL() then
		KSR.tm.t_relay()
		return
	end
	if KSR.siputils.has_totag() > 0 or test == "lr" then
		local rc = KSR.rr.loose_route()
		local info = string.format("lr=%d down=%d up=%d foo=%d baz=%d du=%s ru=%s", rc,
			KSR.rr.is_direction("downstream"), KSR.rr.is_direction("upstream"),
			KSR.rr.check_route_param("foo=bar"), KSR.rr.check_route_param("baz"),
			KSR.pv.get("$du") or "", KSR.pv.get("$ru") or "")
		KSR.info("RRTEST " .. info .. " cid=" .. KSR.pv.get("$ci"))
		KSR.hdr.append("X-LR: " .. info .. "\r\n")
		if rc == -1 then
			local t = KSR.pv.get("$hdr(X-Target)")
			if t == nil then
				KSR.sl.sl_send_reply(404, "No Route")
				return
			end
			KSR.setdsturi(t)
		end
		if KSR.tm.t_relay() < 0 then
			KSR.sl.sl_reply_error()
		end
		return
	end
	if KSR.tm.t_check_trans() == 0 then
		return
	end
	if KSR.is_INVITE() or test == "rr" then
		local p = KSR.pv.get("$hdr(X-RR-Params)")
		local preset = KSR.pv.get("$hdr(X-RR-Preset)")
		if preset ~= nil then
			KSR.rr.record_route_preset_one(preset)
		elseif p ~= nil then
			KSR.rr.record_route_params(p)
		else
			KSR.rr.record_route()
		end
		local extra = KSR.pv.get("$hdr(X-Add-RR-Param)")
		if extra ~= nil then
			KSR.rr.add_rr_param(extra)
		end
	end
	KSR.setdsturi(KSR.pv.get("$hdr(X-Target)"))
	if KSR.tm.t_relay() < 0 then
		KSR.sl.sl_reply_error()
	end
end
"""


def lr_info(msg):
    """The X-LR report as a dict."""
    v = msg.get("X-LR")
    if v is None:
        return None
    return dict(p.split("=", 1) for p in v.split(" "))


class RrTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(script=ROUTE, config={"tm": {"fr_timer": 1000, "fr_inv_timer": 2000, "wt_timer": 1000}})
        try:
            cls.srv.start()
        except BaseException:
            cls.srv.cleanup()
            raise
        cls.udp_uas = ScriptedUas("udp", ring_then(200), name="uasu")
        cls.tcp_uas = ScriptedUas("tcp", ring_then(200), name="uast")
        cls.other = ScriptedUas("udp", ring_then(200), name="other")

    @classmethod
    def tearDownClass(cls):
        for u in (cls.udp_uas, cls.tcp_uas, cls.other):
            u.close()
        cls.srv.close()

    def setUp(self):
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            p.close()

    @property
    def me(self):
        return f"{LOCAL4}:{self.srv.port}"

    def ours(self, ftag, transport="udp", extra=""):
        t = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:{self.me}{t};lr;ftag={ftag}{extra}>"

    def log_tail(self):
        return "\n--- ksrd log (tail)\n" + self.srv.log()[-3000:]

    def send(self, msg, transport="udp"):
        """Sends msg from a fresh peer of that transport; returns the peer (for replies)."""
        if transport == "udp":
            p = UdpPeer()
            p.send(msg, self.srv.udp)
        else:
            p = TcpPeer(self.srv.tcp)
            p.send(msg)
        self.peers.append(p)
        return p

    def peer(self, transport):
        p = UdpPeer() if transport == "udp" else TcpPeer(self.srv.tcp)
        self.peers.append(p)
        return p

    def arrived(self, uas, method, call_id):
        got = uas.wait_request(method, call_id, timeout=3)
        self.assertIsNotNone(got, f"{method} did not reach {uas.name}{self.log_tail()}")
        return got.msg

    # ------------------------------------------------------------ record_route

    def invite_through(self, a, b, headers=(), user="bob"):
        uas = self.udp_uas if b == "udp" else self.tcp_uas
        p = self.peer(a)
        req = make_request("INVITE", f"sip:{user}@{self.me}", p.via(),
                           headers=[("X-Target", uas.uri), ("Contact", f"<sip:a@{LOCAL4}:{p.port}>")] + list(headers))
        p.send(req, self.srv.udp) if a == "udp" else p.send(req)
        return req, self.arrived(uas, "INVITE", req.get("Call-ID"))

    def test_single_record_route(self):
        for t in ("udp", "tcp"):
            with self.subTest(transport=t):
                req, got = self.invite_through(t, t)
                self.assertEqual(route_values(got, "Record-Route"), [self.ours(req.tag("From"), t)])

    def test_double_record_route_on_transport_change(self):
        for a, b in (("udp", "tcp"), ("tcp", "udp")):
            with self.subTest(incoming=a, outgoing=b):
                req, got = self.invite_through(a, b)
                rr = route_values(got, "Record-Route")
                ft = req.tag("From")
                self.assertEqual(len(rr), 2, rr)
                # the entry facing the callee first, then the one facing the caller (both r2=on)
                self.assertEqual(rr, [self.ours(ft, b).replace(";lr", ";lr;r2=on"),
                                      self.ours(ft, a).replace(";lr", ";lr;r2=on")])

    def test_record_route_params_and_add_rr_param(self):
        req, got = self.invite_through("udp", "udp", headers=[("X-RR-Params", "foo=bar"),
                                                              ("X-Add-RR-Param", ";k=v")])
        rr = route_values(got, "Record-Route")
        self.assertEqual(len(rr), 1, rr)
        p = uri_params(rr[0])
        self.assertEqual((p.get("foo"), p.get("k")), ("bar", "v"), rr)
        self.assertIn("lr", p)
        self.assertEqual(p.get("ftag"), req.tag("From"))

    def test_add_rr_param_on_double_rr(self):
        req, got = self.invite_through("udp", "tcp", headers=[("X-Add-RR-Param", "foo=bar")])
        rr = route_values(got, "Record-Route")
        self.assertEqual(len(rr), 2, rr)
        for r in rr:
            self.assertEqual(uri_params(r).get("foo"), "bar", r)

    def test_record_route_preset(self):
        req, got = self.invite_through("udp", "udp", headers=[("X-RR-Preset", "sip:proxy.example.com:5070")])
        rr = route_values(got, "Record-Route")
        self.assertEqual(len(rr), 1, rr)
        self.assertEqual(uri_of(rr[0]).split(";")[0], "sip:proxy.example.com:5070")
        self.assertIn("lr", uri_params(rr[0]))
        self.assertEqual(uri_params(rr[0]).get("ftag"), req.tag("From"))

    def test_upstream_record_route_kept_below_ours(self):
        up = "<sip:127.0.0.9:5099;lr>"     # never contacted: only written in a header
        req, got = self.invite_through("udp", "udp", headers=[("Record-Route", up)])
        rr = route_values(got, "Record-Route")
        self.assertEqual(rr, [self.ours(req.tag("From")), up])

    # ------------------------------------------------------------ loose_route

    def in_dialog(self, ruri, routes, target=None, method="INFO", frm_tag=None, to_tag="callee", transport="udp",
                  swap=False):
        """An in-dialog request through the proxy; returns (request, peer)."""
        p = self.peer(transport)
        ft = frm_tag or unique("ft")
        frm, to = f"<sip:alice@{LOCAL4}>;tag={ft}", f"<sip:bob@{LOCAL4}>;tag={to_tag}"
        if swap:
            frm, to = f"<sip:bob@{LOCAL4}>;tag={to_tag}", f"<sip:alice@{LOCAL4}>;tag={ft}"
        hdrs = [("Route", r) for r in routes]
        if target:
            hdrs.append(("X-Target", target))
        req = make_request(method, ruri, p.via(), headers=hdrs, frm=frm, to=to)
        p.send(req, self.srv.udp) if transport == "udp" else p.send(req)
        return req, p

    def test_loose_route_our_route_in_dialog(self):
        uas = self.udp_uas
        ft = unique("ft")
        req, p = self.in_dialog(uri_of(uas.contact), [self.ours(ft, extra=";foo=bar")], frm_tag=ft)
        got = self.arrived(uas, "INFO", req.get("Call-ID"))
        info = lr_info(got)
        self.assertEqual(info["lr"], "1", info)
        self.assertEqual(got.ruri, uri_of(uas.contact))
        self.assertEqual(got.get_all("Route"), [], "our Route was not removed")
        self.assertEqual((info["foo"], info["baz"]), ("1", "-1"), "check_route_param")
        self.assertEqual((info["down"], info["up"]), ("1", "-1"), "is_direction with the caller's ftag")
        r = p.recv_msg()
        self.assertIsNotNone(r)
        self.assertEqual(r.status, 200)

    def test_loose_route_double_rr_entries_both_consumed(self):
        uas = self.tcp_uas
        ft = unique("ft")
        routes = [self.ours(ft, "udp").replace(";lr", ";lr;r2=on"), self.ours(ft, "tcp").replace(";lr", ";lr;r2=on")]
        req, _ = self.in_dialog(uri_of(uas.contact), routes, frm_tag=ft)
        got = self.arrived(uas, "INFO", req.get("Call-ID"))
        self.assertEqual(lr_info(got)["lr"], "1")
        self.assertEqual(got.get_all("Route"), [])
        self.assertEqual(parse_via(got.vias()[0]).transport.upper(), "TCP")

    def test_loose_route_next_hop_from_route(self):
        """Our entry, then another loose router: ours goes, $du is the next one, its entry stays."""
        uas, nxt = self.udp_uas, self.other
        ft = unique("ft")
        hop = f"<sip:{LOCAL4}:{nxt.port};lr>"
        req, _ = self.in_dialog(uri_of(uas.contact), [self.ours(ft), hop], frm_tag=ft)
        got = self.arrived(nxt, "INFO", req.get("Call-ID"))
        info = lr_info(got)
        self.assertEqual(info["lr"], "1", info)
        self.assertEqual(got.ruri, uri_of(uas.contact))
        self.assertEqual(route_values(got, "Route"), [hop])
        self.assertEqual(uas.requests.select("INFO", req.get("Call-ID")), [])

    def test_loose_route_next_hop_strict_router(self):
        """§16.12 step 6 (the next hop is a strict router): its URI becomes the R-URI, the old R-URI the last Route."""
        uas, strict = self.udp_uas, self.other
        ft = unique("ft")
        hop = f"<sip:strict@{LOCAL4}:{strict.port}>"
        req, _ = self.in_dialog(uri_of(uas.contact), [self.ours(ft), hop], frm_tag=ft)
        got = self.arrived(strict, "INFO", req.get("Call-ID"))
        self.assertEqual(got.ruri, uri_of(hop))
        self.assertEqual(route_values(got, "Route"), [f"<{uri_of(uas.contact)}>"])

    def test_loose_route_no_route(self):
        uas = self.udp_uas
        req, _ = self.in_dialog(uri_of(uas.contact), [], target=uas.uri)
        got = self.arrived(uas, "INFO", req.get("Call-ID"))
        info = lr_info(got)
        self.assertEqual(info["lr"], "-1", info)
        self.assertEqual((info["foo"], info["down"], info["up"]), ("-1", "-1", "-1"),
                         "Route-parameter functions answered without a Route consumed")

    def test_loose_route_preloaded_route_initial(self):
        uas, nxt = self.udp_uas, self.other
        p = self.peer("udp")
        hop = f"<sip:{LOCAL4}:{nxt.port};lr>"
        req = make_request("MESSAGE", uri_of(uas.contact), p.via(),
                           headers=[("Route", hop), ("X-Test", "lr")])
        p.send(req, self.srv.udp)
        got = self.arrived(nxt, "MESSAGE", req.get("Call-ID"))
        info = lr_info(got)
        self.assertEqual(info["lr"], "-3", info)
        self.assertEqual(got.ruri, uri_of(uas.contact))
        self.assertEqual(route_values(got, "Route"), [hop])

    def test_loose_route_preloaded_ours_then_other_initial(self):
        uas, nxt = self.udp_uas, self.other
        p = self.peer("udp")
        hop = f"<sip:{LOCAL4}:{nxt.port};lr>"
        req = make_request("MESSAGE", uri_of(uas.contact), p.via(),
                           headers=[("Route", f"<sip:{self.me};lr>"), ("Route", hop), ("X-Test", "lr")])
        p.send(req, self.srv.udp)
        got = self.arrived(nxt, "MESSAGE", req.get("Call-ID"))
        self.assertEqual(lr_info(got)["lr"], "-3")
        self.assertEqual(route_values(got, "Route"), [hop], "our preloaded Route was not consumed")

    def test_route_list_in_one_header(self):
        """Our entry first in a comma-separated Route header: only that element goes."""
        uas, nxt = self.udp_uas, self.other
        ft = unique("ft")
        hop = f"<sip:{LOCAL4}:{nxt.port};lr>"
        req, _ = self.in_dialog(uri_of(uas.contact), [f"{self.ours(ft)}, {hop}"], frm_tag=ft)
        got = self.arrived(nxt, "INFO", req.get("Call-ID"))
        self.assertEqual(route_values(got, "Route"), [hop])

    # ------------------------------------------------------------ strict-router compatibility

    def test_strict_router_upstream(self):
        """§16.4: the R-URI is our Record-Route: the last Route becomes the R-URI."""
        uas = self.udp_uas
        ft = unique("ft")
        ruri = uri_of(self.ours(ft, extra=";foo=bar"))
        req, _ = self.in_dialog(ruri, [f"<{uri_of(uas.contact)}>"], frm_tag=ft)
        got = self.arrived(uas, "INFO", req.get("Call-ID"))
        info = lr_info(got)
        self.assertEqual(info["lr"], "1", info)
        self.assertEqual(got.ruri, uri_of(uas.contact))
        self.assertEqual(got.get_all("Route"), [])
        self.assertEqual(info["foo"], "1", "the params of our URI (from the R-URI) are the route params")
        self.assertEqual(info["down"], "1")

    def test_strict_router_upstream_then_loose_hop(self):
        """§16.4 then §16.6 step 6: after the R-URI is restored, a remaining Route is the next hop."""
        uas, nxt = self.udp_uas, self.other
        ft = unique("ft")
        hop = f"<sip:{LOCAL4}:{nxt.port};lr>"
        req, _ = self.in_dialog(uri_of(self.ours(ft)), [hop, f"<{uri_of(uas.contact)}>"], frm_tag=ft)
        got = self.arrived(nxt, "INFO", req.get("Call-ID"))
        self.assertEqual(got.ruri, uri_of(uas.contact))
        self.assertEqual(route_values(got, "Route"), [hop])

    # ------------------------------------------------------------ direction

    def test_is_direction_upstream(self):
        uas = self.udp_uas
        ft = unique("ft")
        req, _ = self.in_dialog(uri_of(uas.contact), [self.ours(ft)], frm_tag=ft, swap=True)
        got = self.arrived(uas, "INFO", req.get("Call-ID"))
        info = lr_info(got)
        self.assertEqual((info["down"], info["up"]), ("-1", "1"), info)

    def test_call_both_directions(self):
        """A real call UDP caller -> TCP callee: the callee's BYE uses the Record-Route and goes upstream."""
        uas = ScriptedUas("tcp", ring_then(200), name="callee")
        uac = Uac("udp", self.srv.udp)
        self.peers += [uas, uac]
        call = uac.invite(f"sip:bob@{self.me}", headers=[("X-Target", uas.uri)])
        final = call.wait_final()
        self.assertIsNotNone(final)
        self.assertEqual(final.status, 200, final.start)
        call.ack()
        ack = self.arrived(uas, "ACK", call.call_id)
        self.assertEqual(lr_info(ack)["down"], "1")
        self.assertEqual(ack.get_all("Route"), [])
        r = uas.request_in_dialog(call.call_id, "BYE")
        self.assertIsNotNone(r, f"no reply to the callee's BYE{self.log_tail()}")
        self.assertEqual(r.status, 200, r.start)
        bye = uac.requests.wait("BYE", call.call_id)
        self.assertTrue(bye, "the callee's BYE did not reach the caller")
        msg = bye[0].msg
        self.assertEqual(msg.ruri, uri_of(uac.contact))
        self.assertEqual(msg.get_all("Route"), [])
        info = lr_info(msg)
        self.assertEqual((info["lr"], info["down"], info["up"]), ("1", "-1", "1"), info)
        self.assertEqual(parse_via(msg.vias()[0]).transport.upper(), "UDP")


if __name__ == "__main__":
    unittest.main()
