"""The ``hwnas`` command line: one module per command, options typed in :mod:`.options`, one
error boundary in :mod:`.boundary`. This package is the only place in hwnas that prints.

Layout (no module imports this package's ``__init__`` or :mod:`.app`, so there is no cycle):
``app`` builds the group and names the commands, each imported only when it is run (so
``hwnas agent serve`` on a board without torch imports no other command); ``spaces``, ``devices``,
``query``, ``profile``, ``search``, ``compare``, ``report``, ``quickstart``, ``latency`` (plan,
adapt), ``accuracy`` (adapt) and ``agent`` (serve) are the commands; ``options``, ``inputs``,
``ui`` and ``boundary`` are shared.
"""

from .app import cli, main

__all__ = ["cli", "main"]
