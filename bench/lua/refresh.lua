-- POST /api/v1/auth/refresh spending every refresh token exactly once (or,
-- with "oidc", POST /oauth2/token grant_type=refresh_token as an OIDC client).
-- Each thread takes its share of a file of freshly issued refresh tokens
-- (line i goes to thread i mod <threads>) into a queue; each request pops one
-- token, and each 200 response pushes the rotated token it returns. A
-- connection has at most one request in flight, so with at least one seed
-- per connection the queue never runs dry. wrk also calls request() once in
-- its first thread before connecting (to check for pipelining) and drops
-- the result, which spends one token: run.sh seeds one extra per thread.
-- If the queue ever runs dry anyway (after failed requests), the request
-- carries an invalid token and shows up in wrk's non-2xx count rather than
-- replaying a spent one.
-- Script args: <token_file> <threads> [oidc <Authorization header value>]
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local queue, head, tail = {}, 1, 0
local oidc = false

function init(args)
  local threads = tonumber(args[2]) or 1
  local i = 0
  for line in io.lines(args[1]) do
    if line ~= "" then
      if i % threads == (tid or 0) then
        tail = tail + 1
        queue[tail] = line
      end
      i = i + 1
    end
  end
  oidc = args[3] == "oidc"
  if oidc then
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    wrk.headers["Authorization"] = args[4]
  else
    wrk.headers["Content-Type"] = "application/json"
  end
end

function request()
  local token = "queue-ran-dry"
  if head <= tail then
    token = queue[head]
    queue[head] = nil
    head = head + 1
  end
  if oidc then -- the tokens are base64url: nothing to escape
    return wrk.format("POST", "/oauth2/token", nil, "grant_type=refresh_token&refresh_token=" .. token)
  end
  return wrk.format("POST", "/api/v1/auth/refresh", nil, '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    local t = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if t then
      tail = tail + 1
      queue[tail] = t
    end
  end
end
