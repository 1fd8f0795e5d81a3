"""``python -m resumer``: the same command line as the ``resumer`` script (``cli.app.main``).

Tested by tests/integration/test_cli.py, tests/integration/test_bad_input.py and
tests/integration/test_signals.py.
"""

from resumer.cli.app import main

main()
