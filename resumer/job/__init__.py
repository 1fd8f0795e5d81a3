"""The job file: what a user writes, checked, frozen and bound to its environment.

- ``settings``: ``Job``, the frozen, validated settings, and the defaults;
- ``keys``: every key the job file may hold, its kind and range (the one declaration
  the loader, the JSON Schema and the ``init`` template are built from);
- ``loader``: reading TOML or a dict into a ``Job``, every mistake one line;
- ``schema``: the JSON Schema and the commented ``init`` template;
- ``tomlwriter``: a dict back to TOML; ``messages``: one-line message helpers;
- ``wire``: what can go on the wire (URLs, proxies, header values);
- ``template``: ``{id}`` placeholders and ``${VAR}`` secrets, compiled once;
- ``bound``: the job bound to its environment, every ``${VAR}`` resolved once, for
  the run side (the only place a secret is filled in).

Makes no HTTP call and reads no database. May import ``policies`` (their defaults),
``errors`` and ``model``.
"""
