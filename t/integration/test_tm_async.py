"""KSR.tmx.t_suspend / t_continue: a transaction suspended in one route is
resumed later (here by another request, as an RPC or async task would) and
answered or relayed from the named function."""
import unittest

from ksrtest import Server, UdpPeer, make_request

ROUTE = r'''
function ksr_request_route()
	local u = KSR.pv.get("$rU")
	if KSR.is_INVITE() then
		if KSR.tmx.t_suspend() < 0 then KSR.sl.sl_send_reply(500, "no suspend") return end
		KSR.pv.seti("$shv(idx)", KSR.pv.get("$T(id_index)"))
		KSR.pv.seti("$shv(lbl)", KSR.pv.get("$T(id_label)"))
		KSR.pv.sets("$avp(who)", u)
		return -- no reply now: the transaction waits
	end
	if u == "resume" then
		local rc = KSR.tmx.t_continue(KSR.pv.get("$shv(idx)"), KSR.pv.get("$shv(lbl)"), "ksr_resume")
		KSR.sl.sl_send_reply(200, "continue=" .. rc)
		return
	end
	KSR.sl.sl_send_reply(200, "OK")
end

function ksr_resume()
	KSR.tm.t_reply(486, "Busy " .. tostring(KSR.pv.get("$avp(who)")) .. " " .. KSR.tmx.t_is_failure_route())
end
'''


class SuspendContinueTest(unittest.TestCase):
    def test_suspended_invite_is_answered_by_the_continuation(self):
        with Server(ROUTE) as srv, UdpPeer() as caller, UdpPeer() as ctl:
            inv = make_request("INVITE", srv.uri("carol"), caller.via())
            caller.send(inv, srv.udp)
            # no reply while suspended (tm sends its 100 Trying from t_relay, as Kamailio)
            self.assertIsNone(caller.recv_msg(timeout=0.5), "answered before t_continue")
            rpl = ctl.request(srv.udp, make_request("OPTIONS", srv.uri("resume"), ctl.via()))
            self.assertEqual(rpl.start, "SIP/2.0 200 continue=1")
            final = caller.recv_msg(timeout=2)
            self.assertIsNotNone(final, "the continuation did not answer")
            self.assertEqual(final.start, "SIP/2.0 486 Busy carol 1")
            # a second t_continue finds nothing suspended
            again = ctl.request(srv.udp, make_request("OPTIONS", srv.uri("resume"), ctl.via()))
            self.assertEqual(again.start, "SIP/2.0 200 continue=-1")


if __name__ == "__main__":
    unittest.main()
