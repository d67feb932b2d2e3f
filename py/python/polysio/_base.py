"""What the server and the client share: handler registration and lookup (python-socketio's
rules), the calling conventions of data, returns and acks, and running handlers on the
asyncio loop (or on worker threads for the synchronous classes)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import sys
import threading
import time
from typing import (
    Any,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Optional,
    TypeVar,
    Union,
    overload,
)

default_logger = logging.getLogger("polysio")

#: A plain (non-async) handler running longer than this, in seconds, is logged as blocking.
SLOW_HANDLER_SECONDS = 1.0

#: Most core events handled in one turn of the event loop (:meth:`Runner.drain`): the rest of a
#: burst waits in the core's queue, in compact form, and the loop serves its other work
#: between slices.
DRAIN_SLICE = 1024

Handler = Callable[..., Any]

#: asyncio can start a task eagerly (``Task(..., eager_start=True)``, Python 3.12+).
_EAGER = sys.version_info >= (3, 12)

# How Runner.event runs a handler: in a task (async def), called on the loop (plain function),
# or through Runner.dispatch (the synchronous classes: on the executor).
_TASK, _INLINE, _DISPATCH = 0, 1, 2
H = TypeVar("H", bound=Handler)


#: A room, or several.
Rooms = Union[str, Iterable[str]]


def rooms(value: Optional[Rooms]) -> Optional[list[str]]:
    """``to`` / ``skip_sid`` as a list (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return list(value)


def data_args(data: Any) -> list[Any]:
    """python-socketio's convention: a tuple is several arguments, None none, else one."""
    if data is None:
        return []
    if isinstance(data, tuple):
        return list(data)
    return [data]


def ack_result(args: list[Any]) -> Any:
    """What ``call()`` returns: None, the only argument, or a tuple of them."""
    if not args:
        return None
    if len(args) == 1:
        return args[0]
    return tuple(args)


def is_async(handler: Handler) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)
    )


def fit(handler: Handler, args: tuple[Any, ...], optional: int) -> tuple[Any, ...]:
    """Drops up to ``optional`` trailing arguments the handler does not accept (legacy
    ``connect(sid, environ)`` and ``disconnect(sid)`` signatures)."""
    try:
        sig = inspect.signature(handler)
    except (TypeError, ValueError):
        return args
    for drop in range(optional + 1):
        candidate = args[: len(args) - drop]
        try:
            sig.bind(*candidate)
            return candidate
        except TypeError:
            continue
    return args


def logger_for(logger: Union[bool, logging.Logger]) -> logging.Logger:
    if isinstance(logger, logging.Logger):
        return logger
    if logger and default_logger.level == logging.NOTSET:
        default_logger.setLevel(logging.INFO)
    return default_logger


class Handlers:
    """Handlers by namespace and event name; ``'*'`` is a catch-all for either."""

    def __init__(self, reserved: tuple[str, ...]) -> None:
        self.reserved = reserved
        self.by_namespace: dict[str, dict[str, Handler]] = {}
        self.on_new_namespace: Optional[Callable[[str], None]] = None

    def add(self, event: str, handler: Handler, namespace: Optional[str]) -> None:
        if not isinstance(event, str):
            raise TypeError(f"event must be a str, not {type(event).__name__}")
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        namespace = namespace or "/"
        new = namespace not in self.by_namespace
        self.by_namespace.setdefault(namespace, {})[event] = handler
        if new and self.on_new_namespace is not None:
            self.on_new_namespace(namespace)

    def namespaces(self) -> list[str]:
        return [n for n in self.by_namespace if n != "*"]

    def resolve(
        self, event: str, namespace: str, args: tuple[Any, ...]
    ) -> tuple[Optional[Handler], tuple[Any, ...]]:
        """The handler for ``event`` on ``namespace`` and the arguments to call it with."""
        own = self.by_namespace.get(namespace)
        if own is not None:
            if event in own:
                return own[event], args
            if event not in self.reserved and "*" in own:
                return own["*"], (event, *args)
        anyns = self.by_namespace.get("*")
        if anyns is not None:
            if event in anyns:
                return anyns[event], (namespace, *args)
            if event not in self.reserved and "*" in anyns:
                return anyns["*"], (event, namespace, *args)
        return None, args


