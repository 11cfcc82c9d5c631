"""What each worker process imports: logging first, then the broker and actors."""

from telemed.logging import configure_logging
from telemed.settings import get_settings

_settings = get_settings()
configure_logging(format=_settings.log_format, level=_settings.log_level)

from workers.actors import broker  # noqa: E402,F401  (installs the broker, declares actors)
