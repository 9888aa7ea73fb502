"""Remote environments: the migration engine run on a target host over SSH.

hosts (targets from the config, mirrors; no network), bundle (the runtime shipped to a
target), wire (the request and answer streams), ssh (asyncssh, the optional extra
`dasct[ssh]`), runner (one request to one host), fleet (waves, canary, policies),
targetside (what `dasct _target` does on the host). docs/remote.md.
"""
