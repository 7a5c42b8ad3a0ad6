"""``python -m emovec.cli``: the same as the ``emovec`` command."""

from emovec.cli import main

main()