class Registry:
    """``on`` and ``event``, python-socketio's ways to register handlers."""

    _handlers: Handlers
    #: The synchronous classes take plain functions only: (this class, the async one).
    _plain_only: Optional[tuple[str, str]] = None

    @overload
    def on(
        self, event: str, handler: None = None, namespace: Optional[str] = None
    ) -> Callable[[H], H]: ...
    @overload
    def on(self, event: str, handler: H, namespace: Optional[str] = None) -> H: ...

    def on(
        self, event: str, handler: Optional[Handler] = None, namespace: Optional[str] = None
    ) -> Any:
        """Registers ``handler`` for ``event`` on ``namespace`` (``"/"``); a decorator when
        ``handler`` is omitted. ``"*"`` as the event (or the namespace) is a catch-all: the
        handler then gets the event name (namespace) first. The class documentation lists the
        arguments each handler gets."""

        def register(h: H) -> H:
            if self._plain_only is not None and is_async(h):
                cls, other = self._plain_only
                raise TypeError(
                    f"{cls} handlers must be plain functions; {h!r} is async "
                    f"(use {other} for async def handlers)"
                )
            self._handlers.add(event, h, namespace)
            return h

        if handler is None:
            return register
        return register(handler)

    def event(self, handler: H) -> H:
        """Registers a handler named after the function: ``@sio.event def chat(...)``."""
        return self.on(handler.__name__, handler)


