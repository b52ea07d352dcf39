-- A server taking many TCP clients (SIP phones keeping a connection open).

listen = { "tcp:0.0.0.0:5060", "udp:0.0.0.0:5060" }

workers = 8

script = "../../lua/routes/default/route.lua"

tcp = {
	-- Phones send a CRLF keep-alive every 30-120 s (RFC 5626): a 5 minutes
	-- idle limit closes only dead connections, and frees them sooner.
	idle_timeout = 300,
	keepalive_pong = true,
	-- One descriptor each: raise `ulimit -n` above this.
	max_connections = 50000,
	-- A peer that does not accept a connection within 2 s is not going to.
	connect_timeout = 2000,
}

-- Large INVITEs (many codecs, SIP-I bodies) go over TCP; keep UDP's default.
udp = { recv_batch = 64 }

log = { level = "warn" }
