"""The checkpoint: the SQLite file that makes a crawl durable.

- ``store``: opening a checkpoint, its named reads and writes, the live counts;
- ``transaction``: the hot-path writes (claim, save a result, complete upward);
- ``tables``: the schema, its migrations (``migrations/``, Alembic) and vetting a file;
- ``sqlitefile``: connections, pragmas and SQLite's errors as ours;
- ``tally``: the kept counts per level and status;
- ``export``: the export formats, streamed; ``files``: writing a file whole or not at all;
- ``diff``: two checkpoints compared, streamed (``resumer diff``);
- ``backups``: the backup folder and periodic backups; ``lock``: one live process a job.

Every SQL statement of resumer is in this package; nothing here makes an HTTP call
or reads a job file. May import ``errors``, ``model`` and ``_crashpoints`` only.
"""
