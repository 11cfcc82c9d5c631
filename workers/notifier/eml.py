"""The zero-configuration mail channel: one .eml file per message in a directory."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

from telemed.workers.notifier.errors import PermanentDeliveryError, TransientDeliveryError


class EmlDirectoryChannel:
    """Writes each message as ``<UTC timestamp>-<uuid>.eml`` (mode 0600) into a directory.

    The file appears atomically (write a hidden temp file, fsync, rename), so a reader
    never sees half a message and a crash leaves at most a stray temp file.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"<EmlDirectoryChannel {self.directory}>"

    def send(self, message: Message) -> None:
        self.write(message)

    def write(self, message: Message) -> Path:
        """Like :meth:`send`, returning the new file's path."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{uuid.uuid4().hex}.eml"
        temp = self.directory / f".{name}.tmp"
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            data = message.as_bytes()
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                target = self.directory / name
                os.replace(temp, target)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            _fsync_directory(self.directory)
        except PermissionError:
            raise PermanentDeliveryError(f"mail directory not writable: {self.directory}") from None
        except OSError as exc:  # disk full, I/O error: may pass
            raise TransientDeliveryError(
                f"could not write mail file ({type(exc).__name__}: {exc.strerror})"
            ) from None
        return target


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
