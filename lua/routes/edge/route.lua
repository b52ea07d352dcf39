-- lua/routes/edge/route.lua
local DOMAIN = "example.com"
local NEXT_HOP = "sip:10.0.0.20:5060"

-- Checks every request must pass; ends the script when one fails.
local function route_reqinit()
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		KSR.x.exit()
	end
	if KSR.sanity.sanity_check_defaults() < 0 then
		-- sanity has already answered the request
		KSR.err("malformed request from " .. KSR.kx.get_srcip())
		KSR.x.exit()
	end
end

function ksr_request_route()
	route_reqinit()
	if KSR.is_OPTIONS() and KSR.is_myself_ruri() then
		KSR.sl.sl_send_reply(200, "OK")
		return
	end
	if KSR.kx.get_rhost() ~= DOMAIN then
		KSR.sl.sl_send_reply(403, "Relaying Denied")
		return
	end
	KSR.hdr.remove("X-Debug")
	KSR.hdr.append("X-Served-By: edge\r\n")
	KSR.setdsturi(NEXT_HOP)
	if KSR.forward() < 0 then
		KSR.sl.sl_send_reply(503, "Service Unavailable")
	end
end
