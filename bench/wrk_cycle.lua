-- wrk script for the HTTP section: GET /me with each bench user's own credential.
--
--   wrk -t1 -c32 -d4s -s bench/wrk_cycle.lua http://127.0.0.1:PORT/me -- CREDS ORDER
--
-- CREDS holds one request header per user ("Authorization: Bearer ..." or
-- "Cookie: ..."). A bare app's file holds one empty line: no header, for every index.
-- ORDER holds the user indexes (0-based) in the order they are sent, one per line,
-- then repeats. Every
-- request string is built once in init(): per request this script only steps an
-- index and returns a prebuilt string, so the load client costs the same for every
-- variant and regime, and stays far from being the bottleneck.

local order = {}
local count = 0
local position = 0

function init(args)
   local requests = {}
   for line in io.lines(args[1]) do
      local headers = {}
      local name, value = line:match("^([^:]+):%s*(.*)$")
      if name then
         headers[name] = value
      end
      requests[#requests + 1] = wrk.format("GET", wrk.path, headers)
   end
   for line in io.lines(args[2]) do
      count = count + 1
      if #requests == 1 then
         order[count] = requests[1]
      else
         order[count] = assert(requests[tonumber(line) + 1], "no credential for user " .. line)
      end
   end
end

function request()
   position = position + 1
   if position > count then
      position = 1
   end
   return order[position]
end
