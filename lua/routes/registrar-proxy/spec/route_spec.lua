-- SPDX-License-Identifier: MIT
-- Every branch of lua/routes/registrar-proxy/route.lua, offline, against
-- ksr.mock. What the mock cannot know (transactions, Route sets, credentials,
-- the location table) is stubbed with the return codes ksrd gives.
-- luacheck: std +busted

local mock = require "ksr.mock"

local ROUTE = "lua/routes/registrar-proxy/route.lua"

local ME = "192.0.2.10"

-- settings.lua as a spec wants it (NONE: the key left out); the pack's own file is not read
local NONE = {}
local function settings(over)
	local s = {
		domains = { "Example.COM" },
		users = { alice = "alice-pw", bob = "bob-pw", carol = { ha1 = string.rep("ab", 16) } },
		max_forwards = 10,
		scanners = { "friendly-scanner", "sipvicious", "sipcli" },
	}
	for k, v in pairs(over or {}) do
		if v == NONE then
			v = nil
		end
		s[k] = v
	end
	return s
end

local function load_pack(s)
	package.loaded.settings = s
	mock.load(ROUTE)
	package.loaded.settings = nil
end

-- Loads the pack with other settings for the rest of this test.
local function with_settings(over)
	load_pack(settings(over))
	finally(function() load_pack(settings()) end)
end

local function load_error(s)
	local ok, err = pcall(load_pack, s)
	assert.is_false(ok)
	return tostring(err)
end

-- Stubs that make the default request an initial one with no transaction yet.
local function fresh()
	mock.reset()
	mock.stub("tmx.t_precheck_trans", -1)
	mock.stub("tm.t_check_trans", -1)
	mock.stub("rr.loose_route", -1)
	mock.stub("tm.t_is_canceled", -1)
	mock.stub("tm.t_check_status", -1)
end

-- Runs the request route; it must end without a script error.
local function route(req)
	mock.request(req)
	assert.are.equal(1, mock.run("ksr_request_route"))
	assert.are.same({}, mock.errors)
end

local function failure_route()
	assert.are.equal(1, mock.run("ksr_failure_manage", { route = "failure" }))
	assert.are.same({}, mock.errors)
end

local function args_of(name)
	for _, c in ipairs(mock.calls) do
		if c.name == name then
			return c.args
		end
	end
	return nil
end

