-- wrk script: a different token on every request, round-robin over a file of tokens (one a
-- line), each wrk thread starting at its own offset so that threads do not send the same token
-- at the same time.
--
--   wrk -t1 -c16 -d10s -s rotate.lua http://127.0.0.1:PORT/route -- tokens.txt [THREADS]
--
-- THREADS (default 1) is wrk's -t, used only to spread the threads' starting offsets evenly.
-- The requests are formatted once, in init, so each request costs wrk a table lookup, not a
-- string build.

local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  local path = args[1] or os.getenv("TOKENS_FILE")
  if not path then
    error("rotate.lua: pass the tokens file after --, or set TOKENS_FILE")
  end
  local threads = tonumber(args[2] or "1") or 1
  requests = {}
  for line in io.lines(path) do
    if #line > 0 then
      requests[#requests + 1] = wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. line })
    end
  end
  count = #requests
  if count == 0 then
    error("rotate.lua: no tokens in " .. path)
  end
  -- id is set by setup() in this thread's state; 0 if setup did not run.
  local me = id or 0
  position = (me * math.floor(count / math.max(threads, 1))) % count
end

function request()
  position = position + 1
  if position > count then
    position = 1
  end
  return requests[position]
end
