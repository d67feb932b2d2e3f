"""Values convert directly between Python and the core: every supported type, nested binary,
clear errors for the rest; and the same values survive a trip over the wire."""

from __future__ import annotations

import datetime
import enum
import math

import pytest

import polysio
from polysio import _polysio

from conftest import url_of


class Color(enum.IntEnum):
    RED = 1


class Name(str, enum.Enum):
    ALICE = "alice"


NESTED = {
    "null": None,
    "yes": True,
    "no": False,
    "int": 42,
    "neg": -7,
    "max": 2**63 - 1,
    "min": -(2**63),
    "float": 2.5,
    "str": "héllo ✓",
    "bin": b"\x00\x01\xff",
    "list": [1, "two", b"three", [b"four", {"five": b"5"}]],
    "empty": {"list": [], "dict": {}, "bytes": b""},
}


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -1, 2**63 - 1, -(2**63), 1.5, -0.0, "", "ünïcode", b"", b"\x00bin", [], {}, NESTED],
)
def test_supported_values_round_trip(value: object) -> None:
    assert _polysio.roundtrip(value) == value
    assert type(_polysio.roundtrip(value)) is type(value)


def test_conversions_of_neighbouring_types() -> None:
    assert _polysio.roundtrip((1, (2, b"x"))) == [1, [2, b"x"]]
    assert _polysio.roundtrip(bytearray(b"ab")) == b"ab"
    assert _polysio.roundtrip(memoryview(b"cd")) == b"cd"
    assert _polysio.roundtrip(Color.RED) == 1
    assert _polysio.roundtrip(Name.ALICE) == "alice"
    # dict keys as json.dumps writes them
    assert _polysio.roundtrip({1: "a", 2.5: "b", None: "d"}) == {"1": "a", "2.5": "b", "null": "d"}
    assert _polysio.roundtrip({True: "t", False: "f"}) == {"true": "t", "false": "f"}
    assert math.isnan(_polysio.roundtrip(float("nan")))


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ({1, 2}, "set"),
        (object(), "object"),
        (datetime.date(2024, 1, 1), "date"),
        ([1, {"deep": [complex(1, 2)]}], "complex"),
        (lambda: None, "function"),
    ],
)
def test_unsupported_types_raise_type_error_naming_them(value: object, name: str) -> None:
    with pytest.raises(TypeError, match=name):
        _polysio.roundtrip(value)


def test_bad_dict_keys_and_values() -> None:
    with pytest.raises(TypeError, match="dict keys must be"):
        _polysio.roundtrip({(1, 2): "tuple key"})
    with pytest.raises(OverflowError, match="64 bits"):
        _polysio.roundtrip(2**64)
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="circular"):
        _polysio.roundtrip(loop)


async def test_values_cross_the_wire_both_ways(make_server, make_client, recorder) -> None:
    sio = make_server()
    seen = recorder()

    @sio.event
    async def echo(sid, *args):
        seen.add(args)
        await sio.emit("echoed", tuple(args), to=sid)
        return tuple(args)

    url = url_of(sio.start("127.0.0.1", 0))
    client = make_client()
    back = recorder()
    client.on("echoed", lambda *args: back.add(args))
    await client.connect(url)

    payload = (NESTED, [b"top", None], "last")
    assert await client.call("echo", payload, timeout=10) == (NESTED, [b"top", None], "last")
    assert (await seen.wait_for(1))[0] == (NESTED, [b"top", None], "last")
    assert (await back.wait_for(1))[0] == (NESTED, [b"top", None], "last")
    # data conventions: a single value, none, a tuple of several
    assert await client.call("echo", b"only") == b"only"
    assert await client.call("echo") is None
    assert await client.call("echo", ({"a": 1},)) == {"a": 1}


async def test_unsupported_type_in_emit_raises_and_connection_goes_on(make_server, make_client) -> None:
    sio = make_server()

    @sio.event
    def ping(sid, x):
        return x

    url = url_of(sio.start("127.0.0.1", 0))
    client = make_client()
    await client.connect(url)
    with pytest.raises(TypeError, match="set"):
        await client.emit("ping", {"bad": {1, 2}})
    with pytest.raises(TypeError, match="Decimal"):
        import decimal

        await sio.emit("ping", decimal.Decimal("1.5"))
    with pytest.raises(TypeError):
        await sio.emit(123)  # type: ignore[arg-type]
    assert await client.call("ping", "still fine") == "still fine"


def test_package_exports() -> None:
    assert polysio.__version__
    for name in polysio.__all__:
        assert hasattr(polysio, name), name
    assert issubclass(polysio.ConnectionRefusedError, polysio.ConnectionError)
    assert issubclass(polysio.InvalidArgumentError, ValueError)
    for exc in (
        polysio.ConnectionError,
        polysio.TimeoutError,
        polysio.DisconnectedError,
        polysio.BadNamespaceError,
        polysio.ShutdownError,
        polysio.BufferFullError,
        polysio.InvalidArgumentError,
    ):
        assert issubclass(exc, polysio.SocketIOError)
