-- wrk script: POST /register with the license key as Basic auth and no body
-- (acme-dns-auth.py, acme.sh, goacmedns without an allow-list).
-- Usage: wrk ... -s register.lua URL -- <Basic header value>

function init(args)
  wrk.method = "POST"
  wrk.headers["Authorization"] = args[1]
end
