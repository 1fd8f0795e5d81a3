"""The command line: the typer app (``app``), its consoles and one-line errors
(``terminal``), the live view and tables (``display``), ``resumer demo`` (``demo``) and
``resumer fake-api`` (``fake_api``).

Commands only parse, call the library (``resumer.api``) and print: no logic of a
crawl lives here. This is the only package that imports typer and rich; nothing in
resumer imports it. May import every other package.
"""