local function only_reply(code, reason)
	assert.are.equal(1, #mock.replies, "replies: " .. #mock.replies)
	assert.are.equal(code, mock.replies[1].code)
	if reason then
		assert.are.equal(reason, mock.replies[1].reason)
	end
end

local function nothing_sent()
	assert.are.same({}, mock.replies)
	assert.are.same({}, mock.relays)
	assert.are.same({}, mock.forwards)
end

local CRED = 'Digest username="%s", realm="example.com", nonce="n", uri="sip:example.com", response="r"'

local function from(user, domain)
	return string.format("<sip:%s@%s>;tag=f1", user, domain or "example.com")
end

-- An INVITE from alice (authenticated when auth is stubbed) to user@domain.
local function invite(user, domain, extra)
	local h = {
		From = from("alice"),
		["Proxy-Authorization"] = string.format(CRED, "alice"),
	}
	for k, v in pairs(extra or {}) do
		h[k] = v
	end
	return { method = "INVITE", ruri = string.format("sip:%s@%s", user, domain or "example.com"), headers = h }
end

local function register(user, extra)
	local h = {
		From = from(user),
		To = string.format("<sip:%s@example.com>", user),
		Contact = string.format("<sip:%s@198.51.100.7:5062>", user),
	}
	for k, v in pairs(extra or {}) do
		h[k] = v
	end
	return { method = "REGISTER", ruri = "sip:example.com", src_ip = "198.51.100.7", headers = h }
end

describe("registrar-proxy route", function()
	setup(function()
		mock.new({ listen = { "udp:" .. ME .. ":5060", "tcp:" .. ME .. ":5060" }, aliases = { "proxy.example.net" } })
		load_pack(settings())
	end)

	teardown(function()
		_G.ksr_request_route, _G.ksr_failure_manage, _G.ksr_onreply_manage = nil, nil, nil
	end)

	before_each(fresh)

	describe("settings.lua", function()
		after_each(function()
			load_pack(settings())
		end)

		it("loads the shipped settings", function()
			package.path = "lua/routes/registrar-proxy/?.lua;" .. package.path
			package.loaded.settings = nil
			mock.load(ROUTE)
			package.loaded.settings = nil
		end)

		it("refuses an unknown key, naming it", function()
			assert.matches("settings.lua: userz: unknown key", load_error(settings({ userz = {} })), 1, true)
		end)

		it("refuses a value of the wrong type", function()
			assert.matches("settings.lua: use_db: expected a boolean, got string",
				load_error(settings({ use_db = "yes" })), 1, true)
			assert.matches("settings.lua: domains[1]: expected a non-empty string",
				load_error(settings({ domains = { 5 } })), 1, true)
			assert.matches("settings.lua: max_forwards: expected an integer 1..255",
				load_error(settings({ max_forwards = 0 })), 1, true)
		end)

		it("refuses a user without a usable password", function()
			assert.matches("settings.lua: users.dave: expected a password or { ha1",
				load_error(settings({ users = { dave = { ha1 = "xyz" } } })), 1, true)
			assert.matches("settings.lua: users.erin: expected",
				load_error(settings({ users = { erin = "" } })), 1, true)
			assert.matches("settings.lua: users: expected user names as keys",
				load_error(settings({ users = { "frank" } })), 1, true)
		end)

		it("refuses use_db without a table name", function()
			assert.matches("settings.lua: subscriber_table: expected a table name",
				load_error(settings({ use_db = true, subscriber_table = "" })), 1, true)
		end)

		it("refuses a module that returns no table", function()
			assert.matches("expected a table returned", load_error(true), 1, true)
		end)
	end)

	describe("REQINIT", function()
		it("answers 483 when Max-Forwards is exhausted", function()
			route({ headers = { ["Max-Forwards"] = "0" } })
			only_reply(483, "Too Many Hops")
			assert.are.same({}, mock.relays)
		end)

		it("sets a missing Max-Forwards to settings.max_forwards", function()
			mock.stub("registrar.lookup", 1)
			route(invite("bob", nil, { ["Max-Forwards"] = false }))
			assert.are.equal("10", mock.added("Max-Forwards"))
		end)

		for _, ua in ipairs({ "friendly-scanner", "sipvicious 0.3.4", "SIPcli/v1.8" }) do
			it("drops scanner '" .. ua .. "' without a reply", function()
				route({ method = "REGISTER", ruri = "sip:example.com", headers = { ["User-Agent"] = ua } })
				nothing_sent()
				assert.are.equal(0, mock.called("maxfwd.process_maxfwd"))
			end)
		end

		it("knows the usual scanners when settings.lua lists none", function()
			with_settings({ scanners = NONE })
			route({ method = "OPTIONS", ruri = "sip:example.com", headers = { ["User-Agent"] = "sundayddr" } })
			nothing_sent()
			route({ method = "OPTIONS", ruri = "sip:example.com", headers = { ["User-Agent"] = "Linphone/5.2" } })
			only_reply(200, "Keepalive")
		end)

		it("stops on a malformed request (sanity_check answered it)", function()
			mock.stub("sanity.sanity_check", -1)
			route({ src_ip = "203.0.113.5" })
			nothing_sent()
			assert.are.same({ 1511, 7 }, args_of("sanity.sanity_check"))
			assert.is_true(mock.logged("malformed SIP message from 203.0.113.5", "err"))
		end)

		it("answers OPTIONS keepalives to this server and to our domains", function()
			for _, ruri in ipairs({ "sip:" .. ME .. ":5060", "sip:example.com", "sip:proxy.example.net" }) do
				route({ method = "OPTIONS", ruri = ruri })
				only_reply(200, "Keepalive")
			end
		end)

		it("does not answer itself an OPTIONS for a user", function()
			mock.stub("registrar.lookup", 1)
			route({ method = "OPTIONS", ruri = "sip:bob@example.com", headers = { From = from("carol", "elsewhere.org") } })
			assert.are.equal(1, #mock.relays)
			assert.are.same({}, mock.replies)
		end)
	end)

	describe("CANCEL", function()
		it("relays a CANCEL whose INVITE transaction exists", function()
			mock.stub("tm.t_check_trans", 1)
			route({ method = "CANCEL", ruri = "sip:bob@example.com", headers = { From = from("mallory", "evil.org") } })
			assert.are.equal(1, #mock.relays)
			assert.are.same({}, mock.replies)
			assert.is_nil(mock.tm.failure)
		end)

		it("hands a CANCEL without transaction to tm (481 by tm.unmatched_cancel)", function()
			route({ method = "CANCEL", ruri = "sip:bob@example.com" })
			assert.are.equal(1, #mock.relays)
			assert.are.equal(0, mock.called("auth.proxy_challenge"))
		end)

		it("absorbs a retransmitted CANCEL", function()
			mock.stub("tm.t_check_trans", 0)
			route({ method = "CANCEL", ruri = "sip:bob@example.com" })
			nothing_sent()
		end)
	end)

	describe("WITHINDLG", function()
		local function in_dialog(method)
			return {
				method = method,
				ruri = "sip:bob@198.51.100.20:5060",
				headers = { To = "<sip:bob@example.com>;tag=t9", From = from("alice") },
			}
		end

		it("relays a request that follows its Route set, without authentication", function()
			mock.stub("rr.loose_route", 1)
			route(in_dialog("BYE"))
			assert.are.equal(1, #mock.relays)
			assert.are.same({}, mock.replies)
			assert.are.equal(0, mock.called("auth.pv_auth_check"))
			assert.are.equal(0, mock.called("rr.record_route"))
			assert.is_nil(mock.tm.failure)
		end)

		it("record-routes an in-dialog NOTIFY (RFC 6665)", function()
			mock.stub("rr.loose_route", 1)
			route(in_dialog("NOTIFY"))
			assert.are.equal(1, mock.called("rr.record_route"))
			assert.are.equal(1, #mock.relays)
		end)

		it("sets the failure route for a re-INVITE", function()
			mock.stub("rr.loose_route", 1)
			route(in_dialog("INVITE"))
			assert.are.equal("ksr_failure_manage", mock.tm.failure)
			assert.are.equal("ksr_onreply_manage", mock.tm.reply)
		end)

		it("answers 404 to an in-dialog request with no Route to follow", function()
			route(in_dialog("BYE"))
			only_reply(404, "Not here")
			assert.are.same({}, mock.relays)
		end)

		it("absorbs an ACK with no Route (non-2xx ACK of ours, or no transaction)", function()
			mock.stub("tm.t_check_trans", 0)
			route(in_dialog("ACK"))
			nothing_sent()
			mock.stub("tm.t_check_trans", -1)
			route(in_dialog("ACK"))
			nothing_sent()
		end)

		it("relays an ACK without Route that its transaction knows", function()
			mock.stub("tm.t_check_trans", 1)
			route(in_dialog("ACK"))
			assert.are.equal(1, #mock.relays)
		end)
	end)

	describe("retransmissions", function()
		it("leaves one being handled by another worker to its transaction", function()
			mock.stub("tmx.t_precheck_trans", 1)
			route(invite("bob"))
			nothing_sent()
			assert.are.equal(1, mock.called("tm.t_check_trans"))
			assert.are.equal(0, mock.called("auth.pv_auth_check"))
		end)

		it("absorbs one its transaction has answered", function()
			mock.stub("tm.t_check_trans", 0)
			route(invite("bob"))
			nothing_sent()
			assert.are.equal(0, mock.called("auth.pv_auth_check"))
		end)
	end)

	describe("AUTH", function()
		it("challenges a REGISTER without credentials with 401 and qop=auth", function()
			route(register("alice"))
			assert.are.same({ "example.com", 1 }, args_of("auth.www_challenge"))
			assert.are.equal(0, mock.called("auth.pv_auth_check"))
			assert.are.equal(0, mock.called("registrar.save"))
		end)

		for _, rc in ipairs({ -1, -2, -4, -5, -6 }) do
			it("challenges again a REGISTER whose check returns " .. rc, function()
				mock.stub("auth.pv_auth_check", rc)
				route(register("alice", { Authorization = string.format(CRED, "alice") }))
				assert.are.same({ "example.com", "$avp(auth_secret)", 0, 1 }, args_of("auth.pv_auth_check"))
				assert.are.equal(1, mock.called("auth.www_challenge"))
				assert.are.equal(0, mock.called("registrar.save"))
				assert.is_nil(mock.pv("$avp(auth_secret)"))
			end)
		end

		it("checks the password of the static user through a pseudo-variable", function()
			local seen
			mock.stub("auth.pv_auth_check", function(_, pv) seen = mock.pv(pv) return 1 end)
			route(register("alice", { Authorization = string.format(CRED, "alice") }))
			assert.are.equal("alice-pw", seen)
			assert.is_nil(mock.pv("$avp(auth_secret)"))
		end)

		it("checks a user given by HA1 with flag 1", function()
			mock.stub("auth.pv_auth_check", 1)
			route(register("carol", { Authorization = string.format(CRED, "carol") }))
			assert.are.same({ "example.com", "$avp(auth_secret)", 1, 1 }, args_of("auth.pv_auth_check"))
		end)

		it("takes a username sent as user@domain", function()
			mock.stub("auth.pv_auth_check", 1)
			route(register("bob", { Authorization = string.format(CRED, "bob@example.com") }))
			assert.are.equal(1, mock.called("registrar.save"))
		end)

		it("challenges an unknown user without checking anything", function()
			route(register("mallory", { Authorization = string.format(CRED, "mallory") }))
			assert.are.equal(0, mock.called("auth.pv_auth_check"))
			assert.are.equal(1, mock.called("auth.www_challenge"))
		end)

		it("answers 403 when the authenticated user is not the one registered", function()
			mock.stub("auth.pv_auth_check", -8)
			route(register("bob", { Authorization = string.format(CRED, "alice") }))
			only_reply(403, "Forbidden auth ID")
			assert.are.equal(0, mock.called("auth.www_challenge"))
		end)

		it("challenges an INVITE from a local user with 407", function()
			mock.stub("auth.pv_auth_check", -2)
			route(invite("bob"))
			assert.are.same({ "example.com", 1 }, args_of("auth.proxy_challenge"))
			assert.are.equal(0, mock.called("auth.www_challenge"))
			assert.are.same({}, mock.relays)
		end)

		it("uses settings.realm when it is set", function()
			with_settings({ realm = "voip.example.com" })
			mock.stub("auth.pv_auth_check", -2)
			route(invite("bob"))
			assert.are.same({ "voip.example.com", "$avp(auth_secret)", 0, 1 }, args_of("auth.pv_auth_check"))
			assert.are.same({ "voip.example.com", 1 }, args_of("auth.proxy_challenge"))
		end)

		it("authenticates requests from this server's own addresses as local", function()
			route({ method = "MESSAGE", ruri = "sip:bob@example.com", headers = { From = from("alice", ME) } })
			assert.are.same({ ME, 1 }, args_of("auth.proxy_challenge"))
		end)

		it("lets a foreign caller reach a local user without authentication", function()
			mock.stub("registrar.lookup", 1)
			route({ method = "INVITE", ruri = "sip:bob@example.com", headers = { From = from("carol", "elsewhere.org") } })
			assert.are.equal(0, mock.called("auth.pv_auth_check"))
			assert.are.equal(1, #mock.relays)
		end)

		it("answers 403 to foreign-to-foreign: not an open relay", function()
			route({ method = "INVITE", ruri = "sip:bob@elsewhere.org", headers = { From = from("carol", "other.net") } })
			only_reply(403, "Not relaying")
			assert.are.same({}, mock.relays)
		end)

		describe("with the subscriber table (use_db)", function()
			setup(function()
				load_pack(settings({ use_db = true, subscriber_table = "sip_users" }))
			end)
			teardown(function()
				load_pack(settings())
			end)

			it("checks REGISTER against the table", function()
				mock.stub("auth_db.auth_check", -3)
				route(register("alice", { Authorization = string.format(CRED, "alice") }))
				assert.are.same({ "example.com", "sip_users", 1 }, args_of("auth_db.auth_check"))
				assert.are.equal(1, mock.called("auth.www_challenge"))
				assert.are.equal(0, mock.called("auth.pv_auth_check"))
			end)

			it("saves an authenticated REGISTER", function()
				mock.stub("auth_db.auth_check", 1)
				route(register("dave", { Authorization = string.format(CRED, "dave") }))
				assert.are.equal(1, mock.called("registrar.save"))
			end)

			it("tells 480 from 404 with is_subscriber", function()
				mock.stub("auth_db.auth_check", 1)
				mock.stub("registrar.lookup", -1)
				mock.stub("auth_db.is_subscriber", 1)
				route(invite("dave"))
				only_reply(480, "Temporarily Unavailable")
				assert.are.same({ "sip:dave@example.com", "sip_users", 2 }, args_of("auth_db.is_subscriber"))
				mock.stub("auth_db.is_subscriber", -2)
				route(invite("nobody"))
				only_reply(404, "Not Found")
				mock.stub("auth_db.is_subscriber", -1) -- database down: not known to exist
				route(invite("dave"))
				only_reply(404, "Not Found")
			end)
		end)
	end)

	describe("REGISTRAR", function()
		it("saves an authenticated REGISTER, which save() answers", function()
			mock.stub("auth.pv_auth_check", 1)
			mock.stub("registrar.save", 1)
			route(register("alice", { Authorization = string.format(CRED, "alice") }))
			assert.are.same({ "location", 0 }, args_of("registrar.save"))
			assert.are.same({}, mock.replies) -- save() itself replied
			assert.are.equal(0, mock.called("auth.consume_credentials"))
			assert.are.equal(0, mock.called("registrar.lookup"))
			assert.are.same({}, mock.relays)
		end)

		it("adds no reply of its own when save() refused the REGISTER", function()
			mock.stub("auth.pv_auth_check", 1)
			mock.stub("registrar.save", -1)
			route(register("alice", { Authorization = string.format(CRED, "alice") }))
			assert.are.same({}, mock.replies)
			assert.are.equal(0, mock.called("sl.sl_reply_error"))
		end)
	end)

	describe("LOCATION and RELAY", function()
		before_each(function()
			mock.stub("auth.pv_auth_check", 1)
		end)

		it("relays an INVITE to the contact found, record-routed, credentials consumed", function()
			mock.stub("registrar.lookup", function()
				mock.pv("$ru", "sip:bob@198.51.100.20:5062")
				return 1
			end)
			route(invite("bob", nil, { Route = "<sip:10.9.9.9;lr>" }))
			assert.are.equal(1, #mock.relays)
			assert.are.equal("sip:bob@198.51.100.20:5062", mock.relays[1].ruri)
			assert.are.equal(69, mock.relays[1].max_forwards) -- a present Max-Forwards is only decremented
			assert.are.same({}, mock.replies)
			assert.are.equal(1, mock.called("rr.record_route"))
			assert.are.equal(1, mock.called("auth.consume_credentials"))
			assert.is_true(mock.removed("Route"))
			assert.are.equal("ksr_failure_manage", mock.tm.failure)
			assert.are.equal("ksr_onreply_manage", mock.tm.reply)
			assert.are.equal(0, mock.called("tm.t_load_contacts"))
		end)

		it("relays a MESSAGE without record-routing it or a failure route", function()
			mock.stub("registrar.lookup", 1)
			local req = invite("bob")
			req.method = "MESSAGE"
			route(req)
			assert.are.equal(1, #mock.relays)
			assert.are.equal(0, mock.called("rr.record_route"))
			assert.is_nil(mock.tm.failure)
			assert.is_nil(mock.tm.reply)
		end)

		it("answers 500 when the relay fails", function()
			mock.stub("registrar.lookup", 1)
			mock.stub("tm.t_relay", -1)
			route(invite("bob"))
			only_reply(500)
			assert.are.equal("sl.sl_reply_error", mock.replies[1].fn)
		end)

		it("answers 484 to a request for no user", function()
			local req = invite("bob")
			req.ruri = "sip:example.com"
			route(req)
			only_reply(484, "Address Incomplete")
		end)

		it("answers 404 for a user that does not exist", function()
			mock.stub("registrar.lookup", -1)
			route(invite("zoe"))
			only_reply(404, "Not Found")
			assert.are.equal("sl.send_reply", mock.replies[1].fn)
			assert.are.equal(1, mock.called("tm.t_newtran"))
			assert.are.same({}, mock.relays)
		end)

		it("answers 480 for a user of ours who is not registered", function()
			mock.stub("registrar.lookup", -1)
			route(invite("bob"))
			only_reply(480, "Temporarily Unavailable")
		end)

		it("answers 405 when no contact accepts the method", function()
			mock.stub("registrar.lookup", -2)
			route(invite("bob"))
			only_reply(405, "Method Not Allowed")
		end)

		it("answers 500 with Retry-After when the location table failed", function()
			mock.stub("registrar.lookup", -3)
			route(invite("bob"))
			only_reply(500, "Server Internal Error")
			assert.are.equal("Retry-After", mock.replies[1].headers[1].name)
			assert.are.equal("5", mock.replies[1].headers[1].value)
		end)

		it("relays requests for other domains from local users, marked outbound", function()
			route(invite("dan", "elsewhere.org"))
			assert.are.equal(1, #mock.relays)
			assert.are.equal("sip:dan@elsewhere.org", mock.relays[1].ruri)
			assert.are.equal("outbound", mock.added("P-Hint"))
			assert.are.equal(0, mock.called("registrar.lookup"))
			assert.are.equal("ksr_failure_manage", mock.tm.failure)
		end)

		it("loads the contacts for serial forking when settings.serial_forking", function()
			with_settings({ serial_forking = true })
			mock.stub("registrar.lookup", 1)
			route(invite("bob"))
			assert.are.equal(1, mock.called("tm.t_load_contacts"))
			assert.are.equal(1, mock.called("tm.t_next_contacts"))
			assert.are.equal(1, #mock.relays)
		end)

		it("keeps the called user for the failover when settings.failover", function()
			with_settings({ failover = "192.0.2.50:5080" })
			mock.stub("registrar.lookup", 1)
			route(invite("bob"))
			assert.are.equal("bob", mock.pv("$avp(oexten)"))
		end)
	end)

	describe("failure route", function()
		before_each(function()
			mock.request(invite("bob"))
		end)

		it("leaves a canceled call alone", function()
			mock.stub("tm.t_is_canceled", 1)
			failure_route()
			nothing_sent()
			assert.are.equal(0, mock.called("tm.t_check_status"))
		end)

		it("turns a 3xx into 404", function()
			mock.stub("tm.t_check_status", function(re) return re == "^3[0-9][0-9]$" and 1 or -1 end)
			failure_route()
			only_reply(404, "Not found")
			assert.are.equal("tm.t_reply", mock.replies[1].fn)
			assert.are.same({}, mock.relays)
		end)

		it("lets a 3xx through when block_3xx is false", function()
			with_settings({ block_3xx = false })
			mock.stub("tm.t_check_status", function(re) return re == "^3[0-9][0-9]$" and 1 or -1 end)
			failure_route()
			nothing_sent()
		end)

		it("passes any other failure up as it is", function()
			failure_route()
			nothing_sent()
			assert.are.equal(0, mock.called("tm.t_next_contacts"))
		end)

		describe("serial forking", function()
			setup(function()
				load_pack(settings({ serial_forking = true }))
			end)
			teardown(function()
				load_pack(settings())
			end)

			it("tries the next q group, with the failure route again", function()
				mock.stub("tm.t_next_contacts", 1)
				failure_route()
				assert.are.equal(1, #mock.relays)
				assert.are.equal("ksr_failure_manage", mock.tm.failure)
			end)

			it("passes the failure up when no group is left", function()
				mock.stub("tm.t_next_contacts", -1)
				failure_route()
				nothing_sent()
			end)
		end)

		describe("failover", function()
			setup(function()
				load_pack(settings({ failover = "192.0.2.50:5080" }))
			end)
			teardown(function()
				load_pack(settings())
			end)

			it("sends a busy or unanswered call to settings.failover", function()
				mock.stub("tm.t_check_status", function(re) return re == "^(408|486)$" and 1 or -1 end)
				mock.pv("$avp(oexten)", "bob")
				mock.pv("$du", "sip:198.51.100.20:5062")
				failure_route()
				assert.are.equal(1, #mock.relays)
				assert.are.equal("sip:bob@192.0.2.50:5080", mock.relays[1].ruri)
				assert.is_nil(mock.relays[1].du)
				assert.is_nil(mock.tm.failure) -- its own failure goes to the caller
			end)

			it("answers 500 when the failover cannot be relayed", function()
				mock.stub("tm.t_check_status", function(re) return re == "^(408|486)$" and 1 or -1 end)
				mock.stub("tm.t_relay", -1)
				mock.pv("$avp(oexten)", "bob")
				failure_route()
				only_reply(500)
			end)

			it("passes other failures up", function()
				mock.pv("$avp(oexten)", "bob")
				failure_route()
				nothing_sent()
			end)

			it("needs the called user", function()
				mock.stub("tm.t_check_status", function(re) return re == "^(408|486)$" and 1 or -1 end)
				failure_route()
				nothing_sent()
			end)
		end)
	end)

	describe("reply hook", function()
		it("only logs", function()
			mock.reply({ status = 180, reason = "Ringing", method = "INVITE" })
			assert.are.equal(1, mock.run("ksr_onreply_manage"))
			assert.are.same({}, mock.errors)
			assert.is_true(mock.logged("reply 180 for INVITE", "dbg"))
		end)
	end)
end)
