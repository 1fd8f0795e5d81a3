"""Operating a crawl: logs (formats, context, masking), Prometheus metrics, alert rules
and their webhook, and the Grafana dashboard and alerting rules (``monitoring``).

Watches; never steers a crawl. May import ``job``, ``policies``, ``errors`` and ``model``.
"""
