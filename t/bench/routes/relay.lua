-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 the ksrd authors
--
-- Benchmark route, scenarios "call" and "message": a stateful proxy in the
-- manner of Kamailio's example KEMI script, reduced to what the scenarios
-- use. The Request-URI names the far end (sipload uas), so no location
-- lookup; INVITEs are record-routed so that ACK and BYE come back through
-- here. Only KEMI functions that ksrd and Kamailio 5.6 both have
-- (t/bench/compare).

local function relay()
	if KSR.tm.t_relay() < 0 then
		KSR.sl.sl_reply_error()
	end
end

function ksr_request_route()
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		return
	end
	if KSR.sanity.sanity_check(1511, 7) < 0 then
		return
	end
	if KSR.siputils.has_totag() > 0 then
		-- in dialog: follow the route set
		if KSR.rr.loose_route() > 0 then
			relay()
			return
		end
		-- ACK for a negative reply, hop by hop: tm absorbs it
		if KSR.is_ACK() then
			if KSR.tm.t_check_trans() > 0 then
				relay()
			end
			return
		end
		KSR.sl.sl_send_reply(404, "Not here")
		return
	end
	if KSR.is_ACK() then
		return
	end
	-- the test harness and compare check that a server is up with OPTIONS
	if KSR.is_OPTIONS() and KSR.pv.get("$rU") == nil then
		KSR.sl.sl_send_reply(200, "OK")
		return
	end
	if KSR.is_INVITE() then
		KSR.rr.record_route()
	end
	relay()
end
