-- SPDX-License-Identifier: MIT
-- Specs of the KSR mock itself (lua/lib/ksr/mock.lua).

local mock = require "ksr.mock"
local api = require "ksr.api"

-- A copy of the binding table with some definitions added or replaced
-- (module "" = top level), to test the mock against a table that grows.
local function api_with(extra)
	local out = {}
	for mod, fns in pairs(api) do
		out[mod] = {}
		for name, def in pairs(fns) do
			out[mod][name] = def
		end
	end
	for key, def in pairs(extra) do
		local mod, name = key:match("^(.*)%.(.*)$")
		if not mod then
			mod, name = "", key
		end
		out[mod] = out[mod] or {}
		out[mod][name] = def or nil
	end
	return out
end

local ALL = { "request", "reply", "failure", "branch", "onsend", "event", "branch_failure" }
local function def(params, ret, null, routes)
	return { params = params, ret = ret, null = null or "nil", routes = routes or ALL, doc = "test" }
end

-- fn fails with an error containing text (at a line of this file: where)
local function fails(fn, text, where)
	local ok, err = pcall(fn)
	assert.is_false(ok, "no error")
	assert.is_string(err)
	assert.matches(text, err, 1, true)
	if where then
		assert.matches("^t/lua/mock_spec%.lua:%d+: ", err)
	end
end

local function has(mod, name)
	return api[mod] ~= nil and api[mod][name] ~= nil
end

