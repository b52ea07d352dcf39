-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 the ksrd authors
--
-- Benchmark route, scenario "register": the common checks, then the
-- registrar saves the contact in the in-memory location table and replies.
-- Only KEMI functions that ksrd and Kamailio 5.6 both have (t/bench/compare).

function ksr_request_route()
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		return
	end
	if KSR.sanity.sanity_check(1511, 7) < 0 then
		return
	end
	if KSR.is_REGISTER() then
		if KSR.registrar.save("location", 0) < 0 then
			KSR.sl.sl_reply_error()
		end
		return
	end
	-- the test harness and compare check that a server is up with OPTIONS
	if KSR.is_OPTIONS() then
		KSR.sl.sl_send_reply(200, "OK")
		return
	end
	KSR.sl.sl_send_reply(405, "Method Not Allowed")
end
