"""The embedded Redis-protocol server in a process of its own, for benchmark runs.

Inside the benchmark process it would share one interpreter lock with the Zoom simulator
and the load generator and slow all three; the product's own embedded server
(``workers.queue.embedded_redis``) runs in whichever process starts it first.
Prints its URL on one line, then serves until terminated.
"""

from __future__ import annotations

import signal
import sys
import threading

from telemed.workers.queue.embedded_redis import EmbeddedRedisServer


def main() -> int:
    server = EmbeddedRedisServer.start(host="127.0.0.1", port=0)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(server.url, flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
