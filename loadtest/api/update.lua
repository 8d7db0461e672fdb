-- wrk script: POST /update as an acme-dns client does (X-Api-User/X-Api-Key,
-- Basic license key from the base URL, JSON body), rotating over the seeded
-- registrations and writing a fresh 43-character value each time.
-- Usage: wrk ... -s update.lua URL -- <credentials file> <Basic header value>

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
