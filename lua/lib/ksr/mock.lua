-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 the ksrd authors
--
-- ksr.mock: the KSR table of ksrd, offline, for busted specs of route scripts.
--
-- Built from ksr.api (generated from the server's binding table by
-- t/gen/mkmock.lua), so the mock has exactly the server's functions:
--   * calling a function ksrd does not have fails the spec:
--       "KSR.foo.bar does not exist in ksrd"
--   * a wrong number of arguments or a wrong type fails the spec, naming the
--     function and the argument ("int" needs an integral number, "str" a
--     string or a number)
--   * a function allowed only in some routes (e.g. KSR.sl.* in a reply route)
--     logs an error and returns failure, as ksrd does.
-- Functions whose effect can be known from the message are built in (pseudo-
-- variables, headers, methods, flags, R-URI/$du, replies, forwarding, logs,
-- KSR.x.exit ...), each only if ksr.api has it. Every other function returns a
-- neutral value (int 1, bool true, xval "no value") unless a spec stubs it.
--
-- Example (a spec; busted --lua=luajit from the repository root)
--   local mock = require "ksr.mock"
--   describe("my route", function()
--     setup(function()
--       mock.new({ aliases = { "proxy.example.com" } })   -- sets the global KSR
--       mock.load("lua/routes/mine/route.lua")             -- defines ksr_request_route
--     end)
--     before_each(function() mock.reset() end)
--     it("answers 483 when Max-Forwards is exhausted", function()
--       mock.request({ method = "INVITE", headers = { ["Max-Forwards"] = "0" } })
--       assert.are.equal(1, mock.run("ksr_request_route"))
--       assert.are.equal(483, mock.replies[1].code)
--       assert.are.same({}, mock.forwards)
--     end)
--     it("forwards after a failed lookup", function()
--       mock.stub("registrar.lookup", -1)                  -- if ksrd has it
--       ...
--     end)
--   end)
--
-- API
--   local mock = require "ksr.mock"
--   local KSR = mock.new(opts)   fresh mock; also sets the globals KSR and
--                                KSRVERSION unless opts.global == false.
--       opts.listen   listen sockets, as in ksrd.lua   {"udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"}
--       opts.aliases  other names of this server        {}  (e.g. {"sip.example.com"})
--       opts.api      a binding table to use instead of ksr.api (tests of the mock)
--   mock.request{method, ruri, headers, body, src_ip, src_port, proto,
--                rcv_ip, rcv_port, time, conid}
--   mock.reply{status, reason, method, headers, body, src_ip, src_port, proto, ...}
--       set the current message. headers: {["Name"] = "value" | {"v1", "v2"} | false}
--       and/or a list of {"Name", "value"}; a name given replaces the default
--       of that name, false removes it. Defaults: Via, Max-Forwards (requests),
--       From, To, Call-ID, CSeq, Content-Length. A new message clears what was
--       recorded for the previous one and its $avp, $du, flags (not $var, $shv,
--       stubs).
--   mock.run(fn_or_name, opts) -> 1 | -1, err
--       runs a route function as ksrd does: KSR.x.exit()/drop() end it normally
--       (sentinel compared by identity, so a pcall around KSR.x.exit() swallows
--       it, as in ksrd); any other error is logged, recorded in mock.errors and,
--       in a request route, answered with an automatic "500 Server Internal
--       Error" when nothing replied. opts.route ("request", "reply", "failure",
--       "branch", "onsend", "event", "branch_failure"; default from the
--       message), opts.args (arguments, e.g. the event name).
--       Misuse of the mock (unknown function, bad arguments) is re-raised, so
--       it fails the spec even when the route catches errors. While the route
--       runs, assigning a new global is an error, as in ksrd.
--   mock.load(path)   loads a route script as ksrd does (in the load-time route);
--       plain dofile(path) works too.
--   mock.stub("registrar.lookup", function(table, uri) return -1 end)
--   mock.stub("auth.pv_auth_check", 1)   a value, or a function of the (checked)
--       arguments; only for functions of the table. mock.unstub(name).
--   mock.reset()   back to a fresh state: no stubs, no $var/$shv, a default request.
--   mock.pv(name) / mock.pv(name, value)   read / assign a pseudo-variable.
--   mock.called(name) -> number of calls; mock.logged(text [, level]) -> bool;
--   mock.added(name) -> value of the last header added with that name;
--   mock.removed(name) -> true if a received header of that name was removed.
--   mock.EXIT      the sentinel KSR.x.exit() raises.
--
-- Recorded for assertions (lists, in order):
--   mock.replies          {code, reason, headers = {{name, value, text}...}, fn, auto}
--                         (headers: those added with KSR.hdr.append_to_reply)
--   mock.forwards         stateless forwards {fn, dst, ruri, du, max_forwards,
--   mock.relays           headers_added, headers_removed, headers}; relays: tm.
--   mock.headers_added    {name, value, text, op}   op: append, insert, ...
--   mock.headers_removed  {name, value}   received headers removed
--   mock.logs             {level, text, source}   source: "script" or "ksrd"
--   mock.calls            {name, args}   every KSR call, e.g. name "sl.sl_send_reply"
--   mock.errors           {route, message}   script errors
--   mock.flags            set of message flags {[n] = true}; mock.bflags (branch 0)
--   mock.dropped          true after KSR.set_drop()/KSR.x.drop()
--   mock.tm               functions named by KSR.tm.t_on_*: {failure, branch, reply, branch_failure}
--
-- Reads see the received message: header edits are deferred in ksrd (applied
-- when the outgoing message is built), so KSR.hdr.get does not see a header
-- the route appended, and a removed header is still "present". R-URI and $du
-- changes are seen at once. See README.md beside this file for an example.

local api_default = require "ksr.api"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local M = {}

-- The value KSR.x.exit() raises; compared by identity.
local EXIT = setmetatable({}, { __tostring = function() return "KSR.x.exit" end })
M.EXIT = EXIT

local ROUTES = {
	request = true, reply = true, failure = true, branch = true, onsend = true,
	event = true, branch_failure = true, load = true,
}

-- As ksrd names them in its messages
local ROUTE_LABEL = { load = "load-time", branch_failure = "branch-failure" }

-- Names of Kamailio KEMI modules: KSR.<name> is nil when ksrd has none of its
-- functions (scripts probe with `if KSR.tm then`); any other unknown name fails.
local KEMI_MODULES = {}
for name in ([[acc app_lua async auth auth_db cfgutils corex dialog dispatcher htable
	jsonrpcs kx maxfwd ndb_redis nathelper path permissions pike pipelimit pv pvx registrar
	rr rtpengine rtpproxy sanity sdpops siptrace siputils sl sqlops statistics textops
	textopsx tm tmx topos uac websocket x xhttp xlog hdr]]):gmatch("%S+") do
	KEMI_MODULES[name] = true
end

-- ---------------------------------------------------------------- state

local st = {
	api = api_default,
	config = nil,    -- normalised opts of mock.new
	listens = nil,   -- parsed listen sockets
	stubs = {},      -- "mod.name" -> function
	vars = {},       -- $var: per worker, survives messages
	shv = {},        -- $shv: process-wide
	seq = 0,         -- messages made since reset (Call-ID, $mi)
	msg = nil,       -- the current message
	route = nil,     -- route type while mock.run runs
	missing = {},    -- KEMI module names looked up and absent
	fatal = nil,     -- misuse of the mock seen during mock.run
}

-- ---------------------------------------------------------------- helpers

local function trim(s)
	return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function copy_list(t)
	local out = {}
	for i, v in ipairs(t) do
		if type(v) == "table" then
			local c = {}
			for k, x in pairs(v) do
				c[k] = x
			end
			v = c
		end
		out[i] = v
	end
	return out
end

local function is_int(v)
	return type(v) == "number" and v == math.floor(v) and v > -math.huge and v < math.huge
end

local function keyname(mod, name)
	return mod == "" and name or (mod .. "." .. name)
end

local function fullname(mod, name)
	return "KSR." .. keyname(mod, name)
end

local SELF = debug.getinfo(1, "S").source

-- "file:line: " of the first Lua frame from level up that is not in this file
-- (a route calling `return KSR.sl.foo()` leaves no frame of its own).
local function where(level)
	for l = level + 1, level + 12 do
		local info = debug.getinfo(l, "Sl")
		if not info then
			break
		end
		if info.source ~= SELF and info.currentline and info.currentline > 0 then
			return info.short_src .. ":" .. info.currentline .. ": "
		end
	end
	return ""
end

-- Misuse of the mock: fails the spec, even through a pcall in the route.
-- level as for error(); 0 = no position.
local function fatal(msg, level)
	local full = (level == 0 and "" or where(level + 1)) .. msg
	st.fatal = st.fatal or full
	error(full, 0)
end

-- A mistake in the spec's use of the mock, reported at the spec's line.
local function usage(msg)
	error(where(1) .. msg, 0)
end

-- Splits "mod.name" / "name" / "KSR.mod.name"; returns mod, name, def.
local function lookup(name)
	if type(name) ~= "string" then
		return nil
	end
	name = name:gsub("^KSR%.", "")
	local mod, fn = name:match("^([%w_]+)%.([%w_]+)$")
	if not mod then
		mod, fn = "", name
	end
	local m = st.api[mod]
	return mod, fn, m and m[fn]
end

