-- wrk script: update.lua's /update requests, counting the answers that say every
-- live responder already serves the value (`"propagationDelaySeconds": 0`).
-- Usage: wrk ... -s wait.lua URL -- <credentials file> <Basic header value>
-- Prints "confirmed=<percent>" at the end.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  regs = {}
  for line in io.lines(args[1]) do
    local user, pass, sub = line:match("^reg (%S+) (%S+) (%S+)$")
    if user then table.insert(regs, { user, pass, sub }) end
  end
  basic = args[2]
  counter = (id or 0) * 1000003
  answers, confirmed = 0, 0
end

function request()
  counter = counter + 1
  local r = regs[(counter % #regs) + 1]
  local body = string.format('{"subdomain": "%s", "txt": "%043d"}', r[3], counter)
  local headers = {
    ["X-Api-User"] = r[1],
    ["X-Api-Key"] = r[2],
    ["Authorization"] = basic,
    ["Content-Type"] = "application/json",
  }
  return wrk.format("POST", "/update", headers, body)
end

function response(status, headers, body)
  answers = answers + 1
  if status == 200 and body:find('"propagationDelaySeconds": 0}', 1, true) then
    confirmed = confirmed + 1
  end
end

function done(summary, latency, requests)
  local a, c = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("answers")
    c = c + t:get("confirmed")
  end
  io.write(string.format("confirmed=%.1f\n", a > 0 and 100 * c / a or 0))
end
