-- GET <path> with "Authorization: Bearer <token>" (a static request: no
-- per-request Lua work).
-- Script args: <path> <token>
function init(args)
  wrk.path = args[1]
  wrk.headers["Authorization"] = "Bearer " .. args[2]
end
