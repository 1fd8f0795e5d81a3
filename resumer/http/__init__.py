"""HTTP: the connections every call goes through, and what they carry.

- ``pool``: ``ClientPool``, one keep-alive connection per thread, TLS and proxy wiring;
  ``pool_for``, the pool of the job's engine;
- ``curl``: ``CurlPool``, the same pool on libcurl (pycurl), the default engine;
- ``deadline``: one deadline for a whole call (a dripping server cannot hold it);
- ``tls``: certificates and trust (the system's store, a company CA, mutual TLS);
- ``auth``: the ``Authorization`` value, tokens and their renewal (single flight);
- ``ratelimits``: ``Retry-After`` and the rate-limit headers, parsed.

Knows nothing of nodes, templates or what an answer means (``query.answers``).
May import ``ops``, ``job``, ``policies``, ``errors`` and ``model``.
"""
