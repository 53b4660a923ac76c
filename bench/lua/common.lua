-- Shared by the other scripts (loaded with dofile): numbers each wrk thread
-- in setup() so that per-thread state (ids, seeds, token slices) differs.
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end
