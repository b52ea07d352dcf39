-- Settings of the registrar-proxy route pack: the one file to edit.
--
-- route.lua reads this module when it is loaded, so a reload of the script
-- (`ksrctl app_lua.reload` or SIGHUP) also re-reads it; a mistake here is
-- refused with the key that is wrong, and the running script stays.
-- Plain Lua: only the table returned below counts.

return {
	-- The SIP domains this server is the registrar of, besides its own
	-- addresses and the `aliases` of ksrd.lua. A phone registers as
	-- user@domain; requests from or to these domains are "local".
	-- Compared without the port, case-insensitively.
	domains = {},

	-- Realm of the digest challenges. nil: the domain of the request (To for
	-- REGISTER, From otherwise), as Kamailio's default configuration does.
	realm = nil,

	-- Where the passwords are.
	--   false: the `users` table below (no database needed)
	--   true:  the `subscriber` table of PostgreSQL through auth_db; set
	--          auth.db_url in the ksrd configuration (conf/registrar-proxy-pg.lua)
	use_db = false,
	subscriber_table = "subscriber",

	-- Static users (use_db = false): name = password, or name = { ha1 = "..." }
	-- with ha1 = md5("name:realm:password") in hex, to keep no password here.
	-- These are examples for a first try: CHANGE THEM before a phone outside
	-- this machine can reach the server.
	users = {
		alice = "alice-secret-1",
		bob = "bob-secret-2",
	},

	-- Max-Forwards: requests arriving with 0 get 483; a missing one is set to this.
	max_forwards = 10,

	-- User-Agent substrings of SIP scanners: their requests are dropped without
	-- a reply (case-insensitive). A list here replaces the built-in one:
	-- "friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sundayddr", "iwar", "sivus".
	-- scanners = { "friendly-scanner", "sipvicious", "sipcli" },

	-- A callee's 3xx (redirect) becomes 404 for the caller: a phone cannot send
	-- our users' calls to an arbitrary place (Kamailio's WITH_BLOCK3XX).
	block_3xx = true,

	-- Contacts of a user with different q values are tried one q group after
	-- the other (highest first) instead of all at once.
	serial_forking = false,

	-- "host[:port]" that gets a call nobody answered (408) or that is busy
	-- (486), e.g. a voicemail server: the called user stays the R-URI user
	-- (Kamailio's WITH_VOICEMAIL). nil: the caller gets the failure.
	failover = nil,
}
