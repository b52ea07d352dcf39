-- SPDX-License-Identifier: MIT
-- Every branch of t/lua/sample/route.lua, offline, against ksr.mock.

local mock = require "ksr.mock"

local BACKENDS = {
	["sip:10.0.0.11:5060"] = true,
	["sip:10.0.0.12:5060"] = true,
	["sip:10.0.0.13:5060"] = true,
}

describe("sample route", function()
	setup(function()
		mock.new({ listen = { "udp:192.0.2.10:5060" }, aliases = { "proxy.example.com" } })
		mock.load("t/lua/sample/route.lua")
	end)

	teardown(function()
		_G.ksr_request_route = nil
	end)

	before_each(function()
		mock.reset()
	end)

	-- runs the request route; the route must end without a script error
	local function route(req)
		mock.request(req)
		assert.are.equal(1, mock.run("ksr_request_route"))
		assert.are.same({}, mock.errors)
	end

	describe("REQINIT", function()
		it("answers 483 when Max-Forwards is exhausted, and forwards nothing", function()
			route({ headers = { ["Max-Forwards"] = "0" } })
			assert.are.equal(1, #mock.replies)
			assert.are.equal(483, mock.replies[1].code)
			assert.are.equal("Too Many Hops", mock.replies[1].reason)
			assert.are.same({}, mock.forwards)
		end)

		it("adds Max-Forwards: 10 when the request has none", function()
			route({ headers = { ["Max-Forwards"] = false } })
			assert.are.equal("10", mock.added("Max-Forwards"))
			assert.are.equal(10, mock.forwards[1].max_forwards)
		end)

		it("decrements Max-Forwards and caps it at 70", function()
			route({ headers = { ["Max-Forwards"] = "5" } })
			assert.are.equal(4, mock.forwards[1].max_forwards)
			route({ headers = { ["Max-Forwards"] = "255" } })
			assert.are.equal(70, mock.forwards[1].max_forwards)
		end)

		for _, ua in ipairs({ "friendly-scanner", "sipvicious 0.3.4", "SIPcli/v1.8", "Friendly-Scanner" }) do
			it("drops scanner '" .. ua .. "' without a reply", function()
				route({ src_ip = "203.0.113.66", headers = { ["User-Agent"] = ua } })
				assert.are.same({}, mock.replies)
				assert.are.same({}, mock.forwards)
				assert.is_true(mock.logged("dropping scanner '" .. ua .. "' from 203.0.113.66", "info"))
			end)
		end

		it("lets other user agents through", function()
			route({ headers = { ["User-Agent"] = "Linphone/5.2 (scanner-free)" } })
			assert.are.same({}, mock.replies)
			assert.are.equal(1, #mock.forwards)
		end)

		it("answers an OPTIONS keepalive to this server with 200 Keepalive", function()
			for _, ruri in ipairs({ "sip:proxy.example.com", "sip:192.0.2.10:5060", "sip:ping@proxy.example.com" }) do
				route({ method = "OPTIONS", ruri = ruri })
				assert.are.equal(1, #mock.replies, ruri)
				assert.are.equal(200, mock.replies[1].code)
				assert.are.equal("Keepalive", mock.replies[1].reason)
				assert.are.same({}, mock.forwards)
			end
		end)

		it("relays an OPTIONS for somebody else", function()
			route({ method = "OPTIONS", ruri = "sip:bob@example.com" })
			assert.are.same({}, mock.replies)
			assert.are.equal(1, #mock.forwards)
		end)

		it("answers OPTIONS when KSR.is_myself_ruri is stubbed", function()
			mock.stub("is_myself_ruri", true)
			route({ method = "OPTIONS", ruri = "sip:anything.example.net" })
			assert.are.equal("Keepalive", mock.replies[1].reason)
		end)
	end)

	describe("CLEANUP", function()
		it("removes X-Internal-* headers, keeps the others and adds X-Route", function()
			route({
				headers = {
					["X-Internal-Customer"] = "42",
					["x-internal-trace"] = "on",
					["X-Internally-Named"] = "kept: no dash after Internal",
					["X-Other"] = "kept",
				},
			})
			local removed = {}
			for _, h in ipairs(mock.headers_removed) do
				removed[#removed + 1] = h.name
			end
			table.sort(removed)
			assert.are.same({ "X-Internal-Customer", "x-internal-trace" }, removed)
			assert.are.equal("sample", mock.added("X-Route"))
			local out = {}
			for _, h in ipairs(mock.forwards[1].headers) do
				out[h.name] = h.value
			end
			assert.is_nil(out["X-Internal-Customer"])
			assert.is_nil(out["x-internal-trace"])
			assert.are.equal("kept", out["X-Other"])
			assert.are.equal("kept: no dash after Internal", out["X-Internally-Named"])
			assert.are.equal("sample", out["X-Route"])
		end)
	end)

	describe("RELAY", function()
		it("forwards to a backend through $du, leaving the R-URI alone", function()
			route({ method = "INVITE", ruri = "sip:bob@example.com" })
			local f = mock.forwards[1]
			assert.is_true(BACKENDS[f.dst], f.dst)
			assert.are.equal(f.dst, f.du)
			assert.are.equal("sip:bob@example.com", f.ruri)
			assert.are.equal(f.dst, mock.pv("$du"))
			assert.are.same({}, mock.replies)
		end)

		it("sends all the requests of a call to the same backend, and spreads calls", function()
			local seen = {}
			for i = 1, 30 do
				local callid = "call-" .. i .. "@198.51.100.1"
				route({ method = "INVITE", headers = { ["Call-ID"] = callid } })
				local first = mock.forwards[1].dst
				route({ method = "BYE", headers = { ["Call-ID"] = callid, ["To"] = "<sip:bob@example.com>;tag=b" } })
				assert.are.equal(first, mock.forwards[1].dst)
				seen[first] = true
			end
			assert.are.same(BACKENDS, seen)
		end)

		it("answers 503 when the forward fails", function()
			mock.stub("forward", -1)
			route({})
			assert.are.equal(503, mock.replies[1].code)
			assert.are.equal("Backend Unreachable", mock.replies[1].reason)
			assert.is_true(mock.logged("cannot forward to sip:10.0.0.1", "err"))
		end)
	end)
end)
