-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 the ksrd authors
--
-- Benchmark route, scenario "register-auth": a REGISTER without valid
-- credentials is challenged (401, qop=auth), one with them is saved. Every
-- user has the password "bench" (sipload's default --password), given to
-- pv_auth_check as a value, so no database is involved on either server.
-- Only KEMI functions that ksrd and Kamailio 5.6 both have (t/bench/compare).

local REALM = "bench"

function ksr_request_route()
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		return
	end
	if KSR.sanity.sanity_check(1511, 7) < 0 then
		return
	end
	if KSR.is_REGISTER() then
		-- checks 1: the authentication user must be the To user
		if KSR.auth.pv_auth_check(REALM, "bench", 0, 1) < 0 then
			KSR.auth.auth_challenge(REALM, 1)
			return
		end
		if KSR.registrar.save("location", 0) < 0 then
			KSR.sl.sl_reply_error()
		end
		return
	end
	if KSR.is_OPTIONS() then
		KSR.sl.sl_send_reply(200, "OK")
		return
	end
	KSR.sl.sl_send_reply(405, "Method Not Allowed")
end
