"""The crawler: what ``resumer start`` and ``resume`` run (named so, not ``run``, because
``resumer.run`` is the public function that starts a crawl).

- ``crawl``: building a run (the bound job, pool, client, policies, metrics, alerts);
- ``runner``: the coordinator (claims work, stores results, stops);
- ``workers``: the worker threads per level, parking throttled queries;
- ``policyset``: a run's policies; ``signals``: Ctrl-C and SIGTERM;
- ``probe``: ``resumer probe``, a few queries per level, nothing stored;
- ``estimate``: work left and the ETA (also read by ``status``).

The only package that joins HTTP to the checkpoint. May import ``results``,
``query``, ``http``, ``ops``, ``job``, ``policies``, ``checkpoint``, ``errors``,
``model``.
"""
