"""``python -m paygo.cli``: the ``paygo`` command (the demo starts its children this way)."""

from paygo.cli import main

main()
