"""Native core of the polysio package (use the `polysio` package, not this module)."""

from typing import Any, Callable, Optional, Union, final

__all__ = [
    "Ack",
    "ConnectReply",
    "NativeClient",
    "NativeServer",
    "before_exit",
    "roundtrip",
    "set_worker_threads",
    "__version__",
]

__version__: str

_Done = Callable[[Optional[list[Any]], Optional[BaseException]], None]
_Args = Union[list[Any], tuple[Any, ...]]

def set_worker_threads(n: int) -> None: ...
def before_exit() -> None: ...
def roundtrip(obj: Any) -> Any: ...

@final
class Ack:
    def send(self, args: _Args) -> None: ...
    @property
    def pending(self) -> bool: ...

@final
class ConnectReply:
    def accept(self) -> None: ...
    def refuse(self, message: str, data: Any = None) -> None: ...

@final
class NativeServer:
    def __new__(
        cls,
        *,
        path: str = "/socket.io/",
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        upgrade_timeout: float = 10.0,
        max_http_buffer_size: int = 1000000,
        transports: Optional[list[str]] = None,
        allow_upgrades: bool = True,
        cors_allowed_origins: Union[None, bool, str, list[str]] = None,
        cors_credentials: bool = False,
        cors_methods: Optional[list[str]] = None,
        cors_allowed_headers: Optional[list[str]] = None,
        cors_exposed_headers: Optional[list[str]] = None,
        cors_max_age: Optional[int] = None,
        cookie: Union[None, str, dict[str, Any]] = None,
        allow_request: Optional[Callable[[dict[str, Any]], Any]] = None,
        connect_timeout: float = 45.0,
        connection_state_recovery: Union[None, bool, dict[str, Any]] = None,
        max_attachments: int = 1000,
        static_files: Optional[dict[str, Union[str, dict[str, str]]]] = None,
    ) -> NativeServer: ...
    def add_namespace(self, name: str) -> None: ...
    def set_waker(self, waker: Optional[Callable[[], Any]]) -> None: ...
    def drain(self) -> list[tuple[Any, ...]]: ...
    def listen(self, host: str, port: int) -> tuple[str, int]: ...
    def close(self) -> None: ...
    def release(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def emit(
        self,
        nsp: str,
        event: str,
        args: _Args,
        to: Optional[list[str]] = None,
        skip: Optional[list[str]] = None,
    ) -> None: ...
    def emit_with_ack(
        self,
        nsp: str,
        sid: str,
        event: str,
        args: _Args,
        callback: _Done,
        timeout: Optional[float] = None,
    ) -> None: ...
    def enter_room(self, nsp: str, sid: str, room: str) -> None: ...
    def leave_room(self, nsp: str, sid: str, room: str) -> None: ...
    def rooms(self, nsp: str, sid: str) -> list[str]: ...
    def close_room(self, nsp: str, room: str) -> None: ...
    def disconnect(self, nsp: str, sid: str) -> bool: ...
    def transport(self, nsp: str, sid: str) -> str: ...
    def sockets(self, nsp: str) -> list[str]: ...

@final
class NativeClient:
    def __new__(
        cls,
        url: str,
        *,
        transports: Optional[list[str]] = None,
        path: str = "/socket.io/",
        headers: Optional[dict[str, str]] = None,
        reconnection: bool = True,
        reconnection_attempts: Optional[int] = None,
        reconnection_delay: float = 1.0,
        reconnection_delay_max: float = 5.0,
        randomization_factor: float = 0.5,
        timeout: float = 20.0,
        ack_timeout: Optional[float] = None,
        send_buffer_max: int = 10000,
        upgrade: bool = True,
    ) -> NativeClient: ...
    def set_waker(self, waker: Optional[Callable[[], Any]]) -> None: ...
    def drain(self) -> list[tuple[Any, ...]]: ...
    def connect_namespace(self, nsp: str, auth: Any = None) -> None: ...
    def emit(self, nsp: str, event: str, args: _Args) -> None: ...
    def emit_with_ack(
        self,
        nsp: str,
        event: str,
        args: _Args,
        callback: _Done,
        timeout: Optional[float] = None,
    ) -> None: ...
    def sid(self, nsp: str) -> Optional[str]: ...
    def transport(self) -> Optional[str]: ...
    def connected(self, nsp: str) -> bool: ...
    def active(self, nsp: str) -> bool: ...
    def disconnect(self) -> None: ...
    def shutdown(self, callback: _Done) -> None: ...
    def release(self) -> None: ...
