-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 the ksrd authors
--
-- registrar-proxy: a registrar and an authenticating proxy for SIP phones,
-- the logic of Kamailio's default configuration (kamailio.cfg and its KEMI
-- Lua form) for ksrd. README.md beside this file explains each section;
-- settings.lua holds what an operator changes (domains, users, database).
--
--   REQINIT    Max-Forwards (483), scanners dropped, OPTIONS keepalive, sanity
--   CANCEL     relayed to the INVITE's transaction
--   WITHINDLG  requests with a To tag follow their Route set
--   RETRANS    retransmissions absorbed by their transaction
--   AUTH       REGISTER and requests from local users authenticated; no open relay
--   SIPOUT     record-route, then requests for other domains relayed out
--   REGISTRAR  REGISTER saved in the location table
--   LOCATION   the callee's contacts: 404, 405, 480 when there are none
--   RELAY      statefully, with a failure route (3xx blocked, serial forking, failover)

-- luacheck: read globals KSR
-- luacheck: globals ksr_request_route ksr_failure_manage ksr_onreply_manage

-- ---------------------------------------------------------------- settings

-- Kamailio's auth codes and challenge flags (core/auth/auth.h)
local AUTH_OK = 1
local AUTH_USER_MISMATCH = -8
local CHALLENGE_QOP_AUTH = 1
local AUTH_CHECK_ID = 1 -- the user authenticated must be the From (To for REGISTER) user
local SUBSCRIBER_NO_CREDENTIALS = 2

-- User-Agent substrings of SIP scanners, unless settings.scanners replaces them
local SCANNERS = { "friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sundayddr", "iwar", "sivus" }

local KNOWN = {
	domains = "table", realm = "string", use_db = "boolean", subscriber_table = "string",
	users = "table", max_forwards = "number", scanners = "table", block_3xx = "boolean",
	serial_forking = "boolean", failover = "string",
}

local function bad(key, want, got)
	error(string.format("settings.lua: %s: expected %s, got %s", key, want, got), 0)
end

