# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the route script (or refuses a broken one)."""
import os
import signal
import time
import unittest

from ksrtest import Server, TcpPeer, UdpPeer, make_request

ROUTE = 'function ksr_request_route()\n\tKSR.sl.sl_send_reply(200, "%s")\nend\n'
BROKEN = 'function ksr_request_route()\n\tif then\n\t\tKSR.sl.sl_send_reply(200, "C")\nend\n'


def replace_file(path, text):
    """Writes text to path atomically, so that a reload never reads half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class StopTest(unittest.TestCase):
    def stop_with(self, sig):
        srv = Server()
        try:
            srv.start()
            # with work in progress: an idle connection and a half-sent message
            with TcpPeer(srv.tcp) as idle, TcpPeer(srv.tcp) as partial:
                partial.send(bytes(make_request("OPTIONS", srv.uri(), partial.via()))[:40])
                log = srv.stop(sig)  # asserts exit status 0 within 5 s
            self.assertIn(f"signal {int(sig)}", log)
            self.assertIn("stopped", log)
        finally:
            srv.cleanup()

    def test_sigterm(self):
        self.stop_with(signal.SIGTERM)

    def test_sigint(self):
        self.stop_with(signal.SIGINT)


class ReloadTest(unittest.TestCase):
    def answers(self, srv, n=8):
        """Reason phrases of the 200s to OPTIONS from n fresh sockets (spread over the workers)."""
        out = set()
        for _ in range(n):
            with UdpPeer() as p:
                r = p.request(srv.udp, make_request("OPTIONS", srv.uri(), p.via()))
                out.add(r.reason if r else None)
        return out

    def test_sighup_loads_changed_script(self):
        with Server(script=ROUTE % "A") as srv:
            self.assertEqual(self.answers(srv), {"A"})
            replace_file(srv.script_path, ROUTE % "B")
            srv.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            while self.answers(srv, 1) != {"B"}:
                self.assertLess(time.monotonic(), deadline, f"the new script never answered\n{srv.log()}")
                time.sleep(0.05)
            # every worker switched, not only one
            self.assertEqual(self.answers(srv, 16), {"B"})

    def test_sighup_refuses_broken_script(self):
        with Server(script=ROUTE % "A") as srv:
            self.assertEqual(self.answers(srv), {"A"})
            replace_file(srv.script_path, BROKEN)
            srv.send_signal(signal.SIGHUP)
            m = srv.wait_log(r"route\.lua:(\d+):")
            self.assertIsNotNone(m, f"the Lua error (file:line) was not logged\n{srv.log()}")
            self.assertEqual(m.group(1), "2")
            self.assertEqual(self.answers(srv, 16), {"A"}, "the old script stopped answering")
            # and a fixed script is taken afterwards
            replace_file(srv.script_path, ROUTE % "B")
            srv.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            while self.answers(srv, 1) != {"B"}:
                self.assertLess(time.monotonic(), deadline, f"the fixed script never answered\n{srv.log()}")
                time.sleep(0.05)


if __name__ == "__main__":
    unittest.main()
