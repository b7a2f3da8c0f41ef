"""``python -m services.cli``: the ``dualrandom`` command."""

from services.cli import main

main()
