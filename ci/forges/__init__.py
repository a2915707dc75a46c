"""Forge providers: one folder per forge (GitHub, Gitea/Forgejo, GitLab), each split the same way.

`<forge>/webhook.py` is pure: `detect(headers)`, `verify(headers, body, secret)`,
`parse(headers, body) -> Delivery`. `<forge>/client.py` is the async HTTP client behind the
small `ForgeClient` protocol (`client.py`). `registry.py` holds the one table of providers the
receiver and the controller look forges up in.
"""
