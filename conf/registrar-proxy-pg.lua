-- The registrar-proxy route pack with PostgreSQL: registrations written
-- through to the `location` table (they survive a restart) and passwords in
-- the `subscriber` table. Create the database with conf/sql (see its
-- README.md), and set `use_db = true` in lua/routes/registrar-proxy/settings.lua
-- so that the pack authenticates against `subscriber`. See
-- lua/routes/registrar-proxy/README.md.
--
--   ./build/ksrd -f conf/registrar-proxy-pg.lua -E

listen = {
	"udp:0.0.0.0:5060",
	"tcp:0.0.0.0:5060",
}

script = "../lua/routes/registrar-proxy/route.lua"

log = { level = "info", target = "stderr" }

-- aliases = { "sip.example.com" }

local db = "postgres://ksrd:secret@127.0.0.1:5432/ksrd"

usrloc = {
	db_url = db,
	db_mode = 1,                -- write-through: every change is in the database before the 200
	db_timeout = 2000,          -- ms: a database that does not answer gives 500 + Retry-After
	timer_interval = 30,
}

registrar = {
	default_expires = 3600,
	min_expires = 60,
	max_expires = 3600,
	max_contacts = 10,
}

auth = {
	db_url = db,                -- KSR.auth_db: the subscriber table
	db_timeout = 2000,
	nonce_expire = 300,
	algorithm = "MD5",
	-- the table holds ha1 = md5(username:realm:password) and ha1b (the default);
	-- with plain passwords in its `password` column instead:
	-- calculate_ha1 = true, password_column = "password",
}
