"""The ``hwnas`` command line: one module per command, options typed in :mod:`.options`, one
error boundary in :mod:`.boundary`. This package is the only place in hwnas that prints.

Layout (no module imports this package's ``__init__`` or :mod:`.app`, so there is no cycle):
``app`` builds the group and registers the commands; ``spaces``, ``devices``, ``query``,
``profile``, ``search``, ``compare``, ``report``, ``quickstart``, ``latency`` (plan, adapt) and
``accuracy`` (adapt) are the commands; ``options``, ``inputs``, ``ui`` and ``boundary`` are shared.
"""

from .app import cli, main

__all__ = ["cli", "main"]