local function log(level, text, source)
	M.logs[#M.logs + 1] = { level = level, text = text, source = source or "ksrd" }
end

-- ---------------------------------------------------------------- headers

local COMPACT = {
	a = "accept-contact", b = "referred-by", c = "content-type", d = "request-disposition",
	e = "content-encoding", f = "from", i = "call-id", j = "reject-contact", k = "supported",
	l = "content-length", m = "contact", n = "identity-info", o = "event", r = "refer-to",
	s = "subject", t = "to", u = "allow-events", v = "via", x = "session-expires", y = "identity",
}

local function hkey(name)
	local l = name:lower()
	return COMPACT[l] or l
end

-- Received headers of that name, in order.
local function hdrs(name)
	local k, out = hkey(name), {}
	for _, h in ipairs(st.msg.headers) do
		if h.key == k then
			out[#out + 1] = h
		end
	end
	return out
end

local function hdr_value(name, idx)
	local list = hdrs(name)
	idx = idx or 0
	local h = idx >= 0 and list[idx + 1] or list[#list + idx + 1]
	return h and h.value
end

-- Header text as scripts give it ("Name: value\r\n", possibly several lines)
-- -> list of {name, value, text}. ksrd adds the text as it is (no CRLF added,
-- like Kamailio); a line that is not "Name: value" has name and value nil.
local function parse_header_text(text)
	local out = {}
	for line in (text:gsub("\r\n", "\n")):gmatch("[^\n]+") do
		local name, value = line:match("^([%w%-%.!%%%*_%+`'~]+)%s*:%s*(.-)%s*$")
		out[#out + 1] = { name = name, value = value, text = line .. "\r\n" }
	end
	if #out > 0 and text:sub(-1) ~= "\n" then
		out[#out].text = out[#out].text:sub(1, -3)
	end
	return out
end

local function hname_ok(fn, name)
	if #name > 0 and #name < 64 then
		return true
	end
	log("err", string.format("KSR.hdr.%s: bad header name (%d octets)", fn, #name))
	return false
end

-- Records the headers of text as added by op (append, insert, ...). ref: the
-- header name op refers to (append_after / insert_before).
local function add_headers(text, op, ref)
	for _, h in ipairs(parse_header_text(text)) do
		h.op, h.ref = op, ref
		M.headers_added[#M.headers_added + 1] = h
	end
	return 1
end

local function remove_where(pred)
	local n = 0
	for _, h in ipairs(st.msg.headers) do
		if not h.removed and pred(h) then
			h.removed = true
			n = n + 1
			M.headers_removed[#M.headers_removed + 1] = { name = h.name, value = h.value }
		end
	end
	return n
end

local function remove_named(name)
	local k = hkey(name)
	return remove_where(function(h) return h.key == k end)
end

-- POSIX extended regular expressions as ksrd (regcomp) takes them, for the
-- subset that maps onto Lua patterns: anchors, ., *, +, ?, bracket
-- expressions, escapes. Alternation, groups, {m,n}: stub the function instead.
local POSIX_CLASSES = {
	alpha = "%a", digit = "%d", alnum = "%w", space = "%s", upper = "%u", lower = "%l",
	punct = "%p", xdigit = "%x", cntrl = "%c",
}

local function regex_to_pattern(re, fn)
	local out, i, n = {}, 1, #re
	local function unsupported(what)
		fatal(string.format("%s: the mock cannot evaluate %s in regex '%s'; stub %s", fn, what, re, fn), 0)
	end
	while i <= n do
		local c = re:sub(i, i)
		if c == "\\" then
			local d = re:sub(i + 1, i + 1)
			out[#out + 1] = d:match("%w") and d or ("%" .. d)
			i = i + 2
		elseif c == "[" then
			local j = i + 1
			local set = { "[" }
			if re:sub(j, j) == "^" then
				set[#set + 1] = "^"
				j = j + 1
			end
			local first = true
			while j <= n and (first or re:sub(j, j) ~= "]") do
				local cls = re:match("^%[:(%a+):%]", j)
				if cls then
					set[#set + 1] = POSIX_CLASSES[cls] or unsupported("[:" .. cls .. ":]")
					j = j + #cls + 4
				else
					local d = re:sub(j, j)
					set[#set + 1] = d:match("[%%%]%^%-]") and d ~= "-" and ("%" .. d) or d
					j = j + 1
				end
				first = false
			end
			if j > n then
				unsupported("an unclosed '['")
			end
			set[#set + 1] = "]"
			out[#out + 1] = table.concat(set)
			i = j + 1
		elseif c == "(" or c == ")" or c == "|" or c == "{" then
			unsupported("'" .. c .. "'")
		elseif c == "+" and #out > 0 and out[#out]:sub(-1) == "+" then
			unsupported("a possessive '+'")
		elseif c == "^" and i == 1 then
			out[#out + 1] = "^"
			i = i + 1
		elseif c == "$" and i == n then
			out[#out + 1] = "$"
			i = i + 1
		elseif c == "." or c == "*" or c == "+" or c == "?" then
			out[#out + 1] = c == "." and "." or c == "*" and "*" or c == "+" and "+" or "?"
			i = i + 1
		elseif c:match("%w") or c == " " then
			out[#out + 1] = c
			i = i + 1
		else
			out[#out + 1] = "%" .. c
			i = i + 1
		end
	end
	return table.concat(out)
end

local function regex_find(subject, re, fn, icase)
	local pat = regex_to_pattern(re, fn)
	if icase then
		return subject:lower():find(pat:lower()) ~= nil
	end
	return subject:find(pat) ~= nil
end

-- ---------------------------------------------------------------- URIs

local function parse_uri(s)
	if type(s) ~= "string" then
		return nil
	end
	local scheme, rest = s:match("^(%a[%w%+%.%-]*):(.+)$")
	if not scheme then
		return nil
	end
	local u = { raw = s, scheme = scheme:lower(), scheme_str = scheme, params = {} }
	if u.scheme == "tel" then
		u.user, u.params_str = rest:match("^([^;]*);?(.*)$")
		u.host = ""
		return u.user ~= "" and u or nil
	end
	if u.scheme ~= "sip" and u.scheme ~= "sips" then
		return nil
	end
	local q = rest:find("?", 1, true)
	if q then
		u.headers = rest:sub(q + 1)
		rest = rest:sub(1, q - 1)
	end
	local at = rest:find("@", 1, true)
	local hostpart = rest
	if at then
		local userinfo = rest:sub(1, at - 1)
		hostpart = rest:sub(at + 1)
		local user, password = userinfo:match("^([^:]*):(.*)$")
		u.user, u.password = user or userinfo, password
		if u.user == "" then
			return nil
		end
	end
	local semi = hostpart:find(";", 1, true)
	if semi then
		u.params_str = hostpart:sub(semi + 1)
		hostpart = hostpart:sub(1, semi - 1)
		for p in u.params_str:gmatch("[^;]+") do
			local k, v = p:match("^([^=]+)=?(.*)$")
			u.params[k:lower()] = v
		end
	end
	local host, port
	if hostpart:sub(1, 1) == "[" then
		host, port = hostpart:match("^(%[[%x:%.]+%])(.*)$")
	else
		host, port = hostpart:match("^([%w%.%-_]+)(.*)$")
	end
	if not host then
		return nil
	end
	if port ~= "" then
		port = port:match("^:(%d+)$")
		if not port or tonumber(port) > 65535 then
			return nil
		end
	else
		port = nil
	end
	u.host, u.port = host, port
	return u
end

local function uri_proto(u)
	local t = u.params and u.params.transport
	if t and t ~= "" then
		return t:lower()
	end
	return u.scheme == "sips" and "tls" or nil
end

local function uri_port(u)
	if u.port then
		return tonumber(u.port)
	end
	return uri_proto(u) == "tls" and 5061 or 5060
end

local function build_uri(u, user, host, port)
	local s = u.scheme_str .. ":"
	if user and user ~= "" then
		s = s .. user
		if u.password then
			s = s .. ":" .. u.password
		end
		s = s .. "@"
	end
	s = s .. host
	if port and port ~= "" then
		s = s .. ":" .. port
	end
	if u.params_str and u.params_str ~= "" then
		s = s .. ";" .. u.params_str
	end
	if u.headers then
		s = s .. "?" .. u.headers
	end
	return s
end

-- From / To / Contact: [display] <uri>;params  or  uri;params
local function parse_nameaddr(v)
	if not v then
		return nil
	end
	v = trim(v)
	local display = ""
	local uri, rest
	local lt = v:find("<", 1, true)
	if lt then
		local gt = v:find(">", lt, true)
		if not gt then
			return nil
		end
		display = trim(v:sub(1, lt - 1))
		uri, rest = v:sub(lt + 1, gt - 1), v:sub(gt + 1)
	else
		uri, rest = v:match("^([^;]*)(.*)$")
	end
	uri = trim(uri)
	return {
		uri_str = uri,
		uri = parse_uri(uri),
		display = display,
		tag = rest:match(";%s*[Tt][Aa][Gg]%s*=%s*([^;%s]+)"),
	}
end

-- ---------------------------------------------------------------- myself

local function parse_listen(s)
	local proto, addr, port = s:match("^(%a+):(%[[%x:%.]+%]):(%d+)")
	if not proto then
		proto, addr, port = s:match("^(%a+):([^:%s]+):(%d+)")
	end
	if not proto then
		usage("ksr.mock: bad listen socket '" .. tostring(s) .. "' (want proto:address:port)")
	end
	proto = proto:lower()
	return { proto = proto, host = addr:lower(), port = tonumber(port), sock = proto .. ":" .. addr .. ":" .. port }
end

local function listen_ip_is(l, host)
	if l.host == "0.0.0.0" or l.host == "*" then
		return host == "127.0.0.1"
	elseif l.host == "[::]" then
		return host == "[::1]"
	end
	return l.host == host
end

-- host (lower case) is one of our listen addresses or aliases
local function host_is_ours(host)
	for _, l in ipairs(st.listens) do
		if listen_ip_is(l, host) then
			return true
		end
	end
	for _, a in ipairs(st.config.aliases) do
		if a:lower() == host then
			return true
		end
	end
	return false
end

local function is_myself_host(host, port, proto)
	for _, l in ipairs(st.listens) do
		if (proto == nil or proto == l.proto) and port == l.port then
			return host_is_ours(host:lower())
		end
	end
	return false
end

local function uri_is_myself(s)
	local u = parse_uri(s)
	if not u or (u.scheme ~= "sip" and u.scheme ~= "sips") then
		return false
	end
	return is_myself_host(u.host, uri_port(u), uri_proto(u))
end

local function ip_is_myself(ip)
	ip = ip:lower()
	if ip:find(":", 1, true) and ip:sub(1, 1) ~= "[" then
		ip = "[" .. ip .. "]"
	end
	return host_is_ours(ip)
end

-- ---------------------------------------------------------------- messages

local REASONS = {
	[100] = "Trying", [180] = "Ringing", [181] = "Call Is Being Forwarded", [182] = "Queued",
	[183] = "Session Progress", [200] = "OK", [202] = "Accepted", [301] = "Moved Permanently",
	[302] = "Moved Temporarily", [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
	[404] = "Not Found", [405] = "Method Not Allowed", [407] = "Proxy Authentication Required",
	[408] = "Request Timeout", [480] = "Temporarily Unavailable", [481] = "Call/Transaction Does Not Exist",
	[483] = "Too Many Hops", [486] = "Busy Here", [487] = "Request Terminated", [488] = "Not Acceptable Here",
	[500] = "Server Internal Error", [501] = "Not Implemented", [503] = "Service Unavailable",
	[603] = "Decline",
}

local METHOD_IDS = {
	INVITE = 1, ACK = 2, BYE = 4, CANCEL = 8, REGISTER = 16, OPTIONS = 32, SUBSCRIBE = 64,
	NOTIFY = 128, PUBLISH = 256, REFER = 512, INFO = 1024, UPDATE = 2048, PRACK = 4096,
	MESSAGE = 8192, KDMQ = 16384, GET = 32768, POST = 65536, PUT = 131072, DELETE = 262144,
}

local PROTO_IDS = { udp = 1, tcp = 2, tls = 3, sctp = 4, ws = 5, wss = 6 }
local STREAM = { tcp = true, tls = true, ws = true, wss = true }

-- User headers (map and/or list of {name, value}) merged into the defaults.
local function merge_headers(spec, defaults, trailer)
	spec = spec or {}
	local user = {}
	for _, h in ipairs(spec) do
		if type(h) ~= "table" or type(h[1]) ~= "string" then
			usage("ksr.mock: headers list entries are {\"Name\", \"value\"}")
		end
		user[#user + 1] = { name = h[1], value = h[2] }
	end
	local names = {}
	for k in pairs(spec) do
		if type(k) == "string" then
			names[#names + 1] = k
		end
	end
	table.sort(names)
	for _, k in ipairs(names) do
		local v = spec[k]
		if type(v) == "table" then
			for _, x in ipairs(v) do
				user[#user + 1] = { name = k, value = x }
			end
		else
			user[#user + 1] = { name = k, value = v }
		end
	end
	local given, out = {}, {}
	for _, h in ipairs(user) do
		given[hkey(h.name)] = true
	end
	local function emit(h)
		if h.value ~= false and h.value ~= nil then
			out[#out + 1] = { name = h.name, value = tostring(h.value), key = hkey(h.name) }
		end
	end
	local function emit_given(key)
		for _, h in ipairs(user) do
			if hkey(h.name) == key then
				emit(h)
			end
		end
	end
	for _, d in ipairs(defaults) do
		if given[hkey(d[1])] then
			emit_given(hkey(d[1]))
		else
			emit({ name = d[1], value = d[2] })
		end
	end
	local is_default = {}
	for _, d in ipairs(defaults) do
		is_default[hkey(d[1])] = true
	end
	is_default[hkey(trailer[1])] = true
	for _, h in ipairs(user) do
		if not is_default[hkey(h.name)] then
			emit(h)
		end
	end
	if given[hkey(trailer[1])] then
		emit_given(hkey(trailer[1]))
	else
		emit({ name = trailer[1], value = trailer[2] })
	end
	return out
end

local function new_message(kind, spec)
	spec = spec or {}
	st.seq = st.seq + 1
	local n = st.seq
	local proto = (spec.proto or "udp"):lower()
	local first = st.listens[1]
	for _, l in ipairs(st.listens) do
		if l.proto == proto then
			first = l
			break
		end
	end
	local m = {
		type = kind,
		body = spec.body or "",
		src_ip = spec.src_ip or "192.0.2.1",
		src_port = spec.src_port or 5060,
		proto = proto,
		rcv_ip = spec.rcv_ip or first.host,
		rcv_port = spec.rcv_port or first.port,
		time = spec.time or os.time(),
		id = n,
		avps = {},
		reply_headers = {},
		opts = {},
	}
	if not PROTO_IDS[proto] then
		usage("ksr.mock: unknown proto '" .. proto .. "'")
	end
	m.conid = spec.conid or (STREAM[proto] and n or nil)
	m.rcv_sock = proto .. ":" .. m.rcv_ip .. ":" .. m.rcv_port
	local src_host = m.src_ip:find(":", 1, true) and ("[" .. m.src_ip .. "]") or m.src_ip
	local via = string.format("SIP/2.0/%s %s:%d;branch=z9hG4bK-mock-%d", proto:upper(), src_host,
		m.src_port, n)
	local callid = string.format("mock-%d@%s", n, m.src_ip)
	if kind == "request" then
		m.method = spec.method or "INVITE"
		m.ruri = spec.ruri or "sip:bob@example.com"
		if not parse_uri(m.ruri) then
			usage("ksr.mock: not a valid R-URI: '" .. tostring(m.ruri) .. "'")
		end
		m.oruri = m.ruri
		local to = m.ruri:gsub("[;?].*$", "")
		m.headers = merge_headers(spec.headers, {
			{ "Via", via },
			{ "Max-Forwards", "70" },
			{ "From", "<sip:alice@example.com>;tag=mock-ftag-" .. n },
			{ "To", "<" .. to .. ">" },
			{ "Call-ID", callid },
			{ "CSeq", "1 " .. m.method },
		}, { "Content-Length", tostring(#m.body) })
	else
		m.status = spec.status or 200
		if not is_int(m.status) or m.status < 100 or m.status > 699 then
			usage("ksr.mock: bad reply status " .. tostring(spec.status))
		end
		m.reason = spec.reason or REASONS[m.status] or "Unknown"
		local method = spec.method or "INVITE"
		m.headers = merge_headers(spec.headers, {
			{ "Via", via },
			{ "From", "<sip:alice@example.com>;tag=mock-ftag-" .. n },
			{ "To", "<sip:bob@example.com>;tag=mock-ttag-" .. n },
			{ "Call-ID", callid },
			{ "CSeq", "1 " .. method },
		}, { "Content-Length", tostring(#m.body) })
	end
	return m
end

local function cseq()
	local v = hdr_value("CSeq")
	if not v then
		return nil
	end
	local num, method = v:match("^%s*(%d+)%s+(%S+)")
	return tonumber(num), method
end

local function method_of()
	if st.msg.type == "request" then
		return st.msg.method
	end
	local _, method = cseq()
	return method
end

local function msg_text()
	local m = st.msg
	local lines = {}
	if m.type == "request" then
		lines[1] = m.method .. " " .. m.oruri .. " SIP/2.0"
	else
		lines[1] = "SIP/2.0 " .. m.status .. " " .. m.reason
	end
	for _, h in ipairs(m.headers) do
		lines[#lines + 1] = h.name .. ": " .. h.value
	end
	return table.concat(lines, "\r\n") .. "\r\n\r\n" .. m.body
end

-- Header list of the message as it would leave now (edits applied; our own
-- Via is not shown). Max-Forwards: the value the request leaves with.
local function outgoing_headers(max_forwards)
	local top, bottom, before, after = {}, {}, {}, {}
	local function entry(h)
		return { name = h.name, value = h.value, text = h.text }
	end
	for _, h in ipairs(M.headers_added) do
		local ref = h.ref and hdrs(h.ref)[1]
		if h.op == "insert_before" and ref then
			before[ref] = before[ref] or {}
			table.insert(before[ref], entry(h))
		elseif h.op == "append_after" and ref then
			after[ref] = after[ref] or {}
			table.insert(after[ref], entry(h))
		elseif h.op == "insert" or h.op == "insert_before" then
			top[#top + 1] = entry(h)
		else
			bottom[#bottom + 1] = entry(h)
		end
	end
	local out, mf_done = {}, false
	local function add_all(list)
		for _, e in ipairs(list or {}) do
			if e.name and hkey(e.name) == "max-forwards" then
				if mf_done then
					e = nil
				else
					mf_done = true
					e.value = tostring(max_forwards or e.value)
				end
			end
			out[#out + 1] = e
		end
	end
	add_all(top)
	for _, h in ipairs(st.msg.headers) do
		add_all(before[h])
		if not h.removed then
			local value = h.value
			if h.key == "max-forwards" and max_forwards and not mf_done then
				value, mf_done = tostring(max_forwards), true
			end
			out[#out + 1] = { name = h.name, value = value }
		end
		add_all(after[h])
	end
	add_all(bottom)
	if max_forwards and not mf_done then
		out[#out + 1] = { name = "Max-Forwards", value = tostring(max_forwards) }
	end
	return out
end

-- ---------------------------------------------------------------- flags

local function flag_set(set, bit, op)
	if not is_int(bit) or bit < 0 or bit > 31 then
		return -1
	end
	if op > 0 then
		set[bit] = true
	elseif op < 0 then
		set[bit] = nil
	else
		return set[bit] and 1 or -1
	end
	return 1
end

local function flags_mask(set)
	local v = 0
	for bit = 0, 31 do
		if set[bit] then
			v = v + 2 ^ bit
		end
	end
	return v
end

local function flags_from_mask(set, v)
	for bit = 0, 31 do
		set[bit] = nil
	end
	v = math.floor(v) % 2 ^ 32
	for bit = 0, 31 do
		if v % 2 == 1 then
			set[bit] = true
		end
		v = math.floor(v / 2)
	end
end

-- ---------------------------------------------------------------- pseudo-variables

local function ruri_part(part)
	if st.msg.type ~= "request" then
		return nil
	end
	local u = parse_uri(st.msg.ruri)
	return u and u[part]
end

local function na_part(hname, part)
	local na = parse_nameaddr(hdr_value(hname))
	if not na then
		return nil
	end
	if part == "uri" then
		return na.uri_str
	elseif part == "display" then
		return na.display ~= "" and na.display or nil
	elseif part == "tag" then
		return na.tag
	end
	return na.uri and na.uri[part]
end

local function du_uri()
	return st.msg.du and parse_uri(st.msg.du)
end

local function auth_field(field)
	local v = hdr_value("Authorization") or hdr_value("Proxy-Authorization")
	if not v then
		return nil
	end
	return v:match(field .. '%s*=%s*"([^"]*)"') or v:match(field .. "%s*=%s*([^,%s]+)")
end

local function src_uri(sock_form)
	local m = st.msg
	local ip = m.src_ip:find(":", 1, true) and ("[" .. m.src_ip .. "]") or m.src_ip
	if sock_form then
		return string.format("%s:%s:%d", m.proto, ip, m.src_port)
	end
	return string.format("sip:%s:%d;transport=%s", ip, m.src_port, m.proto)
end

local PV = {
	ru = function() return st.msg.type == "request" and st.msg.ruri or nil end,
	rU = function() return ruri_part("user") end,
	rd = function() return ruri_part("host") end,
	rp = function() return ruri_part("port") end,
	rz = function() return ruri_part("scheme_str") end,
	ou = function() return st.msg.type == "request" and st.msg.oruri or nil end,
	oU = function()
		local u = st.msg.type == "request" and parse_uri(st.msg.oruri)
		return u and u.user or nil
	end,
	du = function() return st.msg.du end,
	dd = function()
		local u = du_uri()
		return u and u.host
	end,
	dp = function()
		local u = du_uri()
		return u and uri_port(u)
	end,
	dP = function()
		local u = du_uri()
		return u and (uri_proto(u) or "udp")
	end,
	fu = function() return na_part("From", "uri") end,
	fU = function() return na_part("From", "user") end,
	fd = function() return na_part("From", "host") end,
	fn = function() return na_part("From", "display") end,
	ft = function() return na_part("From", "tag") end,
	tu = function() return na_part("To", "uri") end,
	tU = function() return na_part("To", "user") end,
	td = function() return na_part("To", "host") end,
	tn = function() return na_part("To", "display") end,
	tt = function() return na_part("To", "tag") end,
	ci = function() return hdr_value("Call-ID") end,
	cs = function() return (cseq()) end,
	csb = function() return hdr_value("CSeq") end,
	rm = function() return method_of() end,
	rmid = function() return st.msg.type == "request" and (METHOD_IDS[st.msg.method] or 0) or 0 end,
	rs = function() return st.msg.type == "reply" and st.msg.status or nil end,
	rr = function() return st.msg.type == "reply" and st.msg.reason or nil end,
	ua = function() return hdr_value("User-Agent") end,
	ct = function() return hdr_value("Contact") end,
	ctu = function()
		local v = hdr_value("Contact")
		local na = v and v ~= "*" and parse_nameaddr(v:match("^[^,]*"))
		return na and na.uri_str or nil
	end,
	si = function() return st.msg.src_ip end,
	sp = function() return st.msg.src_port end,
	su = function() return src_uri(false) end,
	sas = function() return src_uri(true) end,
	Ri = function() return st.msg.rcv_ip end,
	Rp = function() return st.msg.rcv_port end,
	Ru = function() return st.msg.rcv_sock end,
	proto = function() return st.msg.proto end,
	prid = function() return PROTO_IDS[st.msg.proto] end,
	ml = function() return #msg_text() end,
	mt = function() return st.msg.type == "request" and 1 or 2 end,
	mb = function() return msg_text() end,
	rb = function() return st.msg.body ~= "" and st.msg.body or nil end,
	bs = function() return #st.msg.body end,
	cl = function()
		local v = hdr_value("Content-Length")
		return v and tonumber(v:match("%d+"))
	end,
	cT = function() return hdr_value("Content-Type") end,
	Ts = function() return st.msg.time end,
	TS = function() return os.time() end,
	mi = function() return st.msg.id end,
	conid = function() return st.msg.conid end,
	mf = function() return flags_mask(M.flags) end,
	bf = function() return flags_mask(M.bflags) end,
	au = function() return auth_field("username") end,
	ar = function() return auth_field("realm") end,
	fs = function() return st.msg.send_sock end,
}
PV.pr = PV.proto

-- "$name" or "$class(arg)[idx]" -> spec; nil if ksrd does not know it.
local function pv_spec(name)
	if type(name) ~= "string" then
		return nil
	end
	local simple = name:match("^%$([%w_]+)$")
	if simple then
		return PV[simple] and { type = simple } or nil
	end
	local cls, arg, rest = name:match("^%$([%w_]+)%(([^%)]+)%)(.*)$")
	if not cls or not (cls == "hdr" or cls == "hdrc" or cls == "var" or cls == "shv" or cls == "avp") then
		return nil
	end
	local idx
	if rest ~= "" then
		idx = tonumber(rest:match("^%[(%-?%d+)%]$"))
		if not idx then
			return nil
		end
	end
	return { type = cls, arg = arg, idx = idx }
end

local function pv_get(name)
	local s = pv_spec(name)
	if not s then
		log("err", string.format("unknown pseudo-variable '%s'", tostring(name)))
		return nil, false
	end
	if s.type == "var" then
		return st.vars[s.arg], true
	elseif s.type == "shv" then
		return st.shv[s.arg], true
	elseif s.type == "avp" then
		return st.msg.avps[s.arg], true
	elseif s.type == "hdr" then
		return hdr_value(s.arg, s.idx), true
	elseif s.type == "hdrc" then
		return #hdrs(s.arg), true
	end
	return PV[s.type](), true
end

local function set_ruri(v)
	if not parse_uri(v) then
		return -1
	end
	st.msg.ruri = v
	return 1
end

local function set_ruri_part(part, v)
	local u = parse_uri(st.msg.ruri)
	if not u or u.scheme == "tel" then
		return -1
	end
	local user, host, port = u.user, u.host, u.port
	if part == "rU" then
		user = v
	elseif part == "rd" then
		host = v
	else
		port = v
	end
	if not host or host == "" then
		return -1
	end
	return set_ruri(build_uri(u, user, host, port))
end

local function set_du(v)
	if v == nil then
		st.msg.du = nil
		return 1
	end
	if not parse_uri(v) then
		return -1
	end
	st.msg.du = v
	return 1
end

-- v == nil: unset. Returns 1 or -1.
local function pv_set(name, v)
	local s = pv_spec(name)
	if not s then
		log("err", string.format("unknown pseudo-variable '%s'", tostring(name)))
		return -1
	end
	local t, rc = s.type, -1
	local sv = v ~= nil and tostring(v) or nil
	if t == "var" and not s.idx then
		st.vars[s.arg], rc = v, 1
	elseif t == "shv" and not s.idx then
		st.shv[s.arg], rc = v, 1
	elseif t == "avp" and not s.idx then
		st.msg.avps[s.arg], rc = v, 1
	elseif t == "ru" then
		rc = (st.msg.type == "request" and sv) and set_ruri(sv) or -1
	elseif t == "rU" or t == "rd" or t == "rp" then
		rc = st.msg.type == "request" and set_ruri_part(t, sv) or -1
	elseif t == "du" then
		rc = set_du(sv)
	elseif t == "mf" or t == "bf" then
		flags_from_mask(t == "mf" and M.flags or M.bflags, type(v) == "number" and v or 0)
		rc = 1
	elseif t == "fs" then
		if v == nil then
			st.msg.send_sock, rc = nil, 1
		else
			for _, l in ipairs(st.listens) do
				if l.sock:lower() == sv:lower() then
					st.msg.send_sock, rc = l.sock, 1
				end
			end
		end
	end
	if rc < 0 then
		log("err", string.format("cannot assign pseudo-variable '%s' (read-only, bad value or no message)", name))
	end
	return rc
end

-- ---------------------------------------------------------------- replies, forwarding

local function send_reply(fn, code, reason)
	local m = st.msg
	if m.type ~= "request" or not is_int(code) or code < 100 or code > 699 then
		return -1
	end
	if m.method == "ACK" then
		return -1
	end
	M.replies[#M.replies + 1] = {
		code = code,
		reason = reason,
		headers = copy_list(m.reply_headers),
		fn = fn,
	}
	m.replied = code
	return 1
end

-- Max-Forwards: -1 absent, -2 malformed, else 0..255; a value set by
-- KSR.maxfwd.process_maxfwd() is read back, as in ksrd.
local function maxfwd_value(received_only)
	if st.msg.maxfwd and not received_only then
		return st.msg.maxfwd
	end
	local v = hdr_value("Max-Forwards")
	if not v then
		return -1
	end
	local n = tonumber(v:match("^%s*(%d+)%s*$"))
	return (n and n <= 255) and n or -2
end

-- Max-Forwards of the outgoing request; nil when it must not leave.
local function next_max_forwards()
	if st.msg.maxfwd then
		return st.msg.maxfwd
	end
	local n = maxfwd_value(true)
	if n == -1 then
		return 70
	end
	return n > 0 and n - 1 or nil
end

local function send_request(fn, list, uri)
	local m = st.msg
	if m.type ~= "request" then
		return -1
	end
	uri = uri or m.du or m.ruri
	if not parse_uri(uri) then
		log("warn", string.format("cannot forward to %s: not a valid URI", uri))
		return -1
	end
	local mf = next_max_forwards()
	if not mf then
		log("info", "not forwarding: Max-Forwards exhausted or malformed")
		return -1
	end
	list[#list + 1] = {
		fn = fn,
		dst = uri,
		ruri = m.ruri,
		du = m.du,
		max_forwards = mf,
		headers_added = copy_list(M.headers_added),
		headers_removed = copy_list(M.headers_removed),
		headers = outgoing_headers(mf),
	}
	return 1
end

-- ---------------------------------------------------------------- built-in functions

local B = {} -- "mod.name" / "name" -> implementation over checked arguments

local LOG_LEVELS = {
	crit = "crit", critical = "crit", err = "err", error = "err", warn = "warn", warning = "warn",
	notice = "notice", info = "info", dbg = "dbg", debug = "dbg",
}

local function script_log(level, text)
	log(level, (text:gsub("\n$", "")), "script")
end

for _, level in ipairs({ "dbg", "info", "notice", "warn", "err", "crit" }) do
	B[level] = function(text) script_log(level, text) end
end
B.log = function(level, text) script_log(LOG_LEVELS[level:lower()] or "err", text) end

-- methods
local METHOD_LETTERS = {
	I = "INVITE", A = "ACK", B = "BYE", C = "CANCEL", M = "MESSAGE", R = "REGISTER", E = "PUBLISH",
	P = "PRACK", S = "SUBSCRIBE", N = "NOTIFY", O = "OPTIONS", F = "REFER", G = "GET", U = "UPDATE",
	K = "KDMQ", D = "DELETE", T = "POST", V = "PUT",
}
B.is_method = function(name) return method_of() == name end
B.is_method_in = function(letters)
	local m = method_of()
	for c in letters:gmatch(".") do
		if METHOD_LETTERS[c] and METHOD_LETTERS[c] == m then
			return true
		end
	end
	return false
end
for id in pairs(METHOD_IDS) do
	B["is_" .. id] = function() return method_of() == id end
end

-- transport
local function proto_in(...)
	for _, p in ipairs({ ... }) do
		if st.msg.proto == p then
			return true
		end
	end
	return false
end
B.is_UDP = function() return proto_in("udp") end
B.is_TCP = function() return proto_in("tcp") end
B.is_TLS = function() return proto_in("tls") end
B.is_SCTP = function() return proto_in("sctp") end
B.is_WS = function() return proto_in("ws") end
B.is_WSS = function() return proto_in("wss") end
B.is_WSX = function() return proto_in("ws", "wss") end
B.is_TCPX = function() return proto_in("tcp", "tls", "ws", "wss") end
B.is_proto = function(letters)
	local map = { u = "udp", t = "tcp", e = "tls", s = "sctp", v = "ws", w = "wss" }
	for c in letters:lower():gmatch(".") do
		if map[c] == st.msg.proto then
			return true
		end
	end
	return false
end
B.is_IPv4 = function() return st.msg.src_ip:find(":", 1, true) == nil end
B.is_IPv6 = function() return st.msg.src_ip:find(":", 1, true) ~= nil end
B.is_src_port = function(port) return st.msg.src_port == port end
B.is_dst_port = function(port) return st.msg.rcv_port == port end

-- myself
B.is_myself = function(uri) return uri_is_myself(uri) end
B.is_myself_ruri = function() return st.msg.type == "request" and uri_is_myself(st.msg.ruri) end
B.is_myself_furi = function() return uri_is_myself(na_part("From", "uri")) end
B.is_myself_turi = function() return uri_is_myself(na_part("To", "uri")) end
B.is_myself_duri = function() return uri_is_myself(st.msg.du) end
B.is_myself_nhuri = function() return uri_is_myself(st.msg.du or st.msg.ruri) end
B.is_myself_srcip = function() return ip_is_myself(st.msg.src_ip) end

-- flags
B.setflag = function(f) return flag_set(M.flags, f, 1) end
B.resetflag = function(f) return flag_set(M.flags, f, -1) end
B.isflagset = function(f) return flag_set(M.flags, f, 0) end
B.setbflag = function(f) return flag_set(M.bflags, f, 1) end
B.resetbflag = function(f) return flag_set(M.bflags, f, -1) end
B.isbflagset = function(f) return flag_set(M.bflags, f, 0) end
B.setsflag = function(f) return flag_set(st.sflags, f, 1) end
B.resetsflag = function(f) return flag_set(st.sflags, f, -1) end
B.issflagset = function(f) return flag_set(st.sflags, f, 0) end

-- R-URI, $du, forwarding
local function bad_uri(fn, uri)
	log("err", string.format("KSR.%s: not a valid URI: '%s'", fn, uri))
	return -1
end
B.seturi = function(uri) return set_ruri(uri) > 0 and 1 or bad_uri("seturi", uri) end
B.setuser = function(user) return set_ruri_part("rU", user) end
B.sethost = function(host)
	if host == "" then
		return -1
	end
	return set_ruri_part("rd", host)
end
B.setdsturi = function(uri) return set_du(uri) > 0 and 1 or bad_uri("setdsturi", uri) end
B.resetdsturi = function()
	st.msg.du = nil
	return 1
end
B.isdsturiset = function() return st.msg.du ~= nil end
for _, opt in ipairs({ "force_rport", "add_local_rport", "set_reply_close", "set_reply_no_connect",
	"set_forward_close", "set_forward_no_connect" }) do
	B[opt] = function()
		st.msg.opts[opt] = true
		return 1
	end
end
local function set_drop()
	st.msg.dropped = true
	M.dropped = true
end
B.set_drop = set_drop
B.drop = set_drop
B.forward = function() return send_request("forward", M.forwards) end
B.forward_uri = function(uri)
	if uri == "" then
		return -1
	end
	return send_request("forward_uri", M.forwards, uri)
end

-- KSR.x
B["x.exit"] = function() error(EXIT, 0) end
B["x.drop"] = function()
	set_drop()
	error(EXIT, 0)
end
B["x.probe"] = function() end

-- KSR.sl
B["sl.sl_send_reply"] = function(code, reason) return send_reply("sl.sl_send_reply", code, reason) end
B["sl.send_reply"] = function(code, reason) return send_reply("sl.send_reply", code, reason) end
B["sl.send_reply_mode"] = function(code, reason) return send_reply("sl.send_reply_mode", code, reason) end
B["sl.sl_reply_error"] = function() return send_reply("sl.sl_reply_error", 500, "Server Internal Error") end
B["sl.send_reply_error"] = function() return send_reply("sl.send_reply_error", 500, "Server Internal Error") end

-- KSR.tm / KSR.tmx: what can be known without transactions
B["tm.t_relay"] = function() return send_request("tm.t_relay", M.relays) end
B["tm.t_relay_to_flags"] = function() return send_request("tm.t_relay_to_flags", M.relays) end
local function uri_with_transport(uri, proto)
	local u = parse_uri(uri)
	if not u or u.scheme == "tel" then
		return uri
	end
	local params = {}
	for p in (u.params_str or ""):gmatch("[^;]+") do
		if not p:lower():match("^transport=") then
			params[#params + 1] = p
		end
	end
	params[#params + 1] = "transport=" .. proto:lower()
	u.params_str = table.concat(params, ";")
	return build_uri(u, u.user, u.host, u.port)
end
B["tm.t_relay_to_proto"] = function(proto)
	local m = st.msg
	return send_request("tm.t_relay_to_proto", M.relays, uri_with_transport(m.du or m.ruri or "", proto))
end
B["tm.t_relay_to_proto_addr"] = function(proto, host, port)
	local hostport = port ~= 0 and (host .. ":" .. port) or host
	return send_request("tm.t_relay_to_proto_addr", M.relays, "sip:" .. hostport .. ";transport=" .. proto:lower())
end
B["tm.t_relay_to_proxy"] = function(hostport)
	local proto, host = hostport:match("^(%a+):(.+)$")
	local dst = proto and ("sip:" .. host .. ";transport=" .. proto:lower()) or ("sip:" .. hostport)
	return send_request("tm.t_relay_to_proxy", M.relays, dst)
end
B["tm.t_reply"] = function(code, reason) return send_reply("tm.t_reply", code, reason) end
B["tm.t_send_reply"] = function(code, reason) return send_reply("tm.t_send_reply", code, reason) end
-- t_on_*: the Lua function named for the transaction, in mock.tm ("" clears)
for _, kind in ipairs({ "failure", "branch", "reply", "branch_failure" }) do
	B["tm.t_on_" .. kind] = function(name)
		M.tm[kind] = name ~= "" and name or nil
		return 1
	end
end
B["tm.t_is_set"] = function(what)
	local kind = ({ failure_route = "failure", branch_route = "branch", onreply_route = "reply" })[what]
	return kind and M.tm[kind] and 1 or -1
end
B["tm.t_get_status_code"] = function() return st.msg.type == "reply" and st.msg.status or -1 end
local function route_is(...)
	local route = st.route or (st.msg.type == "request" and "request" or "reply")
	for _, r in ipairs({ ... }) do
		if r == route then
			return 1
		end
	end
	return -1
end
B["tmx.t_is_request_route"] = function() return route_is("request") end
B["tmx.t_is_reply_route"] = function() return route_is("reply") end
B["tmx.t_is_failure_route"] = function() return route_is("failure", "branch_failure") end
B["tmx.t_is_branch_route"] = function() return route_is("branch") end

-- KSR.pv
B["pv.get"] = function(name) return (pv_get(name)) end
B["pv.gete"] = B["pv.get"]
B["pv.getw"] = B["pv.get"]
B["pv.geti"] = function(name)
	local v = pv_get(name)
	return tonumber(v) and math.floor(tonumber(v)) or 0
end
B["pv.getvn"] = function(name, dflt)
	local v = pv_get(name)
	if v == nil then
		return dflt
	end
	return v
end
B["pv.getvs"] = B["pv.getvn"]
B["pv.sets"] = function(name, v) return pv_set(name, v) end
B["pv.seti"] = function(name, v) return pv_set(name, v) end
B["pv.setl"] = B["pv.seti"]
B["pv.unset"] = function(name) return pv_set(name, nil) end
B["pv.is_null"] = function(name)
	local v = pv_get(name)
	return v == nil
end

-- KSR.hdr
B["hdr.append"] = function(text) return add_headers(text, "append") end
B["hdr.insert"] = function(text) return add_headers(text, "insert") end
B["hdr.append_after"] = function(text, name)
	if not hname_ok("append_after", name) then
		return -1
	end
	return add_headers(text, "append_after", name)
end
B["hdr.insert_before"] = function(text, name)
	if not hname_ok("insert_before", name) then
		return -1
	end
	return add_headers(text, "insert_before", name)
end
-- 1 whether or not such a header was there, as in Kamailio and ksrd
B["hdr.remove"] = function(name)
	if not hname_ok("remove", name) then
		return -1
	end
	remove_named(name)
	return 1
end
B["hdr.rmappend"] = function(name, text)
	if not hname_ok("rmappend", name) then
		return -1
	end
	remove_named(name)
	return add_headers(text, "append")
end
B["hdr.rminsert"] = function(name, text)
	if not hname_ok("rminsert", name) then
		return -1
	end
	remove_named(name)
	return add_headers(text, "insert")
end
B["hdr.is_present"] = function(name)
	if not hname_ok("is_present", name) then
		return -1
	end
	return #hdrs(name) > 0 and 1 or -1
end
B["hdr.append_to_reply"] = function(text)
	for _, h in ipairs(parse_header_text(text)) do
		st.msg.reply_headers[#st.msg.reply_headers + 1] = h
	end
	return 1
end
for _, v in ipairs({ "get", "gete", "getw" }) do
	B["hdr." .. v] = function(name) return hname_ok(v, name) and hdr_value(name) or nil end
	B["hdr." .. v .. "_idx"] = function(name, idx) return hname_ok(v .. "_idx", name) and hdr_value(name, idx) or nil end
end
local MATCH_OPS = {
	eq = function(body, val) return body:lower() == val:lower() end,
	ne = function(body, val) return body:lower() ~= val:lower() end,
	sw = function(body, val) return body:sub(1, #val):lower() == val:lower() end,
	["in"] = function(body, val) return body:lower():find(val:lower(), 1, true) ~= nil end,
}
B["hdr.match_content"] = function(name, op, val, which)
	local match = MATCH_OPS[op]
	local w = which:sub(1, 1)
	if not hname_ok("match_content", name) or not match or not (w == "f" or w == "l" or w == "a" or w == "o") then
		return false
	end
	local list = hdrs(name)
	if #list == 0 then
		return false
	elseif w == "f" then
		return match(list[1].value, val)
	elseif w == "l" then
		return match(list[#list].value, val)
	end
	local matched = false
	for _, h in ipairs(list) do
		if match(h.value, val) then
			matched = true
		elseif w == "a" then
			return false
		end
	end
	return matched
end

-- KSR.textops (regexes: POSIX extended, case-insensitive, as in ksrd)
local function cmp_result(a, b)
	if a == b then
		return 1
	end
	return a > b and -1 or -2
end
local function re_search(text, re, fn)
	if re == "" then
		return 1
	end
	return regex_find(text, re, fn, true) and 1 or -1
end
B["textops.search"] = function(re) return re_search(msg_text(), re, "KSR.textops.search") end
B["textops.search_body"] = function(re) return re_search(st.msg.body, re, "KSR.textops.search_body") end
B["textops.search_str"] = function(s, re) return re_search(s, re, "KSR.textops.search_str") end
B["textops.search_hf"] = function(name, re, flags)
	local list = hdrs(name)
	local w = flags:sub(1, 1)
	if w == "f" then
		list = { list[1] }
	elseif w == "l" then
		list = { list[#list] }
	end
	for _, h in ipairs(list) do
		if re_search(h.value, re, "KSR.textops.search_hf") > 0 then
			return 1
		end
	end
	return -1
end
B["textops.is_present_hf"] = function(name) return #hdrs(name) > 0 and 1 or -1 end
B["textops.is_present_hf_re"] = function(re)
	for _, h in ipairs(st.msg.headers) do
		if regex_find(h.name, re, "KSR.textops.is_present_hf_re", true) then
			return 1
		end
	end
	return -1
end
B["textops.remove_hf"] = function(name)
	local n = remove_named(name)
	return n > 0 and n or -1
end
B["textops.remove_hf_re"] = function(re)
	local n = remove_where(function(h) return regex_find(h.name, re, "KSR.textops.remove_hf_re", true) end)
	return n > 0 and n or -1
end
B["textops.remove_hf_exp"] = function(re, skip)
	local n = remove_where(function(h)
		return regex_find(h.name, re, "KSR.textops.remove_hf_exp", true)
			and not regex_find(h.name, skip, "KSR.textops.remove_hf_exp", true)
	end)
	return n > 0 and n or -1
end
B["textops.remove_hf_idx"] = function(name, idx)
	local list = hdrs(name)
	local h = idx >= 0 and list[idx + 1] or list[#list + idx + 1]
	if not h or h.removed then
		return -1
	end
	return remove_where(function(x) return x == h end)
end
B["textops.has_body"] = function() return (tonumber(PV.cl()) or 0) > 0 and 1 or -1 end
B["textops.has_body_type"] = function(ctype)
	if (tonumber(PV.cl()) or 0) <= 0 then
		return -1
	end
	local v = hdr_value("Content-Type") or "application/sdp"
	local media = trim(v:match("^[^;]*")):lower()
	return media == trim(ctype):lower() and 1 or -1
end
B["textops.is_privacy"] = function(value)
	for _, h in ipairs(hdrs("Privacy")) do
		for item in h.value:gmatch("[^;,%s]+") do
			if item:lower() == trim(value):lower() then
				return 1
			end
		end
	end
	return -1
end
B["textops.cmp_str"] = function(a, b) return cmp_result(a, b) end
B["textops.cmp_istr"] = function(a, b) return cmp_result(a:lower(), b:lower()) end
B["textops.starts_with"] = function(s, p)
	if #s < #p then
		return -1
	end
	return cmp_result(s:sub(1, #p), p)
end
B["textops.ends_with"] = function(s, p)
	if #s < #p then
		return -1
	end
	return cmp_result(p == "" and "" or s:sub(-#p), p)
end
B["textops.str_find"] = function(s, needle)
	return needle ~= "" and s:find(needle, 1, true) or -1
end
B["textops.str_ifind"] = function(s, needle)
	return needle ~= "" and s:lower():find(needle:lower(), 1, true) or -1
end
B["textops.in_list"] = function(subject, list, sep)
	if subject == "" or list == "" or sep == "" then
		return -1
	end
	local c = sep:sub(1, 1)
	for item in (list .. c):gmatch("([^" .. c:gsub("%p", "%%%0") .. "]*)" .. c:gsub("%p", "%%%0")) do
		if trim(item) == subject then
			return 1
		end
	end
	return -1
end

-- KSR.siputils
B["siputils.has_totag"] = function() return na_part("To", "tag") and 1 or -1 end
B["siputils.is_request"] = function() return st.msg.type == "request" and 1 or -1 end
B["siputils.is_reply"] = function() return st.msg.type == "reply" and 1 or -1 end
B["siputils.is_uri"] = function(s)
	local scheme = s:match("^(%a+):.")
	scheme = scheme and scheme:lower()
	return (parse_uri(s) or scheme == "tels" or scheme == "urn") and 1 or -1
end
B["siputils.is_numeric"] = function(s) return s:match("^%d+$") and 1 or -2 end
B["siputils.is_alphanum"] = function(s)
	if s == "" then
		return -2
	end
	return s:match("^%w+$") and 1 or -3
end
B["siputils.is_alphanumex"] = function(s, extra)
	if s == "" then
		return -2
	end
	for c in s:gmatch(".") do
		if not c:match("%w") and not extra:find(c, 1, true) then
			return -3
		end
	end
	return 1
end
B["siputils.is_tel_number"] = function(s)
	return (s:match("^%+[1-9]%d*$") or s:match("^%d+$")) and 1 or -2
end
B["siputils.is_first_hop"] = function()
	if st.msg.type == "request" then
		return #hdrs("Via") == 1 and 1 or -1
	end
	return -1
end
local function ruri_params()
	local u = st.msg.type == "request" and parse_uri(st.msg.ruri)
	return u and u.params or {}
end
B["siputils.uri_param"] = function(name) return ruri_params()[name:lower()] == "" and 1 or -1 end
B["siputils.uri_param_any"] = function(name) return ruri_params()[name:lower()] ~= nil and 1 or -1 end
B["siputils.uri_param_value"] = function(name, value) return ruri_params()[name:lower()] == value and 1 or -1 end
B["siputils.add_uri_param"] = function(param)
	local u = st.msg.type == "request" and parse_uri(st.msg.ruri)
	if not u or param == "" then
		return -1
	end
	u.params_str = (u.params_str and u.params_str ~= "") and (u.params_str .. ";" .. param) or param
	return set_ruri(build_uri(u, u.user, u.host, u.port))
end
B["siputils.uri_param_rm"] = function(name)
	local u = st.msg.type == "request" and parse_uri(st.msg.ruri)
	if not u or not u.params_str then
		return -1
	end
	local keep = {}
	for p in u.params_str:gmatch("[^;]+") do
		if p:match("^[^=]+"):lower() ~= name:lower() then
			keep[#keep + 1] = p
		end
	end
	u.params_str = table.concat(keep, ";")
	return set_ruri(build_uri(u, u.user, u.host, u.port))
end
local function aor_of(s)
	local u = parse_uri(s)
	return u and table.concat({ u.scheme, u.user or "", u.host:lower(), tostring(uri_port(u)) }, "|")
end
B["siputils.cmp_aor"] = function(a, b)
	local x, y = aor_of(a), aor_of(b)
	if not x or not y then
		return -2
	end
	return x == y and 1 or -1
end
B["siputils.cmp_uri"] = function(a, b)
	local x, y = aor_of(a), aor_of(b)
	if not x or not y then
		return -2
	end
	local pa, pb = parse_uri(a).params, parse_uri(b).params
	for _, k in ipairs({ "transport", "user", "ttl", "method", "maddr" }) do
		if pa[k] ~= pb[k] then
			return -1
		end
	end
	return x == y and 1 or -1
end
B["siputils.cmp_hdr_name"] = function(a, b)
	local x, y = hkey(a), hkey(b)
	if x == y then
		return 1
	end
	return x < y and -1 or -2
end
B["siputils.is_gruu"] = function()
	local gr = ruri_params().gr
	if gr == nil then
		return -1
	end
	return gr == "" and 2 or 1
end
B["siputils.options_reply"] = function()
	if st.msg.type ~= "request" or st.msg.method ~= "OPTIONS" then
		log("err", "KSR.siputils.options_reply: called for a non-OPTIONS request")
		return -1
	end
	if ruri_part("user") then
		log("err", "KSR.siputils.options_reply: the R-URI has a user part")
		return -1
	end
	return send_reply("siputils.options_reply", 200, "OK")
end

-- KSR.maxfwd (Kamailio's codes: 2 added, 1 decremented, -1 zero, -2 bad header)
local MAXFWD_LIMIT = 70
local function maxfwd_limit_ok(fn, limit)
	if limit >= 0 and limit <= 255 then
		return true
	end
	log("err", string.format("KSR.maxfwd.%s: invalid limit %d (0..255)", fn, limit))
	return false
end
B["maxfwd.process_maxfwd"] = function(limit)
	if not maxfwd_limit_ok("process_maxfwd", limit) then
		return -1
	end
	local n = maxfwd_value()
	if n == -1 then
		st.msg.maxfwd = limit
		add_headers("Max-Forwards: " .. limit .. "\r\n", "insert")
		return 2
	elseif n < 0 then
		return -2
	elseif n == 0 then
		return -1
	end
	st.msg.maxfwd = math.min(n - 1, MAXFWD_LIMIT)
	return 1
end
B["maxfwd.is_maxfwd_lt"] = function(limit)
	if not maxfwd_limit_ok("is_maxfwd_lt", limit) then
		return -1
	end
	local n = maxfwd_value()
	if n < 0 then
		return n - 1
	end
	return n < limit and 1 or -1
end

-- KSR.corex
B["corex.has_ruri_user"] = function() return ruri_part("user") and 1 or -1 end
B["corex.has_user_agent"] = function() return hdr_value("User-Agent") and 1 or -1 end

-- KSR.kx getters: get_X; gete_X / getw_X share them (null mode from the table)
local KX = {
	ruri = PV.ru, ruser = PV.rU, rhost = PV.rd, ouri = PV.ou,
	furi = PV.fu, fuser = PV.fU, fhost = PV.fd,
	turi = PV.tu, tuser = PV.tU, thost = PV.td,
	duri = PV.du, cturi = PV.ctu,
	nhuri = function() return st.msg.du or (st.msg.type == "request" and st.msg.ruri or nil) end,
	srcuri = function() return src_uri(false) end,
	srcaddr_sock = function() return src_uri(true) end,
	ua = PV.ua, srcip = PV.si, srcport = PV.sp,
	rcvip = PV.Ri, rcvport = PV.Rp, rcvaddr_sock = PV.Ru, rcvadvip = PV.Ri, rcvadvport = PV.Rp,
	proto = PV.proto, protoid = PV.prid,
	au = PV.au, method = PV.rm,
	body = PV.rb, bodylen = PV.bs,
	timestamp = function() return os.time() end,
	callid = function() return hdr_value("Call-ID") or "" end,
	conid = function() return st.msg.conid or -1 end,
	send_sock_port = function()
		local port = st.msg.send_sock and st.msg.send_sock:match(":(%d+)$")
		return tonumber(port) or 0
	end,
	msgbuf = PV.mb, msglen = PV.ml,
	msgtype = PV.mt,
	status = function() return st.msg.type == "reply" and st.msg.status or -1 end,
	send_sock = PV.fs,
}
for suffix, get in pairs(KX) do
	for _, prefix in ipairs({ "get_", "gete_", "getw_" }) do
		B["kx." .. prefix .. suffix] = get
	end
end
B["kx.gets_status"] = function() return st.msg.type == "reply" and tostring(st.msg.status) or nil end
-- ksrd has no #!define preprocessor
B["kx.get_def"] = function() return "" end
B["kx.get_defn"] = function() return 0 end
B["kx.ifdef"] = function() return false end
B["kx.ifndef"] = function() return true end
B["kx.get_env"] = function(name) return os.getenv(name) or "" end
B["kx.get_envn"] = function(name) return tonumber(os.getenv(name)) or 0 end

-- ---------------------------------------------------------------- the KSR table

local FAILURE = { int = -1, bool = false }
local NULLS = { ["nil"] = nil, empty = "", nullstr = "<null>", zero = 0 }

-- A value from an implementation or a stub, as ksrd pushes it for that type.
local function convert(full, def, v, from_stub)
	local ret = def.ret
	if ret == "none" then
		return
	elseif ret == "int" then
		if type(v) == "boolean" then
			return v and 1 or -1
		elseif is_int(v) then
			return v
		end
	elseif ret == "bool" then
		if type(v) == "boolean" then
			return v
		elseif type(v) == "number" then
			return v > 0
		end
	else -- xval
		if v == nil then
			return NULLS[def.null]
		elseif type(v) == "string" or type(v) == "number" or type(v) == "table" then
			return v
		end
	end
	local what = from_stub and "the stub of " or "the mock of "
	fatal(string.format("%s%s returned %s (%s); the function returns %s", what, full, tostring(v), type(v), ret), 3)
end

local function check_args(full, def, n, ...)
	local params = def.params
	if n ~= #params then
		local want = #params == 0 and "no argument" or (#params .. " argument(s) (" .. table.concat(params, ", ") .. ")")
		fatal(string.format("%s: expected %s, got %d", full, want, n), 3)
	end
	local args = { ... }
	for i, p in ipairs(params) do
		local v = args[i]
		if p == "int" then
			if not is_int(v) then
				fatal(string.format("%s: argument %d must be an integer (int), got %s%s", full, i, type(v),
					type(v) == "number" and (" " .. tostring(v)) or ""), 3)
			end
		elseif type(v) == "number" then
			args[i] = tostring(v)
		elseif type(v) ~= "string" then
			fatal(string.format("%s: argument %d must be a string (str), got %s", full, i, type(v)), 3)
		end
	end
	return args
end

local function allowed(def)
	local route = st.route or (st.msg.type == "request" and "request" or "reply")
	for _, r in ipairs(def.routes) do
		if r == route then
			return true, route
		end
	end
	return false, route
end

local function default_impl(def)
	if def.ret == "int" then
		return function() return 1 end
	elseif def.ret == "bool" then
		return function() return true end
	end
	return function() return nil end
end

local function make_fn(mod, name, def)
	local key, full = keyname(mod, name), fullname(mod, name)
	local builtin = B[key] or default_impl(def)
	return function(...)
		local args = check_args(full, def, select("#", ...), ...)
		M.calls[#M.calls + 1] = { name = key, args = args }
		local ok, route = allowed(def)
		if not ok then
			log("err", string.format("%s is not allowed in a %s route", full, ROUTE_LABEL[route] or route))
			return FAILURE[def.ret]
		end
		local stub = st.stubs[key]
		local v
		if stub then
			v = convert(full, def, stub(unpack(args, 1, #def.params)), true)
		else
			v = convert(full, def, builtin(unpack(args, 1, #def.params)), false)
		end
		if def.ret ~= "none" then
			return v
		end
	end
end

local function readonly()
	fatal("KSR is read-only in the mock: use mock.stub(\"module.name\", ...)", 2)
end

-- KSR and its modules are empty proxies, so that every write (also over an
-- existing name) goes through __newindex and fails.
local function build_ksr(api)
	local top, mods = {}, {}
	for mod, fns in pairs(api) do
		local t = top
		if mod ~= "" then
			t = {}
			mods[mod] = t
		end
		for name, d in pairs(fns) do
			t[name] = make_fn(mod, name, d)
		end
	end
	for mod, fns in pairs(mods) do
		top[mod] = setmetatable({}, {
			__index = function(_, name)
				local f = fns[name]
				if f == nil then
					fatal(string.format("KSR.%s.%s does not exist in ksrd", mod, tostring(name)), 2)
				end
				return f
			end,
			__newindex = readonly,
		})
	end
	return setmetatable({}, {
		__index = function(_, name)
			local v = top[name]
			if v ~= nil then
				return v
			elseif KEMI_MODULES[name] then
				st.missing[name] = true
				return nil
			end
			fatal(string.format("KSR.%s does not exist in ksrd", tostring(name)), 2)
		end,
		__newindex = readonly,
	})
end

-- ---------------------------------------------------------------- public API

local function clear_records()
	M.replies, M.forwards, M.relays = {}, {}, {}
	M.headers_added, M.headers_removed = {}, {}
	M.logs, M.calls, M.errors = {}, {}, {}
	M.flags, M.bflags = {}, {}
	M.tm = {}
	M.dropped = false
end

local FIELDS = {
	request = { "method", "ruri" },
	reply = { "status", "reason", "method" },
	common = { "headers", "body", "src_ip", "src_port", "proto", "rcv_ip", "rcv_port", "time", "conid" },
}

local function set_message(kind, spec)
	if spec ~= nil and type(spec) ~= "table" then
		usage("ksr.mock: mock." .. kind .. " takes a table")
	end
	for k in pairs(spec or {}) do
		local known = false
		for _, list in ipairs({ FIELDS[kind], FIELDS.common }) do
			for _, f in ipairs(list) do
				known = known or f == k
			end
		end
		if not known then
			usage(string.format("ksr.mock: mock.%s: unknown field '%s'", kind, tostring(k)))
		end
	end
	local m = new_message(kind, spec)
	clear_records()
	st.msg = m
	st.missing = {}
end

function M.request(spec)
	set_message("request", spec)
end

function M.reply(spec)
	set_message("reply", spec)
end

function M.reset()
	st.stubs, st.vars, st.shv, st.sflags = {}, {}, {}, {}
	st.seq, st.route, st.fatal = 0, nil, nil
	set_message("request", nil)
end

function M.new(opts)
	opts = opts or {}
	if type(opts) ~= "table" then
		usage("ksr.mock: mock.new takes a table of options")
	end
	st.api = opts.api or api_default
	st.config = {
		listen = opts.listen or { "udp:127.0.0.1:5060", "tcp:127.0.0.1:5060" },
		aliases = opts.aliases or {},
	}
	st.listens = {}
	for i, s in ipairs(st.config.listen) do
		st.listens[i] = parse_listen(s)
	end
	if #st.listens == 0 then
		usage("ksr.mock: no listen socket")
	end
	M.reset()
	local ksr = build_ksr(st.api)
	M.KSR = ksr
	if opts.global ~= false then
		rawset(_G, "KSR", ksr)
		rawset(_G, "KSRVERSION", "2.0")
	end
	return ksr
end

local GLOBAL_LOCK = {
	__newindex = function(_, k)
		error(string.format("assignment to undeclared global '%s' (declare it at load time or use local)",
			tostring(k)), 2)
	end,
}

local function route_handler(e)
	if e == EXIT then
		return EXIT
	end
	return debug.traceback(tostring(e), 2)
end

function M.run(fn, opts)
	opts = opts or {}
	local name = "route function"
	if type(fn) == "string" then
		name = fn
		fn = rawget(_G, name)
		if fn == nil and getfenv then
			fn = getfenv(2)[name]
		end
	end
	if type(fn) ~= "function" then
		error(string.format("mock.run: no function %s", name), 2)
	end
	local route = opts.route or (st.msg.type == "request" and "request" or "reply")
	if not ROUTES[route] then
		error(string.format("mock.run: unknown route type '%s'", tostring(route)), 2)
	end
	local args = opts.args or {}
	local saved = st.route
	st.route, st.fatal = route, nil
	-- globals are locked while a route runs, as in ksrd after the script is loaded
	local lock = getmetatable(_G) == nil
	if lock then
		setmetatable(_G, GLOBAL_LOCK)
	end
	local ok, err = xpcall(function() return fn(unpack(args)) end, route_handler)
	if lock then
		setmetatable(_G, nil)
	end
	st.route = saved
	if st.fatal then
		local f = st.fatal
		st.fatal = nil
		error(f, 0)
	end
	if ok or err == EXIT then
		return 1
	end
	local text = tostring(err)
	for mod in pairs(st.missing) do
		if text:find("field '" .. mod .. "' (a nil value)", 1, true) then
			error(string.format("%s (KSR.%s does not exist in ksrd: none of its functions is in the binding table)",
				text:match("^[^\n]*"), mod), 0)
		end
	end
	log("err", string.format("error in %s: %s", name, text))
	M.errors[#M.errors + 1] = { route = name, message = text }
	local m = st.msg
	if route == "request" and m.type == "request" and not m.replied and m.method ~= "ACK" then
		M.replies[#M.replies + 1] = {
			code = 500, reason = "Server Internal Error", headers = {}, fn = "ksrd", auto = true,
		}
		m.replied = 500
	end
	return -1, text
end

-- Loads a route script as ksrd does: in the "load" route (KSR functions
-- allowed only at run time fail), globals not locked; an error fails the spec.
function M.load(path)
	local chunk, err = loadfile(path)
	if not chunk then
		usage("mock.load: " .. tostring(err))
	end
	local saved = st.route
	st.route, st.fatal = "load", nil
	local ok, e = xpcall(chunk, route_handler)
	st.route = saved
	if st.fatal then
		local f = st.fatal
		st.fatal = nil
		error(f, 0)
	end
	if not ok then
		error(string.format("mock.load: %s: %s", path, e == EXIT and "KSR.x.exit() at load time" or tostring(e)), 2)
	end
end

function M.stub(name, impl, ...)
	local mod, fn, def = lookup(name)
	if not def then
		if not mod then
			error("mock.stub: give a name such as \"registrar.lookup\"", 2)
		end
		error(string.format("%s does not exist in ksrd: cannot stub it", fullname(mod, fn)), 2)
	end
	if select("#", ...) > 0 then
		error("mock.stub takes a name and one value or function", 2)
	end
	if type(impl) ~= "function" then
		local v = impl
		impl = function() return v end
	end
	st.stubs[keyname(mod, fn)] = impl
end

function M.unstub(name)
	local mod, fn, def = lookup(name)
	if not def then
		error(string.format("%s does not exist in ksrd", fullname(mod or "", fn or tostring(name))), 2)
	end
	st.stubs[keyname(mod, fn)] = nil
end

function M.pv(name, ...)
	if select("#", ...) == 0 then
		return (pv_get(name))
	end
	local v = ...
	if pv_set(name, v) < 0 then
		error(string.format("mock.pv: cannot assign %s", tostring(name)), 2)
	end
end

function M.called(name)
	local mod, fn, def = lookup(name)
	if not def then
		error(string.format("%s does not exist in ksrd", fullname(mod or "", fn or tostring(name))), 2)
	end
	local key, n = keyname(mod, fn), 0
	for _, c in ipairs(M.calls) do
		if c.name == key then
			n = n + 1
		end
	end
	return n
end

function M.logged(text, level)
	for _, l in ipairs(M.logs) do
		if (level == nil or l.level == level) and l.text:find(text, 1, true) then
			return true
		end
	end
	return false
end

function M.added(name)
	local k, v = hkey(name), nil
	for _, h in ipairs(M.headers_added) do
		if hkey(h.name) == k then
			v = h.value
		end
	end
	return v
end

function M.removed(name)
	local k = hkey(name)
	for _, h in ipairs(M.headers_removed) do
		if hkey(h.name) == k then
			return true
		end
	end
	return false
end

-- Until mock.new() is called, a default mock (so requiring the module is enough
-- for helpers that only read M.KSR).
M.new({ global = false })

return M
