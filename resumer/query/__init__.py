"""One node's query: render its request (its level's own, with ``[levels.N.request]``),
send it (every page), decide what the answer means, map the body to child items.

- ``client``: ``Client``, a node's query and the level-1 source;
- ``answers``: the one place that decides what an answer means: the job's
  ``[[response.rule]]``s first, else the HTTP status (success, throttle, transient or
  permanent failure, a refused credential, a stop);
- ``conditions``: the condition words (``field`` with ``in`` / ``not_in`` /
  ``missing``) tested on a JSON document, the one implementation (answer rules, and
  the leaf and drop rules on items);
- ``shape``: ``[[crawl.leaf]]`` / ``[[crawl.drop]]`` compiled per level: which items
  are stored as leaves, which are not stored;
- ``pages``: the pagination modes; ``mapping``: a body to items;
- ``sources``: level-1 nodes from a file.

Knows nothing of the database, the worker threads or retries. May import ``http``,
``ops``, ``job``, ``policies``, ``errors`` and ``model``.
"""