describe("ksr.mock", function()
	local KSR

	before_each(function()
		KSR = mock.new()
	end)

	describe("the KSR table", function()
		it("has every function of the binding table, and each answers with its declared type", function()
			local n = 0
			for mod, fns in pairs(api) do
				for name, d in pairs(fns) do
					local args = {}
					for i, p in ipairs(d.params) do
						args[i] = p == "int" and 1 or "x"
					end
					local t = mod == "" and KSR or KSR[mod]
					assert.is_function(t[name], "KSR." .. mod .. "." .. name)
					local ok, v = pcall(t[name], unpack(args))
					if ok then
						if d.ret == "int" then
							assert.is_number(v, name)
						elseif d.ret == "bool" then
							assert.is_boolean(v, name)
						end
					else
						assert.are.equal(mock.EXIT, v) -- KSR.x.exit / KSR.x.drop
					end
					n = n + 1
				end
			end
			assert.is_true(n > 20)
		end)

		it("sets the globals KSR and KSRVERSION unless told not to", function()
			assert.are.equal(KSR, _G.KSR)
			assert.are.equal("2.0", _G.KSRVERSION)
			local other = mock.new({ global = false })
			assert.are_not.equal(other, _G.KSR)
		end)

		it("fails on a function ksrd does not have", function()
			fails(function() KSR.sl.no_such_reply(200, "OK") end, "KSR.sl.no_such_reply does not exist in ksrd", true)
			fails(function() KSR.no_such_function() end, "KSR.no_such_function does not exist in ksrd", true)
		end)

		it("gives nil for a KEMI module ksrd does not have, so scripts can probe it", function()
			assert.is_nil(KSR.acc)
			assert.is_nil(KSR.rtpengine)
		end)

		it("fails a route that uses a module ksrd does not have", function()
			local function route() KSR.acc.acc_log_request("x") end
			fails(function() mock.run(route) end, "KSR.acc does not exist in ksrd")
			local ok, err = pcall(mock.run, route)
			assert.is_false(ok)
			assert.matches("KSR.acc does not exist in ksrd", err, 1, true)
		end)

		it("is read-only", function()
			assert.has_error(function() KSR.sl.sl_send_reply = nil end)
			assert.has_error(function() KSR.foo = 1 end)
		end)

		it("follows the table: a function added to it works at once, with its built-in behaviour", function()
			local K = mock.new({ api = api_with({ ["hdr.is_present"] = def({ "str" }, "int") }) })
			mock.request({ headers = { ["X-A"] = "1" } })
			assert.are.equal(1, K.hdr.is_present("X-A"))
			assert.are.equal(-1, K.hdr.is_present("X-B"))
			local K2 = mock.new({ api = api_with({ ["hdr.is_present"] = false, ["hdr.get"] = false }) })
			assert.has_error(function() K2.hdr.is_present("X-A") end)
		end)

		it("gives neutral values for functions without built-in behaviour", function()
			local K = mock.new({ api = api_with({
				["auth.pv_auth_check"] = def({ "str", "str", "int", "int" }, "int"),
				["htable.sht_get"] = def({ "str", "str" }, "xval"),
				["htable.sht_gete"] = def({ "str", "str" }, "xval", "empty"),
				["is_myself_suri"] = def({}, "bool"),
			}) })
			assert.are.equal(1, K.auth.pv_auth_check("a", "b", 0, 1))
			assert.is_nil(K.htable.sht_get("t", "k"))
			assert.are.equal("", K.htable.sht_gete("t", "k"))
			assert.is_true(K.is_myself_suri())
		end)
	end)

	describe("arguments", function()
		it("fails on too few or too many arguments, naming the function", function()
			fails(function() KSR.sl.sl_send_reply(404) end,
				"KSR.sl.sl_send_reply: expected 2 argument(s) (int, str), got 1", true)
			fails(function() KSR.sl.sl_send_reply(404, "Not Found", 1) end,
				"KSR.sl.sl_send_reply: expected 2 argument(s) (int, str), got 3", true)
			fails(function() KSR.is_INVITE("x") end, "KSR.is_INVITE: expected no argument, got 1", true)
		end)

		it("fails on a wrong type, naming the argument", function()
			fails(function() KSR.sl.sl_send_reply("404", "Not Found") end,
				"KSR.sl.sl_send_reply: argument 1 must be an integer (int), got string", true)
			fails(function() KSR.sl.sl_send_reply(404.5, "Not Found") end,
				"KSR.sl.sl_send_reply: argument 1 must be an integer (int), got number 404.5", true)
			fails(function() KSR.sl.sl_send_reply(404, {}) end,
				"KSR.sl.sl_send_reply: argument 2 must be a string (str), got table", true)
			fails(function() KSR.pv.get(nil) end, "KSR.pv.get: argument 1 must be a string (str), got nil", true)
		end)

		it("takes a number for a str parameter, as a string (lua_tostring)", function()
			KSR.sl.sl_send_reply(404, 42)
			assert.are.same({ code = 404, reason = "42", headers = {}, fn = "sl.sl_send_reply" }, mock.replies[1])
			assert.are.same({ name = "sl.sl_send_reply", args = { 404, "42" } }, mock.calls[1])
		end)

		it("fails the spec even when the route catches the error", function()
			local function route()
				pcall(KSR.sl.sl_send_reply, "200", "OK")
				KSR.sl.sl_send_reply(200, "OK")
			end
			assert.has_error(function() mock.run(route) end)
		end)
	end)

	describe("mock.run", function()
		it("ends the route at KSR.x.exit() as a normal end", function()
			local after = false
			local rc = mock.run(function()
				KSR.sl.sl_send_reply(404, "Not Found")
				KSR.x.exit()
				after = true
			end)
			assert.are.equal(1, rc)
			assert.is_false(after)
			assert.are.equal(1, #mock.replies)
			assert.are.same({}, mock.errors)
		end)

		it("raises a sentinel compared by identity: a pcall around KSR.x.exit() swallows it", function()
			local ok, err, after
			mock.run(function()
				ok, err = pcall(KSR.x.exit)
				after = true
			end)
			assert.is_false(ok)
			assert.are.equal(mock.EXIT, err)
			assert.is_true(after)
			-- a string that looks like Kamailio's marker is an ordinary error
			assert.are.equal(-1, (mock.run(function() error("~~ksr~exit~~") end)))
		end)

		it("marks the message dropped on KSR.x.drop()", function()
			mock.reply({ status = 180 })
			assert.are.equal(1, mock.run(function() KSR.x.drop() end))
			assert.is_true(mock.dropped)
			assert.are.same({}, mock.replies)
		end)

		it("records a script error and answers 500 when nothing replied to a request", function()
			function _G.ksr_mock_spec_route()
				local t = nil
				return t.field
			end
			local rc, err = mock.run("ksr_mock_spec_route")
			_G.ksr_mock_spec_route = nil
			assert.are.equal(-1, rc)
			assert.matches("attempt to index", err, 1, true)
			assert.are.equal(1, #mock.errors)
			assert.are.equal("ksr_mock_spec_route", mock.errors[1].route)
			assert.are.same({ code = 500, reason = "Server Internal Error", headers = {}, fn = "ksrd", auto = true },
				mock.replies[1])
			assert.is_true(mock.logged("error in ksr_mock_spec_route", "err"))
		end)

		it("does not answer 500 when the route replied before the error, nor to an ACK, nor for replies", function()
			mock.run(function()
				KSR.sl.sl_send_reply(403, "Forbidden")
				error("boom")
			end)
			assert.are.equal(1, #mock.replies)
			assert.are.equal(403, mock.replies[1].code)

			mock.request({ method = "ACK" })
			assert.are.equal(-1, (mock.run(function() error("boom") end)))
			assert.are.same({}, mock.replies)

			mock.reply({ status = 200 })
			assert.are.equal(-1, (mock.run(function() error("boom") end)))
			assert.are.same({}, mock.replies)

			mock.request({})
			assert.are.equal(-1, (mock.run(function() error("boom") end, { route = "failure" })))
			assert.are.same({}, mock.replies)
		end)

		it("locks the globals while the route runs, as ksrd does after loading the script", function()
			local rc, err = mock.run(function() _G.ksr_mock_stray = 1 end)
			assert.are.equal(-1, rc)
			assert.matches("assignment to undeclared global 'ksr_mock_stray'", err, 1, true)
			assert.is_nil(rawget(_G, "ksr_mock_stray"))
			_G.ksr_mock_after_run = true -- unlocked again
			_G.ksr_mock_after_run = nil
		end)

		it("loads a script in the load-time route", function()
			local path = os.tmpname()
			local f = assert(io.open(path, "w"))
			f:write("KSR.info('loading')\nKSR.sl.sl_send_reply(200, 'OK')\n",
				"function ksr_mock_loaded_route() KSR.sl.sl_send_reply(200, 'OK') end\n")
			f:close()
			mock.load(path)
			assert.is_true(mock.logged("loading", "info"))
			assert.is_true(mock.logged("KSR.sl.sl_send_reply is not allowed in a load-time route", "err"))
			assert.are.same({}, mock.replies)
			assert.are.equal(1, mock.run("ksr_mock_loaded_route"))
			assert.are.equal(1, #mock.replies)
			_G.ksr_mock_loaded_route = nil
			f = assert(io.open(path, "w"))
			f:write("KSR.x.exit()\n")
			f:close()
			fails(function() mock.load(path) end, "KSR.x.exit() at load time")
			os.remove(path)
			fails(function() mock.load(path) end, "mock.load: ")
		end)

		it("passes arguments, for event routes", function()
			local got
			mock.run(function(ev) got = ev end, { route = "event", args = { "dialog:end" } })
			assert.are.equal("dialog:end", got)
		end)

		it("refuses what is not a function and unknown route types", function()
			fails(function() mock.run("no_such_global_route") end, "mock.run: no function no_such_global_route")
			assert.has_error(function() mock.run(function() end, { route = "bogus" }) end)
		end)

		it("refuses calls not allowed in the route, as ksrd does", function()
			mock.reply({ status = 200 })
			local rc
			mock.run(function() rc = KSR.sl.sl_send_reply(200, "OK") end)
			assert.are.equal(-1, rc)
			assert.are.same({}, mock.replies)
			assert.is_true(mock.logged("KSR.sl.sl_send_reply is not allowed in a reply route", "err"))
			local fwd
			mock.request({})
			mock.run(function() fwd = KSR.forward() end, { route = "onsend" })
			assert.are.equal(-1, fwd)
		end)
	end)

	describe("messages and pseudo-variables", function()
		it("makes a request with sensible defaults", function()
			mock.request({ method = "INVITE", ruri = "sip:bob@example.com", src_ip = "192.0.2.7", src_port = 5070 })
			assert.are.equal("INVITE", KSR.pv.get("$rm"))
			assert.are.equal("sip:bob@example.com", KSR.pv.get("$ru"))
			assert.are.equal("bob", KSR.pv.get("$rU"))
			assert.are.equal("example.com", KSR.pv.get("$rd"))
			assert.is_nil(KSR.pv.get("$rp"))
			assert.are.equal("sip:alice@example.com", KSR.pv.get("$fu"))
			assert.are.equal("alice", KSR.pv.get("$fU"))
			assert.are.equal("example.com", KSR.pv.get("$fd"))
			assert.is_string(KSR.pv.get("$ft"))
			assert.are.equal("sip:bob@example.com", KSR.pv.get("$tu"))
			assert.is_nil(KSR.pv.get("$tt"))
			assert.is_string(KSR.pv.get("$ci"))
			assert.are.equal(1, KSR.pv.get("$cs"))
			assert.are.equal("70", KSR.pv.get("$hdr(Max-Forwards)"))
			assert.are.equal("192.0.2.7", KSR.pv.get("$si"))
			assert.are.equal(5070, KSR.pv.get("$sp"))
			assert.are.equal("udp", KSR.pv.get("$pr"))
			assert.are.equal("udp", KSR.pv.get("$proto"))
			assert.are.equal(1, KSR.pv.get("$mt"))
			assert.matches("^INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK",
				KSR.pv.get("$mb"))
			assert.is_true(KSR.is_INVITE())
			assert.is_false(KSR.is_BYE())
			assert.is_true(KSR.is_method("INVITE"))
			assert.is_false(KSR.is_method("invite"))
			assert.is_true(KSR.is_method_in("RI"))
			assert.is_false(KSR.is_method_in("RO"))
			assert.is_true(KSR.is_UDP())
			assert.is_false(KSR.is_TCPX())
		end)

		it("takes headers as a map or a list; a name given replaces the default, false removes it", function()
			mock.request({
				headers = {
					{ "Route", "<sip:p1.example.com;lr>" },
					{ "Route", "<sip:p2.example.com;lr>" },
					["From"] = "\"Alice\" <sip:alice@atlanta.example.com>;tag=42",
					["Max-Forwards"] = false,
					["X-Multi"] = { "a", "b" },
					["User-Agent"] = "softphone 1.0",
				},
			})
			assert.are.equal("atlanta.example.com", KSR.pv.get("$fd"))
			assert.are.equal("42", KSR.pv.get("$ft"))
			assert.are.equal("\"Alice\"", KSR.pv.get("$fn"))
			assert.is_nil(KSR.pv.get("$hdr(Max-Forwards)"))
			assert.are.equal("<sip:p2.example.com;lr>", KSR.pv.get("$hdr(Route)[1]"))
			assert.are.equal("<sip:p2.example.com;lr>", KSR.pv.get("$hdr(Route)[-1]"))
			assert.are.equal(2, KSR.pv.get("$hdrc(Route)"))
			assert.are.equal("b", KSR.pv.get("$hdr(x-multi)[1]"))
			assert.are.equal("softphone 1.0", KSR.pv.get("$ua"))
			assert.matches("From: \"Alice\" <sip:alice@atlanta.example.com>;tag=42\r\n", KSR.pv.get("$mb"), 1, true)
		end)

		it("refuses unknown fields and bad values, at the spec's line", function()
			fails(function() mock.request({ header = {} }) end, "mock.request: unknown field 'header'", true)
			fails(function() mock.request({ ruri = "bob" }) end, "not a valid R-URI: 'bob'", true)
			fails(function() mock.reply({ status = 99 }) end, "bad reply status 99", true)
			fails(function() mock.request({ proto = "carrier-pigeon" }) end, "unknown proto", true)
		end)

		it("knows compact header names", function()
			mock.request({ headers = { ["f"] = "<sip:carol@chicago.example.com>;tag=9", ["i"] = "abc@host" } })
			assert.are.equal("carol", KSR.pv.get("$fU"))
			assert.are.equal("abc@host", KSR.pv.get("$ci"))
			assert.are.equal("abc@host", KSR.pv.get("$hdr(Call-ID)"))
		end)

		it("makes replies", function()
			mock.reply({ status = 486, method = "INVITE" })
			assert.are.equal(486, KSR.pv.get("$rs"))
			assert.are.equal("Busy Here", KSR.pv.get("$rr"))
			assert.are.equal("INVITE", KSR.pv.get("$rm"))
			assert.is_nil(KSR.pv.get("$ru"))
			assert.is_string(KSR.pv.get("$tt"))
			assert.are.equal(2, KSR.pv.get("$mt"))
			assert.is_true(KSR.is_INVITE())
		end)

		it("applies get/gete/getw null conventions", function()
			mock.request({ ruri = "sip:example.com" })
			assert.is_nil(KSR.pv.get("$rU"))
			assert.are.equal("", KSR.pv.gete("$rU"))
			assert.are.equal("<null>", KSR.pv.getw("$rU"))
			assert.are.equal("example.com", KSR.pv.getw("$rd"))
			assert.is_true(KSR.pv.is_null("$rU"))
			assert.is_false(KSR.pv.is_null("$rd"))
		end)

		it("changes the R-URI and $du at once", function()
			assert.is_true(KSR.seturi("sip:carol@chicago.example.com:5080;transport=tcp"))
			assert.are.equal("carol", KSR.pv.get("$rU"))
			assert.are.equal("5080", KSR.pv.get("$rp"))
			assert.is_true(KSR.pv.sets("$rU", "dave"))
			assert.are.equal("sip:dave@chicago.example.com:5080;transport=tcp", KSR.pv.get("$ru"))
			assert.are.equal("sip:bob@example.com", KSR.pv.get("$ou"))
			assert.is_false(KSR.isdsturiset())
			assert.is_true(KSR.setdsturi("sip:10.0.0.1:5062;transport=tcp"))
			assert.is_true(KSR.isdsturiset())
			assert.are.equal("10.0.0.1", KSR.pv.get("$dd"))
			assert.are.equal(5062, KSR.pv.get("$dp"))
			assert.are.equal("tcp", KSR.pv.get("$dP"))
			assert.is_true(KSR.pv.unset("$du"))
			assert.is_nil(KSR.pv.get("$du"))
			assert.is_false(KSR.seturi("not a uri"))
			assert.is_true(mock.logged("KSR.seturi: not a valid URI: 'not a uri'", "err"))
		end)

		it("refuses to write read-only pseudo-variables and logs unknown ones", function()
			assert.is_false(KSR.pv.sets("$ci", "x"))
			assert.is_true(mock.logged("cannot assign pseudo-variable '$ci'"))
			assert.is_nil(KSR.pv.get("$nosuchpv"))
			assert.is_true(mock.logged("unknown pseudo-variable '$nosuchpv'"))
			assert.is_true(KSR.pv.is_null("$nosuchpv"))
		end)

		it("keeps $var and $shv across messages, $avp for one message only, until reset", function()
			assert.is_true(KSR.pv.seti("$var(n)", 5))
			assert.is_true(KSR.pv.sets("$shv(s)", "shared"))
			assert.is_true(KSR.pv.sets("$avp(a)", "one"))
			assert.are.equal(5, KSR.pv.get("$var(n)"))
			mock.request({})
			assert.are.equal(5, KSR.pv.get("$var(n)"))
			assert.are.equal("shared", KSR.pv.get("$shv(s)"))
			assert.is_nil(KSR.pv.get("$avp(a)"))
			mock.reset()
			assert.is_nil(KSR.pv.get("$var(n)"))
			assert.is_nil(KSR.pv.get("$shv(s)"))
		end)

		it("reads and writes pseudo-variables for the spec with mock.pv", function()
			mock.pv("$var(x)", "seed")
			assert.are.equal("seed", KSR.pv.get("$var(x)"))
			assert.are.equal("sip:bob@example.com", mock.pv("$ru"))
			assert.has_error(function() mock.pv("$ci", "x") end)
		end)

		it("keeps flags in mock.flags and $mf", function()
			assert.is_false(KSR.isflagset(3))
			assert.is_true(KSR.setflag(3))
			assert.is_true(KSR.setflag(0))
			assert.is_true(KSR.isflagset(3))
			assert.are.same({ [0] = true, [3] = true }, mock.flags)
			assert.are.equal(9, KSR.pv.get("$mf"))
			assert.is_true(KSR.resetflag(3))
			assert.are.equal(1, KSR.pv.get("$mf"))
			assert.is_false(KSR.setflag(32))
			assert.is_true(KSR.setbflag(1))
			assert.are.same({ [1] = true }, mock.bflags)
			mock.request({})
			assert.are.same({}, mock.flags)
		end)

		it("knows which addresses are myself from listen and aliases", function()
			mock.new({ listen = { "udp:192.0.2.10:5060", "tls:192.0.2.10:5061" }, aliases = { "sip.example.com" } })
			local cases = {
				{ "sip:192.0.2.10", true },
				{ "sip:bob@192.0.2.10:5060", true },
				{ "sip:192.0.2.10:5070", false },
				{ "sip:SIP.example.com", true },
				{ "sips:sip.example.com", true },
				{ "sip:sip.example.com;transport=tcp", false },
				{ "sip:other.example.com", false },
				{ "tel:+15551234", false },
			}
			for _, c in ipairs(cases) do
				assert.are.equal(c[2], KSR.is_myself(c[1]), c[1])
			end
			mock.request({ method = "OPTIONS", ruri = "sip:sip.example.com", src_ip = "192.0.2.10" })
			assert.is_true(KSR.is_myself_ruri())
			assert.is_true(KSR.is_myself_srcip())
			assert.is_false(KSR.is_myself_furi())
		end)
	end)

	describe("stubs", function()
		it("replaces a function by a value or by a function of the arguments", function()
			local K = mock.new({ api = api_with({
				["registrar.lookup"] = def({ "str" }, "int"),
				["auth.pv_auth_check"] = def({ "str", "str", "int", "int" }, "int"),
			}) })
			mock.stub("auth.pv_auth_check", -2)
			local seen
			mock.stub("registrar.lookup", function(tbl)
				seen = tbl
				return -1
			end)
			assert.are.equal(-2, K.auth.pv_auth_check("realm", "secret", 0, 1))
			assert.are.equal(-1, K.registrar.lookup("location"))
			assert.are.equal("location", seen)
			assert.are.equal(1, mock.called("registrar.lookup"))
		end)

		it("overrides built-in behaviour, for the top level too", function()
			assert.is_false(KSR.is_myself_ruri())
			mock.stub("is_myself_ruri", true)
			assert.is_true(KSR.is_myself_ruri())
			mock.stub("KSR.is_myself_ruri", 1) -- an int for a bool function: > 0 is true
			assert.is_true(KSR.is_myself_ruri())
			mock.unstub("is_myself_ruri")
			assert.is_false(KSR.is_myself_ruri())
		end)

		it("still checks the arguments of a stubbed function", function()
			mock.stub("sl.sl_send_reply", 1)
			assert.has_error(function() KSR.sl.sl_send_reply("200", "OK") end)
		end)

		it("can be set only for functions of the table", function()
			fails(function() mock.stub("registrar.no_such", 1) end,
				"KSR.registrar.no_such does not exist in ksrd: cannot stub it")
			fails(function() mock.stub("no_such_top", 1) end, "KSR.no_such_top does not exist in ksrd: cannot stub it")
		end)

		it("fails when a stub returns a value of the wrong type", function()
			mock.stub("sl.sl_send_reply", "yes")
			assert.has_error(function() KSR.sl.sl_send_reply(200, "OK") end)
		end)

		it("is removed by mock.reset()", function()
			mock.stub("is_myself_ruri", true)
			mock.reset()
			assert.is_false(KSR.is_myself_ruri())
		end)

		it("can run KSR.x.exit() itself", function()
			mock.stub("sl.sl_send_reply", function() KSR.x.exit() end)
			local after = false
			assert.are.equal(1, mock.run(function()
				KSR.sl.sl_send_reply(200, "OK")
				after = true
			end))
			assert.is_false(after)
		end)
	end)

	describe("recording", function()
		it("records replies with the headers added for them", function()
			if not has("hdr", "append_to_reply") then
				pending("KSR.hdr.append_to_reply is not in the binding table")
				return
			end
			KSR.hdr.append_to_reply("Retry-After: 30\r\n")
			KSR.sl.sl_send_reply(503, "Service Unavailable")
			assert.are.same({
				code = 503,
				reason = "Service Unavailable",
				headers = { { name = "Retry-After", value = "30", text = "Retry-After: 30\r\n" } },
				fn = "sl.sl_send_reply",
			}, mock.replies[1])
		end)

		it("does not reply to an ACK", function()
			mock.request({ method = "ACK" })
			assert.are.equal(-1, KSR.sl.sl_send_reply(200, "OK"))
			assert.are.same({}, mock.replies)
		end)

		it("records stateless forwards with the edits made up to then", function()
			if not (has("hdr", "append") and has("hdr", "remove")) then
				pending("KSR.hdr.append/remove are not in the binding table")
				return
			end
			mock.request({ headers = { ["X-Secret"] = "s3cr3t", ["Max-Forwards"] = "10" } })
			KSR.hdr.remove("X-Secret")
			KSR.hdr.append("X-Route: test\r\n")
			KSR.setdsturi("sip:10.0.0.2:5060")
			assert.are.equal(1, KSR.forward())
			KSR.hdr.append("X-Later: 1\r\n")
			local f = mock.forwards[1]
			assert.are.equal("sip:10.0.0.2:5060", f.dst)
			assert.are.equal("sip:10.0.0.2:5060", f.du)
			assert.are.equal("sip:bob@example.com", f.ruri)
			assert.are.equal(9, f.max_forwards)
			assert.are.same({ { name = "X-Secret", value = "s3cr3t" } }, f.headers_removed)
			assert.are.equal(1, #f.headers_added)
			assert.are.equal("X-Route", f.headers_added[1].name)
			local names = {}
			for _, h in ipairs(f.headers) do
				names[#names + 1] = h.name .. ": " .. h.value
			end
			assert.are.same({
				"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-mock-2",
				"Max-Forwards: 9",
				"From: <sip:alice@example.com>;tag=mock-ftag-2",
				"To: <sip:bob@example.com>",
				"Call-ID: mock-2@192.0.2.1",
				"CSeq: 1 INVITE",
				"Content-Length: 0",
				"X-Route: test",
			}, names)
			-- reads see the received message: edits are deferred, as in ksrd
			assert.are.equal("s3cr3t", KSR.hdr.get("X-Secret"))
			assert.is_nil(KSR.hdr.get("X-Route"))
			assert.is_true(mock.removed("x-secret"))
			assert.are.equal("test", mock.added("X-Route"))
		end)

		it("does not forward a request whose Max-Forwards is 0", function()
			mock.request({ headers = { ["Max-Forwards"] = "0" } })
			assert.are.equal(-1, KSR.forward())
			assert.are.same({}, mock.forwards)
			assert.are.equal(1, KSR.forward_uri ~= nil and 1 or 0)
		end)

		it("records logs, calls and script logs without the trailing newline", function()
			KSR.info("hello\n")
			KSR.log("warning", "careful")
			KSR.log("nonsense", "still logged")
			assert.are.same({
				{ level = "info", text = "hello", source = "script" },
				{ level = "warn", text = "careful", source = "script" },
				{ level = "err", text = "still logged", source = "script" },
			}, mock.logs)
			assert.are.equal(1, mock.called("info"))
			assert.are.equal(2, mock.called("KSR.log"))
			assert.are.same({ "warning", "careful" }, mock.calls[2].args)
			assert.has_error(function() mock.called("no.such") end)
		end)

		it("clears what was recorded when a new message is set", function()
			KSR.sl.sl_send_reply(200, "OK")
			KSR.info("x")
			mock.request({})
			assert.are.same({}, mock.replies)
			assert.are.same({}, mock.logs)
			assert.are.same({}, mock.calls)
		end)
	end)

	describe("built-in module functions", function()
		it("handles KSR.hdr like ksrd", function()
			if not has("hdr", "get") then
				pending("KSR.hdr is not in the binding table")
				return
			end
			mock.request({ headers = { { "X-A", "1" }, { "X-A", "2" } } })
			assert.are.equal("1", KSR.hdr.get("X-A"))
			assert.are.equal("2", KSR.hdr.get_idx("x-a", -1))
			assert.is_nil(KSR.hdr.get("X-None"))
			assert.are.equal("", KSR.hdr.gete("X-None"))
			assert.are.equal("<null>", KSR.hdr.getw("X-None"))
			assert.are.equal(1, KSR.hdr.is_present("x-a"))
			assert.are.equal(-1, KSR.hdr.is_present("X-None"))
			assert.are.equal(1, KSR.hdr.remove("X-None"))
			assert.are.same({}, mock.headers_removed)
			assert.are.equal(1, KSR.hdr.remove("X-A"))
			assert.are.equal(2, #mock.headers_removed)
			assert.are.equal(1, KSR.hdr.is_present("X-A")) -- still received
			assert.are.equal(1, KSR.hdr.insert("X-Top: t\r\n"))
			assert.are.equal("insert", mock.headers_added[1].op)
			assert.are.equal(-1, KSR.hdr.remove(""))
		end)

		it("handles KSR.textops header tests and removal", function()
			if not has("textops", "remove_hf_re") then
				pending("KSR.textops is not in the binding table")
				return
			end
			mock.request({ headers = { ["X-Internal-Id"] = "7", ["X-Internal-Hop"] = "a", ["X-Keep"] = "k" } })
			assert.are.equal(1, KSR.textops.is_present_hf("x-internal-id"))
			assert.are.equal(1, KSR.textops.is_present_hf_re("^x-internal-"))
			assert.are.equal(2, KSR.textops.remove_hf_re("^X-Internal-"))
			assert.are.equal(-1, KSR.textops.remove_hf("X-None"))
			assert.are.equal(1, KSR.textops.remove_hf("X-Keep"))
			assert.are.equal(3, #mock.headers_removed)
			assert.has_error(function() KSR.textops.remove_hf_re("^(a|b)") end)
		end)

		it("handles KSR.textops body tests", function()
			if not has("textops", "has_body_type") then
				pending("KSR.textops is not in the binding table")
				return
			end
			assert.are.equal(-1, KSR.textops.has_body())
			mock.request({ body = "v=0\r\n", headers = { ["Content-Type"] = "application/sdp; charset=x" } })
			assert.are.equal(1, KSR.textops.has_body())
			assert.are.equal(1, KSR.textops.has_body_type("application/sdp"))
			assert.are.equal(-1, KSR.textops.has_body_type("text/plain"))
		end)

		it("handles KSR.siputils message tests", function()
			if not has("siputils", "has_totag") then
				pending("KSR.siputils is not in the binding table")
				return
			end
			assert.are.equal(-1, KSR.siputils.has_totag())
			assert.are.equal(1, KSR.siputils.is_request())
			assert.are.equal(-1, KSR.siputils.is_reply())
			mock.request({ method = "BYE", headers = { ["To"] = "<sip:bob@example.com>;tag=abc" } })
			assert.are.equal(1, KSR.siputils.has_totag())
			mock.reply({ status = 200 })
			assert.are.equal(1, KSR.siputils.is_reply())
		end)

		it("handles KSR.maxfwd with Kamailio's codes", function()
			if not has("maxfwd", "process_maxfwd") then
				pending("KSR.maxfwd is not in the binding table")
				return
			end
			mock.request({ headers = { ["Max-Forwards"] = "5" } })
			assert.are.equal(1, KSR.maxfwd.process_maxfwd(10))
			assert.are.equal(1, KSR.maxfwd.is_maxfwd_lt(5)) -- reads the decremented value
			mock.request({ headers = { ["Max-Forwards"] = "0" } })
			assert.are.equal(-1, KSR.maxfwd.process_maxfwd(10))
			mock.request({ headers = { ["Max-Forwards"] = "many" } })
			assert.are.equal(-2, KSR.maxfwd.process_maxfwd(10))
			mock.request({ headers = { ["Max-Forwards"] = false } })
			assert.are.equal(2, KSR.maxfwd.process_maxfwd(10))
			assert.are.equal("10", mock.added("Max-Forwards"))
			mock.request({ headers = { ["Max-Forwards"] = "200" } })
			assert.are.equal(1, KSR.maxfwd.process_maxfwd(10))
			assert.are.equal(1, KSR.forward())
			assert.are.equal(70, mock.forwards[1].max_forwards) -- lowered to max_limit 70
		end)

		it("handles what KSR.tm and KSR.tmx can do without transactions", function()
			local rq = { "request", "failure" }
			local K = mock.new({ api = api_with({
				["tm.t_relay"] = def({}, "int", "nil", rq),
				["tm.t_relay_to_proto"] = def({ "str" }, "int", "nil", rq),
				["tm.t_relay_to_proxy"] = def({ "str" }, "int", "nil", rq),
				["tm.t_on_failure"] = def({ "str" }, "int", "nil", rq),
				["tm.t_is_set"] = def({ "str" }, "int"),
				["tm.t_send_reply"] = def({ "int", "str" }, "int", "nil", rq),
				["tmx.t_is_failure_route"] = def({}, "int"),
			}) })
			mock.request({ ruri = "sip:bob@example.com;transport=udp" })
			assert.are.equal(-1, K.tm.t_is_set("failure_route"))
			assert.are.equal(1, K.tm.t_on_failure("ksr_failure_manage"))
			assert.are.equal(1, K.tm.t_is_set("failure_route"))
			assert.are.same({ failure = "ksr_failure_manage" }, mock.tm)
			assert.are.equal(1, K.tm.t_relay())
			assert.are.equal(1, K.tm.t_relay_to_proto("TCP"))
			assert.are.equal(1, K.tm.t_relay_to_proxy("tls:10.0.0.5:5061"))
			assert.are.same({ "tm.t_relay", "tm.t_relay_to_proto", "tm.t_relay_to_proxy" },
				{ mock.relays[1].fn, mock.relays[2].fn, mock.relays[3].fn })
			assert.are.equal("sip:bob@example.com;transport=udp", mock.relays[1].dst)
			assert.are.equal("sip:bob@example.com;transport=tcp", mock.relays[2].dst)
			assert.are.equal("sip:10.0.0.5:5061;transport=tls", mock.relays[3].dst)
			assert.are.same({}, mock.forwards)
			assert.are.equal(1, K.tm.t_send_reply(180, "Ringing"))
			assert.are.equal("tm.t_send_reply", mock.replies[1].fn)
			local in_failure
			mock.run(function() in_failure = K.tmx.t_is_failure_route() end, { route = "failure" })
			assert.are.equal(1, in_failure)
			assert.are.equal(-1, K.tmx.t_is_failure_route())
		end)

		it("handles KSR.kx getters with their null modes", function()
			if not has("kx", "get_ruser") then
				pending("KSR.kx is not in the binding table")
				return
			end
			mock.request({ ruri = "sip:example.com", headers = { ["User-Agent"] = "ua/1" } })
			assert.is_nil(KSR.kx.get_ruser())
			assert.are.equal("", KSR.kx.gete_ruser())
			assert.are.equal("<null>", KSR.kx.getw_ruser())
			assert.are.equal("example.com", KSR.kx.get_rhost())
			assert.are.equal("ua/1", KSR.kx.get_ua())
			assert.are.equal("192.0.2.1", KSR.kx.get_srcip())
			assert.are.equal(-1, KSR.kx.get_status())
			assert.are.equal("INVITE", KSR.kx.get_method())
		end)
	end)
end)