class Runner:
    """Runs handlers for a server or client.

    On the asyncio classes, ``async def`` handlers run as tasks on the loop and plain functions
    are called on the loop directly (as python-socketio does). The synchronous classes set an
    ``executor``: plain handlers then run on its threads, so one that blocks holds up no other.
    """

    def __init__(self, logger: logging.Logger, event_label: str = "{}") -> None:
        self.logger = logger
        #: How an event handler is named in logs: ``event_label.format(event)``.
        self.event_label = event_label
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.executor: Optional[concurrent.futures.Executor] = None
        self.tasks: set[asyncio.Task[Any]] = set()
        #: :meth:`_plain` of the handlers seen (they are few; asking inspect each time is slow).
        self._by_handler: dict[Handler, int] = {}

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def inline(self, handler: Handler) -> bool:
        """True when the handler is called right away on the loop."""
        return self.executor is None and not is_async(handler)

    def call_inline(self, what: str, handler: Handler, args: tuple[Any, ...]) -> Any:
        start = time.monotonic()
        try:
            return handler(*args)
        finally:
            took = time.monotonic() - start
            if took > SLOW_HANDLER_SECONDS:
                self._slow(what, handler, took)

    def _slow(self, what: str, handler: Handler, took: float) -> None:
        self.logger.warning(
            "%s handler %s blocked the event loop for %.1f s; use an async def "
            "handler (or polysio.Server, which runs plain handlers on threads)",
            what,
            getattr(handler, "__qualname__", handler),
            took,
        )

    async def run(self, what: str, handler: Handler, args: tuple[Any, ...]) -> Any:
        """Runs a handler to completion and returns its result (exceptions propagate)."""
        if self.executor is not None and not is_async(handler):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, functools.partial(handler, *args))
        result = self.call_inline(what, handler, args) if not is_async(handler) else handler(*args)
        if inspect.isawaitable(result):
            result = await result
        return result

    def dispatch(
        self,
        what: str,
        handler: Handler,
        args: tuple[Any, ...],
        then: Optional[Callable[[Any], None]] = None,
        after: Optional[Callable[[], None]] = None,
    ) -> None:
        """Runs a handler without waiting for it: inline when it is a plain function on an
        asyncio class, else as a task. ``then(result)`` follows success (errors are logged and
        the connection goes on); ``after()`` follows either."""
        if self.inline(handler):
            try:
                result = self.call_inline(what, handler, args)
            except Exception as exc:
                self.failed(what, handler, exc)
                if after is not None:
                    after()
                return
            if not inspect.isawaitable(result):
                if then is not None:
                    then(result)
                if after is not None:
                    after()
                return
            awaitable: Awaitable[Any] = result
        else:
            awaitable = self.run(what, handler, args)

        async def finish() -> None:
            try:
                r = await awaitable
            except Exception as exc:
                self.failed(what, handler, exc)
                return
            finally:
                if after is not None:
                    after()
            if then is not None:
                then(r)

        self.spawn(finish())

    def _kind(self, handler: Handler) -> int:
        """How :meth:`event` runs ``handler`` (``_TASK``, ``_INLINE`` or ``_DISPATCH``);
        remembered per handler (asking ``inspect`` each time is slow)."""
        if self.executor is not None:
            kind = _DISPATCH
        else:
            kind = _TASK if is_async(handler) else _INLINE
        try:
            self._by_handler[handler] = kind
        except TypeError:  # unhashable callable: asked each time
            pass
        return kind

    def event(
        self, event: str, handler: Handler, args: tuple[Any, ...], ack: Any, hold: Any = None
    ) -> None:
        """Runs the handler of an event from the peer (the hot path); its result is the ack
        when the peer asked for one (``ack``: the native ``Ack``, or None). Same behaviour as
        ``dispatch(..., then=ack_sender(ack, event))``, with fewer steps: an ``async def``
        handler runs in one task that also sends the ack (started eagerly where asyncio
        supports it, Python 3.12 and later, unless the loop has a task factory); a plain one
        is called right here.

        ``hold`` (the native ``Hold``, or None) is the event's place in its connection's
        backpressure gate: released once the handler is done (a task's when it finishes, a
        thread's when it returns; a plain handler's with the batch :meth:`drain` took it
        in), so that a connection whose events are not handled yet is not read further."""
        try:
            kind = self._by_handler[handler]
        except (KeyError, TypeError):
            kind = self._kind(handler)
        if kind == _INLINE:
            start = time.monotonic()
            try:
                result = handler(*args)
            except Exception as exc:
                self.failed(self.event_label.format(event), handler, exc)
                return
            finally:
                took = time.monotonic() - start
                if took > SLOW_HANDLER_SECONDS:
                    self._slow(self.event_label.format(event), handler, took)
            if inspect.isawaitable(result):
                self._await_then(event, handler, result, ack, hold)
            elif ack is not None:
                self._reply(ack, result, event)
            return
        if kind == _DISPATCH:
            self.dispatch(
                self.event_label.format(event),
                handler,
                args,
                self.ack_sender(ack, event),
                None if hold is None else hold.release,
            )
            return
        try:
            coro = handler(*args)
        except Exception as exc:  # e.g. the wrong number of arguments
            self.failed(self.event_label.format(event), handler, exc)
            return
        self._await_then(event, handler, coro, ack, hold)

    def _await_then(
        self, event: str, handler: Handler, coro: Awaitable[Any], ack: Any, hold: Any = None
    ) -> None:
        """Awaits ``coro`` in a task of its own, then sends its result as the ack and releases
        ``hold``."""
        # The task forgets itself when done: cheaper than a done callback, and than
        # asyncio.current_task() (a getpid() system call on Python 3.11).
        me: list[asyncio.Task[Any]] = []
        loop = self.loop
        assert loop is not None
        if loop.get_task_factory() is not None:
            task = loop.create_task(self._event_task(event, handler, coro, ack, me, hold))
        elif _EAGER:
            task = asyncio.Task(  # type: ignore[call-arg,unused-ignore]
                self._event_task(event, handler, coro, ack, me, hold), loop=loop, eager_start=True
            )
        else:
            task = asyncio.Task(self._event_task(event, handler, coro, ack, me, hold), loop=loop)
        if not task.done():
            me.append(task)
            self.tasks.add(task)

    async def _event_task(
        self,
        event: str,
        handler: Handler,
        coro: Awaitable[Any],
        ack: Any,
        me: list[asyncio.Task[Any]],
        hold: Any,
    ) -> None:
        try:
            result = await coro
        except Exception as exc:
            self.failed(self.event_label.format(event), handler, exc)
            return
        finally:
            if me:
                self.tasks.discard(me[0])
            # Released even when cancelled (shutdown) or failed: the event is done with.
            if hold is not None:
                hold.release()
        if ack is not None:
            self._reply(ack, result, event)

    def _reply(self, ack: Any, result: Any, event: str) -> None:
        try:
            ack.reply(result)
        except Exception as exc:
            self.logger.error("cannot send the ack of %r", event, exc_info=exc)

    def ack_sender(self, ack: Any, event: str) -> Optional[Callable[[Any], None]]:
        """``then`` for an event the peer wants acknowledged: sends the handler's result."""
        if ack is None:
            return None

        def send(result: Any) -> None:
            self._reply(ack, result, event)

        return send

    def drain(
        self,
        take: Callable[[int], list[tuple[Any, ...]]],
        dispatch: Callable[[tuple[Any, ...]], None],
        handlers: Optional[Handlers] = None,
    ) -> bool:
        """Takes the queued core events and handles each: ``("done", callback, args, exc)``
        completes a native call; ``("event", ns, event, args, ack, hold)`` with a handler of
        its own in ``handlers`` goes straight to :meth:`event`; the others go to ``dispatch``.
        One failing event does not stop the others. The batch is let go on return, which
        releases the holds of the events handled inline (the others' went with them).

        Takes at most :data:`DRAIN_SLICE` events; returns True when more may be waiting (the
        caller drains again on the next turn of the loop: ``loop.call_soon``)."""
        try:
            events = take(DRAIN_SLICE)
        except Exception as exc:  # pragma: no cover - conversion failures are bugs
            self.logger.error("cannot read events from the core", exc_info=exc)
            return False
        more = len(events) >= DRAIN_SLICE
        by_ns = handlers.by_namespace if handlers is not None else {}
        ev: Any = None
        try:
            for ev in events:
                try:
                    kind = ev[0]
                    if kind == "event":
                        own = by_ns.get(ev[1])
                        handler = own.get(ev[2]) if own is not None else None
                        if handler is not None:
                            self.event(ev[2], handler, ev[3], ev[4], ev[5])
                        else:
                            dispatch(ev)
                    elif kind == "done":
                        ev[1](ev[2], ev[3])
                    else:
                        dispatch(ev)
                except Exception as exc:
                    self.logger.error("error dispatching %s", ev[0], exc_info=exc)
        finally:
            # Even if a logged traceback keeps this frame alive, its events are let go.
            events.clear()
            ev = None
        return more

    def ack_callback(self, callback: Callable[..., Any]) -> "Done":
        """The native ``callback(args, exc)`` for a user's ``callback(*args)`` of an emit: called
        with the peer's ack; not called if it never comes (logged)."""

        def done(args: Optional[list[Any]], exc: Optional[BaseException]) -> None:
            if exc is not None or args is None:
                self.logger.info("ack callback %s not called: %s", callback, exc)
                return
            self.dispatch("ack callback", callback, tuple(args))

        return done

    def failed(self, what: str, handler: Handler, exc: BaseException) -> None:
        self.logger.error(
            "%s handler %s raised; the connection goes on",
            what,
            getattr(handler, "__qualname__", handler),
            exc_info=(type(exc), exc, exc.__traceback__),
        )

    async def drain_tasks(self, grace: float) -> None:
        """Waits up to ``grace`` seconds for running handlers, then cancels what is left."""
        me = asyncio.current_task()
        tasks = [t for t in self.tasks if t is not me]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=grace)


