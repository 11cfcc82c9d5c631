"""The embedded Redis-protocol server: fakeredis's TCP server with Lua, in a thread.

Used when TELEMED_REDIS_URL is unset, so that ``telemed demo`` and ``telemed run`` need
no Redis installation. Separate processes share it over TCP; it lives as long as the
process that started it. It keeps nothing on disk: the store's inbox and the reconciler
are what make a restart lose nothing.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

import redis
from fakeredis import TcpFakeServer


class _Server(TcpFakeServer):
    # socketserver's default backlog of 5 makes a burst of clients wait about a second
    # each for a retransmitted SYN; worker pools open many connections at once.
    request_queue_size = 128


@dataclass
class EmbeddedRedisServer:
    server: TcpFakeServer
    thread: threading.Thread
    host: str
    port: int

    @classmethod
    def start(cls, host: str = "127.0.0.1", port: int = 0) -> EmbeddedRedisServer:
        server = _Server((host, port), server_type="redis")
        server.daemon_threads = True
        bound_port = int(server.server_address[1])
        thread = threading.Thread(
            target=server.serve_forever, name="embedded-redis", daemon=True
        )
        thread.start()
        return cls(server=server, thread=thread, host=host, port=bound_port)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answers(url: str, timeout: float = 0.5) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout).ping())
    except (redis.RedisError, OSError):
        return False


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # As the server binds (SO_REUSEADDR): a port held only by the TIME_WAIT connections
        # of a server that just died (a restart after a crash) is free; a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True
