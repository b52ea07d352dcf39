-- The route ksrd runs when nothing else is configured: it answers keep-alive
-- OPTIONS addressed to this server and politely refuses everything else, so a
-- fresh install is never an open relay. Use a route pack for real work.

function ksr_request_route()
	if KSR.is_ACK() then
		-- nothing to answer; ACKs for our own replies are absorbed here
		return
	end
	if KSR.is_OPTIONS() and KSR.is_myself_ruri() then
		KSR.sl.sl_send_reply(200, "OK")
		return
	end
	KSR.sl.sl_send_reply(403, "Forbidden - no routing configured")
end
