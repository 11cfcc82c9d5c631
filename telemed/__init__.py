"""telemed: appointment events in, secure Zoom meetings and role-filtered notifications out.

This package is the composition root: settings, logging and the ``telemed`` command.
It is kept import-light on purpose; ``store``, ``zoom`` and the others import
``telemed.settings`` and nothing else from here.
"""

__version__ = "0.1.0"
