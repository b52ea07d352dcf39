# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
The control plane: ksrctl against a running ksrd for every method (text and
--json output, exit status), JSON-RPC 2.0 errors on the raw unix socket, and
the HTTP endpoint (POST /RPC, GET /metrics).
"""
import http.client
import json
import os
import re
import socket
import stat
import subprocess
import time
import unittest
from pathlib import Path

from ksrtest import REPO, Server, UdpPeer, free_port, make_request, run_ksrd

ROUTE = '''
function ksr_request_route()
	if KSR.pv.get("$rU") == "fail" then error("failing on purpose") end
	KSR.sl.sl_send_reply(200, "OK")
end
'''

BUILTIN_METHODS = ["system.listMethods", "system.methodHelp", "core.version", "core.uptime", "core.psx",
                   "core.shmmem", "stats.get_statistics", "stats.fetch", "stats.reset_statistics",
                   "app_lua.reload", "app_lua.list", "app_lua.api_list"]


def ksrctl_path():
    p = Path(os.environ.get("KSRCTL", "build/ksrctl"))
    return p if p.is_absolute() else REPO / p


def run_ctl(*args, timeout=10):
    return subprocess.run([str(ksrctl_path()), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def raw_exchange(path, data, *, shut=False, timeout=2.0):
    """Sends data on a new connection to the unix socket; returns what comes back until close or timeout."""
    out = b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
    return out


def json_lines(data):
    """The JSON values in data, one per line (the unix socket ends each answer with a newline)."""
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


class RpcCtlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.http_port = free_port()
        cls.srv = Server(script=ROUTE, config={"rpc": {"http": f"127.0.0.1:{cls.http_port}"}})
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def setUp(self):
        self.assertTrue(self.srv.alive(), "ksrd is not running")

    # -- helpers
    def ctl(self, *args, status=0):
        res = run_ctl("-s", self.srv.rpc_socket, *args)
        self.assertEqual(res.returncode, status,
                         f"ksrctl {' '.join(map(str, args))}: exit {res.returncode}\nstdout {res.stdout!r}\n"
                         f"stderr {res.stderr!r}")
        return res

    def ctl_json(self, *args):
        return json.loads(self.ctl("--json", *args).stdout)

    def send_options(self, user="x", n=1):
        with UdpPeer() as p:
            for _ in range(n):
                r = p.request(self.srv.udp, make_request("OPTIONS", f"sip:{user}@127.0.0.1:{self.srv.port}", p.via()))
                self.assertIsNotNone(r)

    @staticmethod
    def text_stats(out):
        """{"group:name": value} from get_statistics text output."""
        stats = {}
        for line in out.splitlines():
            m = re.fullmatch(r"(\S+:\S+) = (\d+)", line)
            assert m, f"unexpected line {line!r}"
            stats[m.group(1)] = int(m.group(2))
        return stats

    # ---------------------------------------------------------------- system.*

    def test_list_methods(self):
        text = self.ctl("system.listMethods").stdout.splitlines()
        self.assertEqual(text, sorted(text), "sorted")
        for m in BUILTIN_METHODS:
            self.assertIn(m, text)
        self.assertEqual(self.ctl_json("system.listMethods"), text)

    def test_method_help(self):
        out = self.ctl("system.methodHelp", "core.psx").stdout
        self.assertIn("Worker", out)
        self.assertEqual(self.ctl_json("system.methodHelp", "app_lua.reload").strip(),
                         self.ctl("system.methodHelp", "app_lua.reload").stdout.strip())
        res = self.ctl("system.methodHelp", "no.such.method", status=1)
        self.assertIn("error 404", res.stderr)
        res = self.ctl("system.methodHelp", status=1)
        self.assertIn("error -32602", res.stderr)

    def test_every_method_has_help(self):
        for m in self.ctl_json("system.listMethods"):
            with self.subTest(method=m):
                self.assertTrue(self.ctl("system.methodHelp", m).stdout.strip(), f"{m} has no help")

    # ---------------------------------------------------------------- core.*

    def test_core_version(self):
        v = self.ctl_json("core.version")
        self.assertEqual(v["name"], "ksrd")
        dash_v = run_ksrd("-V").stdout
        self.assertIn(f"ksrd {v['version']}", dash_v)
        text = self.ctl("core.version").stdout
        self.assertIn("name: ksrd\n", text)
        self.assertIn(f"version: {v['version']}\n", text)
        self.assertIn("build_flags:", text)

    def test_core_uptime(self):
        a = self.ctl_json("core.uptime")
        for k in ("now", "up_since"):
            self.assertRegex(a[k], r"^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$")
        self.assertIsInstance(a["uptime"], int)
        time.sleep(1.1)
        b = self.ctl_json("core.uptime")
        self.assertGreaterEqual(b["uptime"] - a["uptime"], 1)
        self.assertEqual(b["up_since"], a["up_since"])
        self.assertRegex(self.ctl("core.uptime").stdout, r"(?m)^uptime: \d+$")

    def test_core_psx(self):
        ps = self.ctl_json("core.psx")
        self.assertEqual([w["IDX"] for w in ps], [0, 1], "two workers configured")
        tasks = {int(t) for t in os.listdir(f"/proc/{self.srv.proc.pid}/task")}
        for w in ps:
            self.assertIn(w["PID"], tasks, f"worker {w['IDX']}: {w['PID']} is not a thread of ksrd")
            self.assertEqual(w["DSC"], f"worker {w['IDX']}")
        text = self.ctl("core.psx").stdout
        self.assertRegex(text, r"IDX: 0\nPID: \d+\nDSC: worker 0\n\nIDX: 1\nPID: \d+\nDSC: worker 1\n")

    def test_core_shmmem(self):
        m = self.ctl_json("core.shmmem")
        for k in ("total", "free", "used", "real_used", "max_used", "fragments"):
            self.assertIsInstance(m.get(k), int, k)
        if m["total"]:  # 0 when malloc keeps no statistics (e.g. under AddressSanitizer)
            self.assertGreater(m["used"], 0)
            self.assertLessEqual(m["used"], m["total"])
        self.assertGreater(m["real_used"], 1 << 20)
        self.assertGreaterEqual(m["max_used"], m["real_used"])
        rss = int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{self.srv.proc.pid}/status").read_text()).group(1))
        self.assertLess(abs(m["real_used"] - rss * 1024), max(rss * 1024 // 2, 4 << 20),
                        f"real_used {m['real_used']} vs VmRSS {rss} kB")
        self.assertRegex(self.ctl("core.shmmem").stdout, r"(?m)^real_used: \d+$")

    # ---------------------------------------------------------------- stats.*

    def test_get_statistics_all_group_name(self):
        self.send_options(n=3)
        every = self.text_stats(self.ctl("stats.get_statistics", "all").stdout)
        self.assertEqual(self.text_stats(self.ctl("stats.get_statistics").stdout).keys(), every.keys(),
                         "no selector = all")
        self.assertIn("app_lua:script_errors", every)
        self.assertIn("app_lua:reloads", every)
        groups = {k.split(":")[0] for k in every}
        self.assertGreater(len(groups), 1)
        group = self.text_stats(self.ctl("stats.get_statistics", "app_lua").stdout)
        self.assertEqual(set(group), {k for k in every if k.startswith("app_lua:")})
        self.assertEqual(self.text_stats(self.ctl("stats.get_statistics", "app_lua:").stdout).keys(), group.keys())
        one = self.text_stats(self.ctl("stats.get_statistics", "app_lua:reloads").stdout)
        self.assertEqual(list(one), ["app_lua:reloads"])
        bare = self.text_stats(self.ctl("stats.get_statistics", "script_errors").stdout)
        self.assertEqual(list(bare), ["app_lua:script_errors"])
        two = self.text_stats(self.ctl("stats.get_statistics", "app_lua:reloads", "app_lua:reload_errors").stdout)
        self.assertEqual(set(two), {"app_lua:reloads", "app_lua:reload_errors"})
        # --json: the same lines as a list
        lines = self.ctl_json("stats.get_statistics", "app_lua")
        self.assertEqual(self.text_stats("\n".join(lines)).keys(), group.keys())
        # fetch: the same values as an object
        fetched = self.ctl_json("stats.fetch", "app_lua")
        self.assertEqual(set(fetched), {k.replace(":", ".") for k in group})
        res = self.ctl("stats.get_statistics", "no_such_group_or_stat", status=1)
        self.assertIn("error 404", res.stderr)

    def test_reset_statistics(self):
        self.send_options("fail", n=2)
        before = self.srv.stats()
        self.assertGreaterEqual(before["app_lua.script_errors"], 2)
        received = {k: v for k, v in before.items() if v > 0 and k != "app_lua.script_errors"}
        self.assertTrue(received, "some other counter should be non-zero by now")
        res = self.ctl("stats.reset_statistics", "app_lua:script_errors")
        self.assertEqual(res.stdout, "")
        after = self.srv.stats()
        self.assertEqual(after["app_lua.script_errors"], 0)
        for k, v in received.items():
            self.assertGreaterEqual(after[k], v, f"{k} was reset too")
        self.send_options("fail")
        self.assertEqual(self.srv.stats()["app_lua.script_errors"], 1, "counts again after a reset")
        self.ctl("stats.reset_statistics", "no_such_stat_at_all", status=1)

    # ---------------------------------------------------------------- app_lua.*

    def test_app_lua_list(self):
        info = self.ctl_json("app_lua.list")
        self.assertEqual(info["script"], str(self.srv.script_path))
        self.assertEqual(len(info["workers"]), 2)
        self.assertEqual(sorted(w["worker"] for w in info["workers"]), [0, 1])
        for w in info["workers"]:
            self.assertLessEqual(w["generation"], info["generation"])
            self.assertFalse(w["last_reload_failed"])
            self.assertGreater(w["memory"], 0)
            self.assertLessEqual(abs(w["loaded_at"] - time.time()), 600)
        text = self.ctl("app_lua.list").stdout
        self.assertIn(f"script: {self.srv.script_path}\n", text)
        self.assertEqual(text.count("last_reload_failed: false"), 2)

    def test_app_lua_reload(self):
        gen = self.ctl_json("app_lua.list")["generation"]
        out = self.ctl("app_lua.reload").stdout
        self.assertEqual(out, f"generation: {gen + 1}\nscript: {self.srv.script_path}\n")
        res = self.ctl_json("app_lua.reload")
        self.assertEqual(res, {"generation": gen + 2, "script": str(self.srv.script_path)})
        # a numeric parameter (Kamailio's script index) is accepted and ignored
        self.assertEqual(self.ctl_json("app_lua.reload", "0")["generation"], gen + 3)
        bad = self.srv.dir / "bad.lua"
        bad.write_text("function ksr_request_route(\n")
        res = self.ctl("app_lua.reload", bad, status=1)
        self.assertRegex(res.stderr, r"^error 500: reload refused: .*bad\.lua:\d+:")
        self.assertEqual(res.stdout, "")
        self.assertEqual(self.ctl_json("app_lua.list")["generation"], gen + 3)
        self.send_options()

    def test_app_lua_api_list(self):
        api = self.ctl_json("app_lua.api_list")
        self.assertEqual(api["msize"], len(api["methods"]))
        by_name = {(m["module"], m["name"]): m for m in api["methods"]}
        self.assertEqual(by_name[("sl", "sl_send_reply")], {"module": "sl", "name": "sl_send_reply", "ret": "int",
                                                             "params": "int, str"})
        self.assertEqual(by_name[("", "is_myself")]["ret"], "bool")
        self.assertEqual(by_name[("pv", "get")]["ret"], "xval")
        self.assertEqual(by_name[("x", "exit")]["ret"], "none")
        self.assertEqual(by_name[("", "is_INVITE")]["params"], "")
        dump = json.loads(run_ksrd("--dump-api").stdout)
        self.assertEqual({(f["module"], f["name"]) for f in dump["functions"]}, set(by_name),
                         "app_lua.api_list and ksrd --dump-api list the same functions")
        text = self.ctl("app_lua.api_list").stdout
        self.assertIn(f"msize: {api['msize']}\n", text)

    # ---------------------------------------------------------------- exit status, arguments

    def test_exit_status(self):
        res = self.ctl("no.such.method", status=1)
        self.assertEqual(res.stderr, "error -32601: Method not found\n")
        self.assertEqual(res.stdout, "")
        res = run_ctl("-s", self.srv.dir / "no-such.sock", "core.version")
        self.assertEqual(res.returncode, 2)
        self.assertIn("cannot connect", res.stderr)
        res = run_ctl("-s", self.srv.rpc_socket)
        self.assertEqual(res.returncode, 2, "no method: usage")
        self.assertIn("usage", res.stderr)
        res = run_ctl("--bogus-option", "core.version")
        self.assertEqual(res.returncode, 2)
        self.assertEqual(run_ctl("--help").returncode, 0)

    def test_missing_server(self):
        with Server(script=ROUTE) as srv:
            path = srv.rpc_socket
            self.assertEqual(run_ctl("-s", path, "core.version").returncode, 0)
        # stopped: the socket file is removed and ksrctl says so
        self.assertFalse(path.exists(), "the socket file outlived ksrd")
        res = run_ctl("-s", path, "core.version")
        self.assertEqual(res.returncode, 2)
        self.assertIn("is ksrd running?", res.stderr)

    def test_socket_mode(self):
        st = os.stat(self.srv.rpc_socket)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)

    # ---------------------------------------------------------------- raw JSON-RPC on the socket

    def test_raw_parse_errors(self):
        for data in (b'{bad}\n', b'not json\n', b'{"jsonrpc": "2.0", "method": "core.version",, "id": 1}\n',
                     b'{"a": tru}', b']\n'):
            with self.subTest(data=data):
                answers = json_lines(raw_exchange(self.srv.rpc_socket, data))
                self.assertEqual(len(answers), 1, f"answers to {data!r}: {answers}")
                self.assertEqual(answers[0]["error"]["code"], -32700)
                self.assertIsNone(answers[0]["id"])
                self.assertEqual(answers[0]["jsonrpc"], "2.0")
        self.assertTrue(self.srv.alive())
        self.ctl("core.version")


    def test_raw_truncated_json_then_eof(self):
        data = raw_exchange(self.srv.rpc_socket, b'{"jsonrpc": "2.0", "method": "core.version", "id": 1', shut=True)
        answers = json_lines(data)
        self.assertEqual([a["error"]["code"] for a in answers], [-32700])


    def test_raw_invalid_token_inside_an_open_object(self):
        t0 = time.monotonic()
        data = raw_exchange(self.srv.rpc_socket, b'{"jsonrpc": "2.0", bad', timeout=2.0)
        self.assertLess(time.monotonic() - t0, 1.9)
        self.assertEqual([a["error"]["code"] for a in json_lines(data)], [-32700])

    def test_raw_method_not_found_and_invalid_requests(self):
        reqs = [
            ({"jsonrpc": "2.0", "method": "no.such", "id": 7}, -32601, 7),
            ({"jsonrpc": "2.0", "method": "no.such", "id": "abc"}, -32601, "abc"),
            ({"jsonrpc": "2.0", "method": 5, "id": 8}, -32600, 8),
            ({"jsonrpc": "1.0", "method": "core.version", "id": 9}, -32600, 9),
            ({"jsonrpc": "2.0", "method": "core.version", "params": 3, "id": 10}, -32600, 10),
            ({"jsonrpc": "2.0", "method": "system.methodHelp", "params": [], "id": 11}, -32602, 11),
            ([], -32600, None),
            (42, -32600, None),
        ]
        for req, code, rid in reqs:
            with self.subTest(req=req):
                answers = json_lines(raw_exchange(self.srv.rpc_socket, json.dumps(req).encode() + b"\n",
                                                  shut=True))
                self.assertEqual(len(answers), 1, answers)
                self.assertEqual(answers[0]["error"]["code"], code)
                self.assertEqual(answers[0]["id"], rid)

    def test_raw_several_requests_batch_and_notification(self):
        reqs = (b'{"jsonrpc":"2.0","method":"core.version","id":1}'
                b'{"jsonrpc":"2.0","method":"core.uptime"}\n'            # notification: no answer
                b'[{"jsonrpc":"2.0","method":"core.version","id":2},'
                b'{"jsonrpc":"2.0","method":"nope","id":3},'
                b'{"jsonrpc":"2.0","method":"core.uptime"}]\n'
                b'{"jsonrpc":"2.0","method":"app_lua.list","params":{},"id":4}\n')
        answers = json_lines(raw_exchange(self.srv.rpc_socket, reqs, shut=True))
        self.assertEqual(len(answers), 3, answers)
        self.assertEqual(answers[0]["id"], 1)
        self.assertEqual(answers[0]["result"]["name"], "ksrd")
        self.assertIsInstance(answers[1], list)
        self.assertEqual([(a["id"], "result" in a) for a in answers[1]], [(2, True), (3, False)])
        self.assertEqual(answers[1][1]["error"]["code"], -32601)
        self.assertEqual(answers[2]["id"], 4)
        self.assertIn("workers", answers[2]["result"])

    def test_raw_named_params(self):
        req = {"jsonrpc": "2.0", "method": "system.methodHelp", "params": {"method": "core.psx"}, "id": 5}
        answers = json_lines(raw_exchange(self.srv.rpc_socket, json.dumps(req).encode(), shut=True))
        self.assertIn("Worker", answers[0]["result"])

    # ---------------------------------------------------------------- HTTP

    def http(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=5)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.getheader("Content-Type"), r.read()
        finally:
            c.close()

    def test_http_post_rpc(self):
        for path in ("/RPC", "/"):
            with self.subTest(path=path):
                status, ctype, body = self.http("POST", path, json.dumps(
                    {"jsonrpc": "2.0", "method": "core.version", "id": 1}), {"Content-Type": "application/json"})
                self.assertEqual(status, 200)
                self.assertEqual(ctype, "application/json")
                ans = json.loads(body)
                self.assertEqual(ans["result"]["name"], "ksrd")
                self.assertEqual(ans["id"], 1)
        status, _, body = self.http("POST", "/RPC", json.dumps({"jsonrpc": "2.0", "method": "app_lua.list", "id": 2}))
        self.assertEqual(len(json.loads(body)["result"]["workers"]), 2)
        status, _, body = self.http("POST", "/RPC", json.dumps({"jsonrpc": "2.0", "method": "nope", "id": 3}))
        self.assertEqual((status, json.loads(body)["error"]["code"]), (200, -32601))
        status, _, body = self.http("POST", "/RPC", "{broken")
        self.assertEqual((status, json.loads(body)["error"]["code"]), (200, -32700))
        # a notification: nothing to answer
        status, _, body = self.http("POST", "/RPC", json.dumps({"jsonrpc": "2.0", "method": "core.uptime"}))
        self.assertEqual((status, body), (204, b""))

    def test_http_metrics(self):
        self.send_options("fail")
        status, ctype, body = self.http("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain"), ctype)
        text = body.decode()
        values = {}
        for line in text.splitlines():
            if line.startswith("#"):
                self.assertRegex(line, r"^# TYPE ksrd_\w+ (counter|gauge)$")
                continue
            name, value = line.split(" ")
            self.assertRegex(name, r"^ksrd_[a-zA-Z0-9_]+$")
            values[name] = int(value)
        self.assertGreaterEqual(values["ksrd_app_lua_script_errors"], 1)
        fetched = self.srv.stats()
        self.assertEqual(len(values), len(fetched), "one metric per statistic")
        self.assertIn("# TYPE ksrd_app_lua_script_errors counter", text)

    def test_http_refusals(self):
        # another method on /RPC, an unknown path, a page's Origin, a foreign Host
        self.assertEqual(self.http("GET", "/RPC")[0], 405)
        self.assertEqual(self.http("GET", "/nowhere")[0], 404)
        body = json.dumps({"jsonrpc": "2.0", "method": "core.version", "id": 1})
        self.assertEqual(self.http("POST", "/RPC", body, {"Origin": "http://evil.example"})[0], 403)
        self.assertEqual(self.http("POST", "/RPC", body, {"Host": "evil.example"})[0], 403)
        self.assertEqual(self.http("POST", "/RPC", body, {"Host": "localhost:1"})[0], 200)

    def test_http_not_configured(self):
        with Server(script=ROUTE) as srv:
            self.assertNotIn("control over HTTP", srv.log())


if __name__ == "__main__":
    unittest.main()
