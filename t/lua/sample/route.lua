-- SPDX-License-Identifier: MIT
-- Sample route for the offline test kit (t/lua/sample_route_spec.lua runs every
-- branch against ksr.mock): a stateless edge proxy in front of a backend set.
--
--   REQINIT   Max-Forwards (483 when exhausted), scanners dropped silently,
--             OPTIONS keepalives to this server answered here
--   CLEANUP   internal headers from outside removed, X-Route added
--   RELAY     to one backend of the set, chosen by Call-ID so that all the
--             requests of a call reach the same one

local BACKENDS = {
	"sip:10.0.0.11:5060",
	"sip:10.0.0.12:5060",
	"sip:10.0.0.13:5060",
}

-- User-Agent substrings of SIP scanners (compared in lower case)
local SCANNERS = { "friendly-scanner", "sipvicious", "sipcli" }

local function is_scanner(ua)
	ua = ua:lower()
	for _, s in ipairs(SCANNERS) do
		if ua:find(s, 1, true) then
			return true
		end
	end
	return false
end

local function route_reqinit()
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		KSR.x.exit()
	end
	local ua = KSR.kx.gete_ua()
	if is_scanner(ua) then
		KSR.info("dropping scanner '" .. ua .. "' from " .. KSR.kx.get_srcip())
		KSR.x.exit()
	end
	if KSR.is_OPTIONS() and KSR.is_myself_ruri() then
		KSR.sl.sl_send_reply(200, "Keepalive")
		KSR.x.exit()
	end
end

local function route_cleanup()
	KSR.textops.remove_hf_re("^X-Internal-")
	KSR.hdr.append("X-Route: sample\r\n")
end

-- The same Call-ID always gives the same backend.
local function backend_for(callid)
	local h = 0
	for i = 1, #callid do
		h = (h * 31 + callid:byte(i)) % 2147483647
	end
	return BACKENDS[h % #BACKENDS + 1]
end

local function route_relay()
	KSR.setdsturi(backend_for(KSR.kx.get_callid()))
	if KSR.forward() < 0 then
		KSR.err("cannot forward to " .. KSR.pv.get("$du"))
		KSR.sl.sl_send_reply(503, "Backend Unreachable")
	end
end

function ksr_request_route()
	route_reqinit()
	route_cleanup()
	route_relay()
end