class Threads:
    """Helpers of the synchronous classes (python-socketio's names)."""

    def start_background_task(
        self, target: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> threading.Thread:
        """Runs ``target(*args, **kwargs)`` on a daemon thread."""
        t = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
        t.start()
        return t

    def sleep(self, seconds: float = 0) -> None:
        """``time.sleep``."""
        time.sleep(seconds)


def running_loop(what: str) -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"{what} must be called with an asyncio event loop running (inside async code); "
            "without asyncio, use the synchronous classes polysio.Server / polysio.Client"
        ) from None


Done = Callable[[Optional[list[Any]], Optional[BaseException]], None]


def attach_waker(
    native: Any, loop: asyncio.AbstractEventLoop, drain: Callable[[], Any], batch_acks: bool
) -> Optional[int]:
    """Has the core wake ``drain`` on ``loop`` when it has events: through a descriptor the
    loop watches (``add_reader``: Unix selector loops and uvloop), so the core's threads never
    take the GIL for it; else through ``call_soon_threadsafe`` (which the core also keeps to
    notice a closed loop). With ``batch_acks`` (every ack is answered on the loop's thread),
    the acks answered in one turn of the loop go to the core together on the next. Returns the
    watched descriptor, for :func:`detach_waker`."""
    native.set_waker(functools.partial(loop.call_soon_threadsafe, drain))
    if batch_acks:
        native.set_ack_flusher(functools.partial(loop.call_soon, native.flush_acks))
    fd: Optional[int] = native.wake_fd()
    if fd is None:
        return None
    try:
        loop.add_reader(fd, drain)
    except NotImplementedError:
        return None
    native.use_wake_fd()
    return fd


def detach_waker(native: Any, loop: Optional[asyncio.AbstractEventLoop], fd: Optional[int]) -> None:
    """Undoes :func:`attach_waker`."""
    native.set_ack_flusher(None)
    native.set_waker(None)
    if fd is not None and loop is not None and not loop.is_closed():
        loop.remove_reader(fd)


def completer(fut: Union[asyncio.Future[Any], concurrent.futures.Future[Any]]) -> Done:
    """The ``callback(args, exc)`` the native layer calls (on the loop) to complete ``fut``.
    Once ``fut`` is done (or cancelled) later calls do nothing."""

    def done(args: Optional[list[Any]], exc: Optional[BaseException]) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(args)

    return done
