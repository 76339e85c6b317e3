"""HTTP connections that must send a request's head in time (a slow client gets 408).

uvicorn closes a connection idle between requests (``timeout_keep_alive``) but waits forever
for the head of a request whose bytes trickle in, or for a first request that never comes.
:func:`head_timeout_protocol` makes its h11 protocol send 408 and close when a request head
is not complete ``seconds`` after the connection opened or its last response ended. The body
has its own deadline in the app (:mod:`grounded.serve.app`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


def _timeout_response(seconds: float) -> bytes:
    body = json.dumps(
        {
            "error": {
                "message": f"the request head did not arrive within {seconds:g} s "
                "(`read_timeout_s`)",
                "type": "timeout_error",
                "param": None,
                "code": "request_timeout",
            }
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def head_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a deadline of ``seconds`` on each request head."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadTimeoutH11(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self._head_timer = self.loop.call_later(seconds, self._head_late)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            # A request whose head arrived is being served (its response re-arms the timer).
            if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
                return
            self.transport.write(_timeout_response(seconds))
            self.transport.close()

    return HeadTimeoutH11
