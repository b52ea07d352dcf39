-- ksrd default configuration.
--
-- This file is Lua, run once at start-up in a sandbox: it may compute values
-- with string, table and math, but it cannot read files, run programs or load
-- modules. Every global it assigns is a setting and is checked: an unknown
-- name or a value of the wrong type stops start-up with the file, the key and
-- what was expected. Use `local` for helper variables, or they would be taken
-- for (unknown) settings. `ksrd -c` checks a configuration without starting.
--
-- Relative paths are relative to the directory of this file, not to the
-- current directory, so `ksrd -f /etc/ksrd/ksrd.lua` works from anywhere.

-- Where to receive SIP. "proto:address:port [advertise host:port]".
-- UDP and TCP on the same port, because RFC 3261 requires both and a request
-- too large for UDP is sent over TCP. 0.0.0.0 (or "*") is every IPv4 address;
-- IPv6 addresses go in brackets: "udp:[::]:5060".
listen = {
	"udp:0.0.0.0:5060",
	"tcp:0.0.0.0:5060",
}

-- Worker processes. The default, one per online CPU, keeps every core busy
-- without context switches; set it only to leave cores to something else.
-- workers = 4

-- The route script: the Lua that decides what happens to each message.
-- The registrar-proxy pack: phones register and call each other, with digest
-- authentication; its users and domains are in lua/routes/registrar-proxy/settings.lua
-- (the example users there have example passwords: change them). For the pack
-- with PostgreSQL see conf/registrar-proxy-pg.lua. The minimal route that
-- refuses everything: "../lua/routes/default/route.lua".
script = "../lua/routes/registrar-proxy/route.lua"

-- "info" says what the server does (start, stop, listening sockets) without a
-- line per message; use "dbg" to follow messages. stderr suits a terminal, a
-- container or systemd (which collects it); "syslog" for a classic daemon.
log = {
	level = "info",
	target = "stderr",
	-- prefix = "ksrd",          -- the program name in each line / syslog ident
}

-- Other host names that mean "this server" in a Request-URI, besides the
-- listen addresses (a DNS name that points here, the public address behind NAT).
-- aliases = { "sip.example.com", "203.0.113.10" }

-- Stateless replies (sl): the Server header of replies ksrd makes itself.
-- false leaves it out, e.g. not to tell scanners the version.
-- sl = {
-- 	server_header = "ksrd",     -- default "ksrd <version>"
-- }

-- TCP connections.
-- tcp = {
-- 	idle_timeout = 600,         -- s: close a connection that carried nothing this long
-- 	max_connections = 4096,     -- refuse more, so a flood cannot exhaust descriptors
-- 	max_message_size = 65536,   -- octets: the largest message accepted
-- 	connect_timeout = 5000,     -- ms: give up connecting to a next hop after this
-- 	keepalive_pong = true,      -- answer RFC 5626 CRLFCRLF pings with CRLF
-- }

-- UDP sockets.
-- udp = {
-- 	max_message_size = 65535,   -- octets: the largest datagram accepted
-- 	recv_batch = 32,            -- datagrams read per recvmmsg() call (1..64)
-- }

-- The route script's Lua states (one per worker).
-- lua = {
-- 	time_budget_ms = 1000,      -- a callback running longer is stopped with an error
-- 	mem_budget_mb = 256,        -- memory limit of each worker's Lua state
-- }

-- Control: `ksrctl` talks to the unix socket; http is off unless set.
-- rpc = {
-- 	socket = "/tmp/ksrd.sock",  -- relative paths are relative to this file
-- 	http = "127.0.0.1:8080",    -- numeric address only: never expose it publicly
-- }

-- Stateless forwarding.
-- fwd = {
-- 	reply_unmatched = true,     -- forward replies that match no transaction statelessly
-- }

-- User location. Without db_url everything stays in memory (db_mode 0).
-- Tables for PostgreSQL: conf/sql (see its README.md).
-- usrloc = {
-- 	db_url = "postgres://ksrd:secret@127.0.0.1:5432/ksrd",
-- 	db_mode = 0,                -- 0 memory, 1 write-through, 2 write-back, 3 database only (several nodes)
-- 	db_timeout = 2000,          -- ms: bound on connecting and on every statement
-- 	use_domain = false,         -- AOR is user@domain rather than user
-- 	hash_size = 10,             -- 2^10 buckets, each with its own lock
-- 	timer_interval = 60,        -- s: expiry and write-back
-- 	nat_bflag = -1,             -- branch flag that marks a NATed contact: its source is stored as received
-- 	server_id = 0,              -- stored with each contact
-- }

-- Registrar (KSR.registrar.save / lookup).
-- registrar = {
-- 	default_expires = 3600,     -- s: when the REGISTER says nothing
-- 	min_expires = 60,           -- below: 423 with Min-Expires (0 = no minimum)
-- 	max_expires = 0,            -- above: clamped (0 = no maximum)
-- 	expires_range = 0,          -- percent of random spread on expires
-- 	max_contacts = 0,           -- per AOR; more: 403 (0 = unlimited)
-- 	use_path = false,           -- store Path (RFC 3327) and route through it
-- 	path_mode = 2,              -- 0 off, 1 lazy, 2 strict (420 without Supported: path)
-- 	method_filtering = false,   -- lookup skips contacts whose Allow excludes the method
-- 	append_branches = true,     -- lookup adds the other contacts as branches
-- 	retry_after = 30,           -- s: Retry-After on 5xx (database down)
-- 	received_avp = "$avp(RECEIVED)", -- a NAT source URI set by the script, stored as received
-- }

-- Digest authentication (KSR.auth, KSR.auth_db). Nonces are signed, not
-- stored: with a secret, every node that shares it accepts them (set
-- nonce_count = false then, since the counts are kept per node); without one a
-- random key is made at start and nonces die with the process.
-- Subscribers for auth_db: the `subscriber` table of conf/sql.
-- auth = {
-- 	secret = "change me: 32 random characters",
-- 	nonce_expire = 300,         -- s: then the phone is challenged again with stale=true
-- 	algorithm = "MD5",          -- or "SHA-256", or "SHA-256,MD5" to offer both (RFC 8760)
-- 	qop = "",                   -- "auth": always offer qop=auth (else the challenge flags decide)
-- 	nonce_count = true,         -- refuse a replayed nonce count
-- 	nc_array_size = 131072,     -- nonces tracked for nonce_count (16 octets each)
-- 	use_domain = false,         -- user checks compare domains; auth_db matches the domain column
-- 	db_url = "postgres://ksrd:secret@127.0.0.1:5432/ksrd",
-- 	db_timeout = 2000,          -- ms: bound on connecting and on every query (then 500)
-- 	calculate_ha1 = false,      -- true: password_column holds plain passwords
-- 	password_column = "ha1",    -- "password" with calculate_ha1 = true
-- 	password_column_2 = "ha1b", -- HA1 of "user@domain", for phones that send it so
-- 	user_column = "username",
-- 	domain_column = "domain",
-- 	load_credentials = "",      -- "rpid;$avp(mail)=email": columns stored into PVs on success
-- }
