-- POST a sign-up with a unique email per request: run prefix (time, thread id,
-- random) + per-thread counter + random suffix, so no two requests collide
-- across threads, runs or reruns.
-- Script args: <target>   derp | peer
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local counter = 0
local path, peer, prefix

function init(args)
  peer = args[1] == "peer"
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
  prefix = string.format("su%d-t%d-%06d", os.time(), tid or 0, math.random(0, 999999))
  path = peer and "/api/auth/sign-up/email" or "/api/v1/auth/sign-up"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local email = string.format("%s-%d-%d@bench.example.com", prefix, counter, math.random(0, 999999))
  local body
  if peer then
    body = string.format('{"email":"%s","password":"bench-password-123","name":"Bench User"}', email)
  else
    body = string.format('{"email":"%s","password":"bench-password-123"}', email)
  end
  return wrk.format("POST", path, nil, body)
end
