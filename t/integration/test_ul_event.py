"""usrloc:contact-expired: the script's registrar.event_callback runs for each
contact the expiry timer removes, and sees it as $ulc(exp=>...)."""
import time
import unittest

from ksrtest import Server, UdpPeer, make_request

ROUTE = r'''
function ksr_request_route()
	if KSR.is_OPTIONS() then KSR.sl.sl_send_reply(200, "OK") return end
	if KSR.is_REGISTER() then KSR.registrar.save("location", 0) return end
end

function ksr_ul_event(ev)
	KSR.info("UL-EVENT " .. ev .. " aor=" .. tostring(KSR.pv.get("$ulc(exp=>aor)"))
		.. " addr=" .. tostring(KSR.pv.get("$ulc(exp=>addr)")))
end
'''


class ContactExpiredTest(unittest.TestCase):
    def test_event_names_the_expired_contact(self):
        cfg = {"usrloc": {"timer_interval": 1}, "registrar": {"event_callback": "ksr_ul_event", "min_expires": 1}}
        with Server(ROUTE, config=cfg) as srv, UdpPeer() as ua:
            contact = f"<sip:carol@{ua.host}:{ua.port}>;expires=2"
            reg = make_request("REGISTER", srv.uri(), ua.via(), to="<sip:carol@127.0.0.1>",
                               frm="<sip:carol@127.0.0.1>;tag=ulev", headers=[("Contact", contact)])
            rpl = ua.request(srv.udp, reg)
            self.assertEqual(rpl.status, 200, rpl.start)
            want = f"UL-EVENT usrloc:contact-expired aor=carol addr=sip:carol@{ua.host}:{ua.port}"
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline and want not in srv.log():
                time.sleep(0.1)
            self.assertIn(want, srv.log())
            # the contact is gone from the table too
            self.assertEqual(srv.log().count("UL-EVENT"), 1)


if __name__ == "__main__":
    unittest.main()