local function list_of_strings(key, t)
	local out = {}
	for i, v in ipairs(t) do
		if type(v) ~= "string" or v == "" then
			bad(key .. "[" .. i .. "]", "a non-empty string", type(v))
		end
		out[#out + 1] = v:lower()
	end
	return out
end

-- users: name = "password" | { ha1 = "hex" } -> name = { secret, ha1 }
local function user_table(t)
	local out = {}
	for name, v in pairs(t) do
		local key = "users." .. tostring(name)
		if type(name) ~= "string" or name == "" then
			bad("users", "user names as keys", tostring(name))
		elseif type(v) == "string" and v ~= "" then
			out[name] = { secret = v, ha1 = false }
		elseif type(v) == "table" and type(v.ha1) == "string" and v.ha1:match("^%x+$")
			and (#v.ha1 == 32 or #v.ha1 == 64) then
			out[name] = { secret = v.ha1, ha1 = true }
		else
			bad(key, "a password or { ha1 = \"<32 or 64 hex digits>\" }", type(v))
		end
	end
	return out
end

local function load_settings(s)
	if type(s) ~= "table" then
		bad("the module", "a table returned", type(s))
	end
	for k, v in pairs(s) do
		if not KNOWN[k] then
			error(string.format("settings.lua: %s: unknown key", tostring(k)), 0)
		elseif type(v) ~= KNOWN[k] then
			bad(k, "a " .. KNOWN[k], type(v))
		end
	end
	local mf = s.max_forwards or 10
	if mf ~= math.floor(mf) or mf < 1 or mf > 255 then
		bad("max_forwards", "an integer 1..255", tostring(mf))
	end
	local domains = {}
	for _, d in ipairs(list_of_strings("domains", s.domains or {})) do
		domains[d] = true
	end
	if s.use_db and s.subscriber_table == "" then
		bad("subscriber_table", "a table name", "\"\"")
	end
	return {
		domains = domains,
		realm = s.realm,
		use_db = s.use_db or false,
		subscriber_table = s.subscriber_table or "subscriber",
		users = user_table(s.users or {}),
		max_forwards = mf,
		scanners = list_of_strings("scanners", s.scanners or SCANNERS),
		block_3xx = s.block_3xx ~= false,
		serial_forking = s.serial_forking or false,
		failover = s.failover,
	}
end

local cfg = load_settings(require "settings")

-- ---------------------------------------------------------------- helpers

local function is_scanner(ua)
	ua = ua:lower()
	for _, s in ipairs(cfg.scanners) do
		if ua:find(s, 1, true) then
			return true
		end
	end
	return false
end

-- "Ours": a domain of settings.lua, or an address / alias of this server.
local function from_local()
	return cfg.domains[KSR.kx.gete_fhost():lower()] or KSR.is_myself_furi()
end

local function to_local()
	return cfg.domains[KSR.kx.gete_rhost():lower()] or KSR.is_myself_ruri()
end

local function realm()
	if cfg.realm then
		return cfg.realm
	end
	return KSR.is_REGISTER() and KSR.kx.gete_thost() or KSR.kx.gete_fhost()
end

-- A user of users{}; phones may send "user@domain" as their username.
local function static_user(name)
	if not name then
		return nil
	end
	return cfg.users[name] or cfg.users[name:match("^([^@]+)@") or ""]
end

-- Kamailio's auth result codes: 1 authenticated, < 0 not (see core/auth/auth.h).
local function check_credentials(r)
	if cfg.use_db then
		return KSR.auth_db.auth_check(r, cfg.subscriber_table, AUTH_CHECK_ID)
	end
	local user = static_user(KSR.pv.get("$au"))
	if not user then
		return -3 -- no credentials, or no such user: challenge the same way
	end
	-- through a pseudo-variable, so that a password starting with "$" is taken as it is
	KSR.pv.sets("$avp(auth_secret)", user.secret)
	local rc = KSR.auth.pv_auth_check(r, "$avp(auth_secret)", user.ha1 and 1 or 0, AUTH_CHECK_ID)
	KSR.pv.unset("$avp(auth_secret)")
	return rc
end

-- The R-URI user exists (registered or not).
local function is_subscriber()
	if cfg.use_db then
		return KSR.auth_db.is_subscriber(KSR.kx.get_ruri(), cfg.subscriber_table, SUBSCRIBER_NO_CREDENTIALS) == 1
	end
	return cfg.users[KSR.kx.gete_ruser()] ~= nil
end

-- ---------------------------------------------------------------- RELAY

-- Statefully, with the reply and failure hooks; ends the script.
local function route_relay()
	if KSR.is_method_in("ISU") and KSR.tm.t_is_set("onreply_route") < 0 then
		KSR.tm.t_on_reply("ksr_onreply_manage")
	end
	if KSR.is_INVITE() and KSR.tm.t_is_set("failure_route") < 0 then
		KSR.tm.t_on_failure("ksr_failure_manage")
	end
	if KSR.tm.t_relay() < 0 then
		KSR.sl.sl_reply_error()
	end
	KSR.x.exit()
end

-- ---------------------------------------------------------------- REQINIT

local function route_reqinit()
	local ua = KSR.kx.gete_ua()
	if ua ~= "" and is_scanner(ua) then
		-- no reply: a scanner learns nothing, not even that something listens here
		KSR.dbg("scanner '" .. ua .. "' from " .. KSR.kx.get_srcip() .. " dropped")
		KSR.x.exit()
	end
	if KSR.maxfwd.process_maxfwd(cfg.max_forwards) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		KSR.x.exit()
	end
	if KSR.is_OPTIONS() and to_local() and KSR.corex.has_ruri_user() < 0 then
		KSR.sl.sl_send_reply(200, "Keepalive")
		KSR.x.exit()
	end
	if KSR.sanity.sanity_check(1511, 7) < 0 then
		-- sanity_check has answered (400...) when the request deserved an answer
		KSR.err("malformed SIP message from " .. KSR.kx.get_srcip() .. ":" .. KSR.kx.get_srcport())
		KSR.x.exit()
	end
end

-- ---------------------------------------------------------------- CANCEL

local function route_cancel()
	if not KSR.is_CANCEL() then
		return
	end
	-- 0: a retransmission of a CANCEL already handled. Otherwise tm cancels the
	-- INVITE's branches, or (no INVITE) answers as tm.unmatched_cancel says: 481.
	if KSR.tm.t_check_trans() ~= 0 then
		route_relay()
	end
	KSR.x.exit()
end

-- ---------------------------------------------------------------- WITHINDLG

local function route_withindlg()
	if KSR.siputils.has_totag() < 0 then
		return
	end
	if KSR.rr.loose_route() > 0 then
		if KSR.is_NOTIFY() then
			KSR.rr.record_route() -- RFC 6665 §4.3: an in-dialog NOTIFY may change the route set
		end
		route_relay()
	end
	if KSR.is_ACK() then
		-- an ACK with no Route: for a non-2xx reply of ours (absorbed by its
		-- transaction, t_check_trans says 0) or of no transaction at all
		if KSR.tm.t_check_trans() > 0 then
			route_relay()
		end
		KSR.x.exit()
	end
	KSR.sl.sl_send_reply(404, "Not here")
	KSR.x.exit()
end

-- ---------------------------------------------------------------- RETRANS

local function route_retrans()
	if KSR.tmx.t_precheck_trans() > 0 then
		-- the same request is being handled by another worker right now
		KSR.tm.t_check_trans()
		KSR.x.exit()
	end
	if KSR.tm.t_check_trans() == 0 then
		KSR.x.exit() -- a retransmission: its transaction answered it again
	end
end

-- ---------------------------------------------------------------- AUTH

local function route_auth()
	local local_from = from_local()
	if KSR.is_REGISTER() or local_from then
		local r = realm()
		local rc = check_credentials(r)
		if rc == AUTH_USER_MISMATCH then
			KSR.sl.sl_send_reply(403, "Forbidden auth ID")
			KSR.x.exit()
		elseif rc ~= AUTH_OK then
			-- no, wrong, stale or replayed credentials: the same challenge
			-- (it sends nothing if auth_db already answered 500: database down)
			if KSR.is_REGISTER() then
				KSR.auth.www_challenge(r, CHALLENGE_QOP_AUTH)
			else
				KSR.auth.proxy_challenge(r, CHALLENGE_QOP_AUTH)
			end
			KSR.x.exit()
		end
		-- the next hop has no use for them (REGISTER and PUBLISH stop here anyway)
		if not KSR.is_method_in("RP") then
			KSR.auth.consume_credentials()
		end
	end
	-- not from a local user and not for one: not an open relay
	if not local_from and not to_local() then
		KSR.sl.sl_send_reply(403, "Not relaying")
		KSR.x.exit()
	end
end

-- ---------------------------------------------------------------- SIPOUT

local function route_sipout()
	-- a preloaded route set is not followed: we route initial requests ourselves
	KSR.hdr.remove("Route")
	if KSR.is_method_in("IS") then
		KSR.rr.record_route() -- dialog-forming: keep us on the path of the dialog
	end
	if not to_local() then
		KSR.hdr.append("P-Hint: outbound\r\n")
		route_relay()
	end
end

-- ---------------------------------------------------------------- REGISTRAR

local function route_registrar()
	if not KSR.is_REGISTER() then
		return
	end
	-- save() answers the REGISTER itself, the errors too (400, 403, 423, 500 with
	-- Retry-After): a second reply from the script would be one too many
	KSR.registrar.save("location", 0)
	KSR.x.exit()
end

-- ---------------------------------------------------------------- LOCATION

local function route_location()
	if KSR.corex.has_ruri_user() < 0 then
		KSR.sl.sl_send_reply(484, "Address Incomplete")
		KSR.x.exit()
	end
	if cfg.failover then
		KSR.pv.sets("$avp(oexten)", KSR.kx.gete_ruser()) -- the called user, for the failure route
	end
	local rc = KSR.registrar.lookup("location")
	if rc < 0 then
		KSR.tm.t_newtran() -- retransmissions of the request get the same answer
		if rc == -2 then
			KSR.sl.send_reply(405, "Method Not Allowed")
		elseif rc == -3 then
			KSR.hdr.append_to_reply("Retry-After: 5\r\n")
			KSR.sl.send_reply(500, "Server Internal Error")
		elseif is_subscriber() then
			KSR.sl.send_reply(480, "Temporarily Unavailable") -- a user of ours, not registered now
		else
			KSR.sl.send_reply(404, "Not Found")
		end
		KSR.x.exit()
	end
	if cfg.serial_forking and KSR.is_INVITE() then
		KSR.tm.t_load_contacts()
		KSR.tm.t_next_contacts()
	end
	route_relay()
end

-- ---------------------------------------------------------------- request route

function ksr_request_route()
	route_reqinit()
	route_cancel()
	route_withindlg()
	route_retrans()
	route_auth()
	route_sipout()
	route_registrar()
	route_location()
end

-- ---------------------------------------------------------------- tm hooks

-- Each reply to a relayed INVITE, SUBSCRIBE or UPDATE, before tm handles it.
function ksr_onreply_manage()
	KSR.dbg("reply " .. KSR.kx.get_status() .. " for " .. KSR.kx.get_method())
end

-- The INVITE failed on every branch (or on the q group tried last).
function ksr_failure_manage()
	if KSR.tm.t_is_canceled() > 0 then
		return -- the caller gave up: the 487 goes up as it is
	end
	if cfg.block_3xx and KSR.tm.t_check_status("^3[0-9][0-9]$") > 0 then
		KSR.tm.t_reply(404, "Not found")
		return
	end
	if cfg.serial_forking and KSR.tm.t_next_contacts() > 0 then
		route_relay() -- the next q group, with this failure route again
	end
	if cfg.failover and KSR.tm.t_check_status("^(408|486)$") > 0 then
		local user = KSR.pv.get("$avp(oexten)")
		if user then
			KSR.seturi("sip:" .. user .. "@" .. cfg.failover)
			KSR.resetdsturi()
			-- no failure route for this one: its failure goes to the caller
			if KSR.tm.t_relay() < 0 then
				KSR.sl.sl_reply_error()
			end
		end
	end
end
