local mock = require "ksr.mock"

describe("edge route", function()
	setup(function()
		-- "myself": the addresses ksrd listens on and its aliases, as in ksrd.lua
		mock.new({ listen = { "udp:192.0.2.10:5060" }, aliases = { "proxy.example.com" } })
		mock.load("lua/routes/edge/route.lua")
	end)

	before_each(function()
		mock.reset() -- no stubs, a fresh default request
	end)

	it("answers 483 when Max-Forwards is exhausted", function()
		mock.request({ headers = { ["Max-Forwards"] = "0" } })
		assert.are.equal(1, mock.run("ksr_request_route"))
		assert.are.equal(483, mock.replies[1].code)
		assert.are.same({}, mock.forwards)
	end)

	it("answers keepalives sent to the server itself", function()
		mock.request({ method = "OPTIONS", ruri = "sip:proxy.example.com" })
		mock.run("ksr_request_route")
		assert.are.same({ code = 200, reason = "OK", headers = {}, fn = "sl.sl_send_reply" }, mock.replies[1])
	end)

	it("refuses other domains", function()
		mock.request({ ruri = "sip:bob@elsewhere.example.net" })
		mock.run("ksr_request_route")
		assert.are.equal(403, mock.replies[1].code)
	end)

	it("forwards to the next hop, without X-Debug and with X-Served-By", function()
		mock.request({
			method = "INVITE",
			ruri = "sip:bob@example.com",
			headers = { ["X-Debug"] = "on", ["User-Agent"] = "softphone/1.0" },
		})
		assert.are.equal(1, mock.run("ksr_request_route"))
		local f = mock.forwards[1]
		assert.are.equal("sip:10.0.0.20:5060", f.dst)
		assert.are.equal("sip:bob@example.com", f.ruri)
		assert.are.equal(69, f.max_forwards)
		assert.is_true(mock.removed("X-Debug"))
		assert.are.equal("edge", mock.added("X-Served-By"))
		assert.are.same({}, mock.replies)
		assert.are.same({}, mock.errors)
	end)

	-- Stubs: what the mock cannot know from the message alone
	it("stops on a malformed request", function()
		mock.stub("sanity.sanity_check_defaults", -1)
		mock.request({ src_ip = "203.0.113.5" })
		mock.run("ksr_request_route")
		assert.are.same({}, mock.forwards)
		assert.is_true(mock.logged("malformed request from 203.0.113.5", "err"))
	end)

	it("answers 503 when the next hop cannot be reached", function()
		mock.stub("forward", function() return -1 end)
		mock.request({})
		mock.run("ksr_request_route")
		assert.are.equal(503, mock.replies[1].code)
	end)
end)
