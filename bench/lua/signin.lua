-- POST a sign-in, cycling over N pre-seeded accounts <prefix>-<i>@bench.example.com
-- (all with the password "bench-password-123"); threads start at different offsets.
-- Script args: <target> <n_users> <prefix>   target = derp | peer
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local counter = 0
local path, n, prefix

function init(args)
  path = args[1] == "peer" and "/api/auth/sign-in/email" or "/api/v1/auth/sign-in"
  n = tonumber(args[2]) or 1
  prefix = args[3] or "bench-signin"
  counter = (tid or 0) * 7
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local i = counter % n
  counter = counter + 1
  local body = string.format('{"email":"%s-%d@bench.example.com","password":"bench-password-123"}', prefix, i)
  return wrk.format("POST", path, nil, body)
end
