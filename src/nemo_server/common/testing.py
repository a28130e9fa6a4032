"""Helpers for tests of any service: internal-token headers for a principal."""

from __future__ import annotations

from nemo_server.common.auth import InternalTokenCodec, Principal
from nemo_server.common.settings import CommonSettings

ALICE = Principal(user_id="u-alice", username="alice", roles=("user",))
BOB = Principal(user_id="u-bob", username="bob", roles=("user",))
ADMIN = Principal(user_id="u-admin", username="admin", roles=("admin", "user"))


def internal_headers(settings: CommonSettings, principal: Principal = ALICE) -> dict[str, str]:
    """`Authorization` header carrying a valid internal token for `principal`."""
    codec = InternalTokenCodec(
        settings.secrets().get("internal_key"), ttl_s=settings.internal_token_ttl_s
    )
    return {"Authorization": f"Bearer {codec.mint(principal)}"}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """Serve an ASGI app with uvicorn in a background thread (real sockets, for end-to-end tests).

    `with ServerThread(app) as server: httpx.get(server.url + "/healthz")`
    """

    def __init__(self, app: object, port: int | None = None) -> None:
        import threading

        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, lifespan="on"
        )  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        import time

        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
