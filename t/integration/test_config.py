# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""The command line: -c on good and bad configurations, -V, --dump-api, start-up failures."""
import json
import re
import socket
import subprocess
import tempfile
import unittest
from pathlib import Path

from ksrtest import LOCAL4, REPO, Server, free_port, run_ksrd

GOOD_ROUTE = 'function ksr_request_route()\n\tKSR.sl.sl_send_reply(200, "OK")\nend\n'


class ConfigCheckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ksrtest-cfg-")
        self.dir = Path(self.tmp.name)
        (self.dir / "route.lua").write_text(GOOD_ROUTE)
        self.port = free_port()

    def tearDown(self):
        self.tmp.cleanup()

    def config(self, body, name="ksrd.lua", listen=True):
        """Writes a config: `body` plus a valid listen (unless given) and script (unless given)."""
        text = ""
        if listen:
            text += f'listen = {{ "udp:{LOCAL4}:{self.port}", "tcp:{LOCAL4}:{self.port}" }}\n'
        if "script" not in body:
            text += 'script = "route.lua"\n'
        path = self.dir / name
        path.write_text(text + body)
        return path

    def check(self, path):
        return run_ksrd("-c", "-f", path)

    def assertRejected(self, body, *patterns, name="ksrd.lua", listen=True, culprit=None):
        """ksrd -c fails; stderr names the file at fault (default: the config) and matches every
        pattern (regexes)."""
        path = self.config(body, name, listen)
        r = self.check(path)
        self.assertNotEqual(r.returncode, 0, f"accepted:\n{body}\nstdout: {r.stdout}")
        named = self.dir / culprit if culprit else path
        self.assertIn(str(named), r.stderr, "the message does not name the file")
        for p in patterns:
            self.assertRegex(r.stderr, p)
        self.assertLess(r.returncode, 128, "killed by a signal")
        return r.stderr

    def test_good_config(self):
        r = self.check(self.config("workers = 2\nlog = { level = \"notice\" }\ntcp = { idle_timeout = 30 }\n"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("OK", r.stdout)

    def test_shipped_configs(self):
        for path in [REPO / "conf" / "ksrd.lua", *sorted((REPO / "conf" / "examples").glob("*.lua"))]:
            with self.subTest(path.name):
                r = self.check(path)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("OK", r.stdout)

    def test_unknown_key(self):
        self.assertRejected("wokers = 2\n", r"\bwokers\b", r"unknown key", r"workers")

    def test_nested_unknown_key(self):
        self.assertRejected("tcp = { idle_timout = 5 }\n", r"tcp\.idle_timout", r"unknown key",
                            r"tcp\.idle_timeout")

    def test_wrong_type(self):
        self.assertRejected('workers = "two"\n', r"workers", r"expected integer", r'got string "two"')
        self.assertRejected("tcp = { idle_timeout = 1.5 }\n", r"tcp\.idle_timeout", r"expected integer")
        self.assertRejected("tcp = { keepalive_pong = 1 }\n", r"tcp\.keepalive_pong", r"expected boolean")
        self.assertRejected('tcp = "fast"\n', r"\btcp\b", r"expected table")

    def test_bad_listen_address(self):
        self.assertRejected('listen = { "udp:1.2.3:5060" }\n', r"listen\[1\]", r"expected", r"IPv4",
                            listen=False)
        self.assertRejected('listen = { "udp:127.0.0.1:5060", "sctp:127.0.0.1:5060" }\n',
                            r"listen\[2\]", r"expected", listen=False)

    def test_bad_port(self):
        for port in ("70000", "0", "x", ""):
            with self.subTest(port=port):
                self.assertRejected(f'listen = {{ "udp:127.0.0.1:{port}" }}\n', r"listen\[1\]",
                                    r"expected", r"port", listen=False)

    def test_ipv6_without_brackets(self):
        self.assertRejected('listen = { "udp:::1:5060" }\n', r"listen\[1\]", r"bracket", listen=False)

    def test_bad_log_level(self):
        self.assertRejected('log = { level = "verbose" }\n', r"log\.level", r"expected", r"info",
                            r'"verbose"')

    def test_missing_script(self):
        self.assertRejected('script = "nowhere.lua"\n', r"\bscript\b", r"nowhere\.lua")

    def test_lua_syntax_error_in_config(self):
        self.assertRejected("workers = = 2\n", r"ksrd\.lua:\d+:")
        # the line of the mistake, counting the lines config() puts first
        err = self.assertRejected("\n\nworkers = (2\n", r"ksrd\.lua:\d+:")
        self.assertRegex(err, r"ksrd\.lua:[56]:")

    def test_config_runtime_error(self):
        self.assertRejected('local t = nil\nworkers = t.x\n', r"ksrd\.lua:\d+:")

    def test_script_without_request_route(self):
        (self.dir / "noroute.lua").write_text("function ksr_reply_route() end\n")
        self.assertRejected('script = "noroute.lua"\n', r"ksr_request_route", culprit="noroute.lua")

    def test_script_syntax_error(self):
        (self.dir / "broken.lua").write_text("function ksr_request_route()\n\tif then\nend\n")
        self.assertRejected('script = "broken.lua"\n', r"broken\.lua:2:", culprit="broken.lua")

    def test_script_error_at_load(self):
        (self.dir / "boom.lua").write_text('local x = 1\nerror("boom at load")\n'
                                           "function ksr_request_route() end\n")
        self.assertRejected('script = "boom.lua"\n', r"boom\.lua:2:", r"boom at load", culprit="boom.lua")


class CommandLineTest(unittest.TestCase):
    def test_version(self):
        r = run_ksrd("-V")
        self.assertEqual(r.returncode, 0, r.stderr)
        version = re.search(r"version:\s*'([^']+)'", (REPO / "meson.build").read_text()).group(1)
        self.assertRegex(r.stdout, r"^ksrd " + re.escape(version) + r"\b")

    def test_dump_api(self):
        r = run_ksrd("--dump-api")
        self.assertEqual(r.returncode, 0, r.stderr)
        api = json.loads(r.stdout)
        fns = {(f["module"], f["name"]): f for f in api["functions"]}
        self.assertIn(("sl", "sl_send_reply"), fns)
        self.assertEqual(fns[("sl", "sl_send_reply")]["params"], ["int", "str"])
        self.assertIn(("", "forward"), fns)
        self.assertIn(("pv", "get"), fns)

    def test_bad_option(self):
        r = run_ksrd("--no-such-option")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("usage", r.stderr)

    def test_missing_config_file(self):
        r = run_ksrd("-c", "-f", "/nonexistent/ksrd.lua")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/nonexistent/ksrd.lua", r.stderr)

    def test_listen_address_in_use(self):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            srv = Server()
            try:
                with socket.socket(socket.AF_INET, kind) as busy:
                    busy.bind(srv.udp)
                    if kind == socket.SOCK_STREAM:
                        busy.listen(1)
                    try:
                        r = run_ksrd("-f", srv.cfg_path, "-E", timeout=5)
                    except subprocess.TimeoutExpired:
                        self.fail("ksrd started on an address in use")
                proto = "udp" if kind == socket.SOCK_DGRAM else "tcp"
                self.assertNotEqual(r.returncode, 0)
                self.assertLess(r.returncode, 128)
                self.assertIn(f"{proto}:{LOCAL4}:{srv.port}", r.stderr)
                self.assertRegex(r.stderr, r"(?i)in use")
            finally:
                srv.cleanup()


if __name__ == "__main__":
    unittest.main()
