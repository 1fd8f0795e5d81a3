"""resumer: crawl a tree of records behind an HTTP API, concurrently, politely and durably."""

__version__ = "0.1.0"
