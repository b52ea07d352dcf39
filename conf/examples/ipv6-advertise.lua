-- A server behind 1:1 NAT that also listens on IPv6.
--
-- The private IPv4 address is what the socket binds; "advertise" is what goes
-- into Via, Record-Route and Contact, so that peers on the internet can reach
-- us. Without a port the listen port is advertised.

listen = {
	"udp:10.0.0.5:5060 advertise 203.0.113.10",
	"tcp:10.0.0.5:5060 advertise 203.0.113.10:5060",
	"udp:[2001:db8::5]:5060",
	"tcp:[2001:db8::5]:5060 advertise sip.example.com",
}

-- Requests to the public address and name are for us, not to be forwarded.
aliases = { "203.0.113.10", "sip.example.com" }

script = "../../lua/routes/default/route.lua"

log = { level = "notice", target = "syslog" }
