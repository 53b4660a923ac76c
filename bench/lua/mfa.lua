-- Sign-in + TOTP challenge: each pair is a password sign-in of an account
-- with a TOTP factor, answered "second factor required", then the challenge
-- with the account's code of the current time step.
--   derp: POST /api/v1/auth/sign-in -> {mfa_required, mfa_token}, then
--         POST /api/v1/auth/mfa/challenge {mfa_token, code}
--   peer: POST /api/auth/sign-in/email -> {twoFactorRedirect} and the
--         two_factor cookie, then POST /api/auth/two-factor/verify-totp {code}
--         with that cookie (and an Origin, which Better Auth's CSRF check
--         asks of a request with cookies)
-- Run with one connection per thread (wrk -tN -cN): a thread then has one
-- request in flight, so it knows which account the answer is for.
-- Accounts come from a file written by `helper.py mfa-users`, one a line:
-- `email base_step code code ...` (the code of base_step first); line i goes
-- to thread i mod <threads>. Each account is challenged at most once per
-- run (and run.sh gives every run its own accounts), so no code is ever
-- replayed: a TOTP code is accepted once per factor and time step. If a
-- thread runs out of accounts, it signs in again but sends an invalid code,
-- which shows in wrk's non-2xx count instead of a replay.
-- done() prints `mfa: challenges_ok=N signins=N duration_us=N`.
-- Script args: <target> <file> <threads>   target = derp | peer
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local users, next_user = {}, 1
local current, pending = nil, nil
local peer = false
challenges_ok, signins = 0, 0

function init(args)
  peer = args[1] == "peer"
  local threads = tonumber(args[3]) or 1
  local i = 0
  for line in io.lines(args[2]) do
    if line ~= "" then
      if i % threads == (tid or 0) then
        local f = {}
        for w in line:gmatch("%S+") do f[#f + 1] = w end
        local codes = {}
        for k = 3, #f do codes[#codes + 1] = f[k] end
        users[#users + 1] = { email = f[1], base = tonumber(f[2]), codes = codes, used = false }
      end
      i = i + 1
    end
  end
end

local function json_headers(cookie)
  local h = { ["Content-Type"] = "application/json" }
  if cookie then
    h["Cookie"] = cookie
    h["Origin"] = "http://" .. wrk.host .. ":" .. wrk.port
  end
  return h
end

function request()
  if pending then
    local p = pending
    pending = nil
    local code = "invalid"
    if not p.user.used then
      local k = math.floor(os.time() / 30) - p.user.base + 1
      code = p.user.codes[k] or "invalid"
      p.user.used = true
    end
    if peer then
      return wrk.format("POST", "/api/auth/two-factor/verify-totp", json_headers(p.cookie),
        '{"code":"' .. code .. '"}')
    end
    return wrk.format("POST", "/api/v1/auth/mfa/challenge", json_headers(nil),
      '{"mfa_token":"' .. p.token .. '","code":"' .. code .. '"}')
  end
  if #users == 0 then
    return wrk.format("POST", peer and "/api/auth/sign-in/email" or "/api/v1/auth/sign-in",
      json_headers(nil), "{}")
  end
  current = users[next_user]
  next_user = next_user % #users + 1
  return wrk.format("POST", peer and "/api/auth/sign-in/email" or "/api/v1/auth/sign-in", json_headers(nil),
    '{"email":"' .. current.email .. '","password":"bench-password-123"}')
end

function response(status, headers, body)
  if current then
    local u = current
    current = nil
    if status ~= 200 then return end
    if peer then
      local c = headers["set-cookie"] or headers["Set-Cookie"] or ""
      local name, value = c:match("([%w%._%-]*two_factor)=([^;]+)")
      if name and body:find('"twoFactorRedirect"%s*:%s*true') then
        pending = { user = u, cookie = name .. "=" .. value }
        signins = signins + 1
      end
    else
      local t = body:match('"mfa_token"%s*:%s*"([^"]+)"')
      if t then
        pending = { user = u, token = t }
        signins = signins + 1
      end
    end
    return
  end
  if status == 200 then
    challenges_ok = challenges_ok + 1
  end
end

local threads = {}
local common_setup = setup
function setup(thread)
  common_setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local ok, n = 0, 0
  for _, t in ipairs(threads) do
    ok = ok + (tonumber(t:get("challenges_ok")) or 0)
    n = n + (tonumber(t:get("signins")) or 0)
  end
  io.write(string.format("mfa: challenges_ok=%d signins=%d duration_us=%d\n", ok, n, summary.duration))
end
