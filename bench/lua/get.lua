-- GET <path> with one extra header (a static request: no per-request Lua
-- work), e.g. `/login Accept-Language de`.
-- Script args: <path> <header name> <header value>
function init(args)
  wrk.path = args[1]
  wrk.headers[args[2]] = args[3]
end
