-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 the ksrd authors
--
-- Benchmark route, scenario "options": the checks every proxy makes
-- (Max-Forwards, sanity), then a stateless 200. Only KEMI functions that
-- ksrd and Kamailio 5.6 (app_lua) both have, so t/bench/compare runs this
-- file unchanged on each.

function ksr_request_route()
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		return
	end
	-- Kamailio's example KEMI script's checks; a failed check has replied
	if KSR.sanity.sanity_check(1511, 7) < 0 then
		return
	end
	if KSR.is_OPTIONS() then
		KSR.sl.sl_send_reply(200, "OK")
		return
	end
	KSR.sl.sl_send_reply(405, "Method Not Allowed")
end
