-- The registrar-proxy route pack without a database: phones register and call
-- each other through ksrd; the location table lives in memory and the users
-- and passwords are in lua/routes/registrar-proxy/settings.lua (use_db = false).
-- Registrations are lost when ksrd stops; phones re-register within their
-- expiry. See lua/routes/registrar-proxy/README.md.
--
--   ./build/ksrd -f conf/registrar-proxy.lua -E

listen = {
	"udp:0.0.0.0:5060",
	"tcp:0.0.0.0:5060",
}

script = "../lua/routes/registrar-proxy/route.lua"

log = { level = "info", target = "stderr" }

-- Names phones use for this server, when it is not their IP address (the pack
-- also takes the domains listed in its settings.lua).
-- aliases = { "sip.example.com" }

usrloc = {
	db_mode = 0,                -- memory only
	timer_interval = 30,        -- s: expired bindings removed this often
}

registrar = {
	default_expires = 3600,
	min_expires = 60,           -- below: 423 with Min-Expires
	max_expires = 3600,         -- above: clamped
	max_contacts = 10,          -- per user; more: 403
}

auth = {
	nonce_expire = 300,         -- then the phone is asked again, with stale=true
	algorithm = "MD5",          -- "SHA-256,MD5" offers both (RFC 8760) to phones that know SHA-256
}
