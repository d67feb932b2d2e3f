"""The synchronous Socket.IO client (no asyncio in user code), shaped like python-socketio's
``Client``."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import Any, Callable, Optional, Union

from . import _base
from ._thread import LoopThread
from .async_client import AsyncClient, ClientDisconnectReason
from .exceptions import ShutdownError


class Client(_base.Registry, _base.Threads):
    """A Socket.IO client for code without asyncio, served by the polysio Rust core.

    It takes the options of :class:`polysio.AsyncClient`. Handlers are plain functions, run
    one at a time, in order, on a thread of their own; every method may be called from any
    thread (handlers included).

    Example::

        sio = polysio.Client()

        @sio.event
        def chat(message):
            print("got", message)

        sio.connect("http://127.0.0.1:5000")
        print(sio.call("chat", "hello"))
        sio.disconnect()
    """

    reason = ClientDisconnectReason

    def __init__(self, **options: Any) -> None:
        self._client = AsyncClient(**options)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="polysio-client-handler"
        )
        self._client._runner.executor = self._executor
        self._handlers = self._client._handlers
        self._plain_only = ("polysio.Client", "polysio.AsyncClient")
        self._thread = LoopThread("polysio-client")
        self._closed = False

    @property
    def logger(self) -> logging.Logger:
        """The logger handler errors go to."""
        return self._client.logger

    @property
    def connected(self) -> bool:
        """True while at least one namespace is connected."""
        return self._client.connected

    @property
    def sid(self) -> Optional[str]:
        """The sid of the ``/`` namespace (or the first connected one)."""
        return self._client.sid

    @property
    def namespaces(self) -> dict[str, str]:
        """Connected namespaces and their sids."""
        return dict(self._client.namespaces)

    def transport(self) -> Optional[str]:
        """The transport in use, ``'polling'`` or ``'websocket'``; ``None`` while not
        connected."""
        return self._client.transport()

    def get_sid(self, namespace: Optional[str] = None) -> Optional[str]:
        """The sid of ``namespace``, while connected."""
        return self._client.get_sid(namespace)

    def _live(self) -> LoopThread:
        if self._closed:
            raise ShutdownError("the client is shut down")
        return self._thread

    def connect(
        self,
        url: str,
        headers: Optional[dict[str, str]] = None,
        auth: Any = None,
        transports: Union[None, str, list[str]] = None,
        namespaces: Union[None, str, list[str]] = None,
        socketio_path: str = "socket.io",
        wait: bool = True,
        wait_timeout: float = 1,
        retry: bool = False,
    ) -> None:
        """Connects (see :meth:`polysio.AsyncClient.connect`)."""
        self._live().run(
            self._client.connect(
                url, headers, auth, transports, namespaces, socketio_path, wait, wait_timeout, retry
            )
        )

    def wait(self) -> None:
        """Blocks until the connection ends for good (see :meth:`polysio.AsyncClient.wait`)."""
        thread = self._live()
        done = threading.Event()

        async def wait() -> None:
            try:
                await self._client.wait()
            finally:
                done.set()

        fut = thread.run_soon(wait())
        try:
            while not done.wait(0.2):
                pass
        finally:
            fut.cancel()

    def disconnect(self) -> None:
        """Disconnects every namespace and closes the connection."""
        if not self._closed:
            self._thread.run(self._client.disconnect())

    def shutdown(self) -> None:
        """Disconnects and stops the client's threads; it cannot connect again."""
        if self._closed:
            return
        try:
            self._thread.run(self._client.shutdown())
        finally:
            self._closed = True
            self._thread.stop()
            self._executor.shutdown(wait=False)

    def emit(
        self,
        event: str,
        data: Any = None,
        namespace: Optional[str] = None,
        callback: Optional[Callable[..., Any]] = None,
    ) -> None:
        """Emits an event (see :meth:`polysio.AsyncClient.emit`)."""
        self._client._emit(event, data, namespace, callback)

    def send(self, data: Any, namespace: Optional[str] = None, callback: Optional[Callable[..., Any]] = None) -> None:
        """Emits a ``message`` event."""
        self._client._emit("message", data, namespace, callback)

    def call(
        self,
        event: str,
        data: Any = None,
        namespace: Optional[str] = None,
        timeout: Optional[float] = 60,
    ) -> Any:
        """Emits and waits for the server's ack (see :meth:`polysio.AsyncClient.call`)."""
        if self._thread.on_loop_thread():
            raise RuntimeError("call() would wait on the thread that delivers the ack")
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._client._call_native(event, data, namespace, timeout, _base.completer(fut))
        return _base.ack_result(fut.result())


__all__ = ["Client"]
