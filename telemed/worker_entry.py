"""What each worker process imports (``telemed worker`` runs Dramatiq's CLI on it).

The one module whose import wires: Dramatiq finds a process's broker by importing a
module, so this is where a worker process builds its parts (``telemed.bootstrap``).
Logging is configured first, so the broker's and actors' own lines are structured.
"""

from telemed import bootstrap
from telemed.logging import configure_logging
from telemed.settings import get_settings

settings = get_settings()
configure_logging(format=settings.log_format, level=settings.log_level)
pipeline = bootstrap.pipeline(settings)
broker = pipeline.broker
