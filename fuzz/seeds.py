#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/ (file names: sha1 of
the content, as libFuzzer names them). The seeds are Engine.IO v4 / Socket.IO v5 traffic as the
reference implementations (engine.io 6, socket.io 4.8, socket.io-client 4.8) put it on the wire,
in each target's input format (see core/src/fuzzing.rs). Run once; fuzzing and `cargo fuzz cmin`
take it from there."""
import hashlib
import json
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SID = "lv_VI97HAXpY6yYWAAAC"
HANDSHAKE = json.dumps(
    {"sid": SID, "upgrades": ["websocket"], "pingInterval": 25000, "pingTimeout": 20000,
     "maxPayload": 1000000}, separators=(",", ":"))
PLACEHOLDER = '{"_placeholder":true,"num":%d}'

# Socket.IO packets (without the Engine.IO `4`), text part and attachments.
SIO = [
    ("0", []),
    ("0/admin,", []),
    ('0{"token":"123"}', []),
    ('0/admin,{"token":"123"}', []),
    ('0{"sid":"oSO0OpakMV_3jnilAAAA"}', []),
    ('0{"sid":"oSO0OpakMV_3jnilAAAA","pid":"CbI8e5dPsvrcX3D4AAAB"}', []),
    ('0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}', []),
    ("1", []),
    ("1/admin,", []),
    ('2["hello"]', []),
    ('2["chat message","hi there",1,2.5,true,null,{"a":[1,2,{"b":"c"}]}]', []),
    ('212["foo","bar"]', []),
    ('2/admin,13["foo",{"x":1}]', []),
    ('2["evt","CbI8e5dPsvrcX3D4AAAB-0"]', []),
    ('2[42,"numeric event name"]', []),
    ("3/admin,13[\"bar\"]", []),
    ('312[]', []),
    ('31["ok",{"status":200}]', []),
    ('4{"message":"Not authorized"}', []),
    ('4{"message":"Invalid namespace","data":{"code":3}}', []),
    ('4"Invalid namespace"', []),
    ('51-["baz",' + PLACEHOLDER % 0 + ']', [b"\x01\x02\x03"]),
    ('52-/admin,7["upload",' + PLACEHOLDER % 0 + ',{"meta":' + PLACEHOLDER % 1 + '}]',
     [b"\x00" * 16, bytes(range(256))]),
    ('51-12["file",{"name":"a.bin","data":' + PLACEHOLDER % 0 + '}]', [b"\xff\xd8\xff\xe0JFIF"]),
    ('61-/admin,15[' + PLACEHOLDER % 0 + ']', [b"\x03"]),
    ('62-4[' + PLACEHOLDER % 1 + ',' + PLACEHOLDER % 0 + ']', [b"a", b"b"]),
    ('53-["multi",' + ",".join(PLACEHOLDER % i for i in range(3)) + ']', [b"x", b"", b"zz"]),
]

EIO_TEXT = [
    "0" + HANDSHAKE,
    '0{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":100}',
    "1", "2", "3", "2probe", "3probe", "5", "6", "4hello", "4", "4héllo wörld €",
] + ["4" + t for t, _ in SIO]

URLS = [
    "/socket.io/?EIO=4&transport=polling&t=P0S5Krk",
    "/socket.io/?EIO=4&transport=polling&t=P0S5Kt8&sid=" + SID,
    "/socket.io/?EIO=4&transport=websocket&sid=" + SID,
    "/socket.io/?EIO=4&transport=websocket",
    "/socket.io/?EIO=3&transport=polling&t=P0S5Krk&b64=1",
    "/socket.io/?EIO=4&transport=polling&token=a%20b%2Bc&name=J%C3%BCrgen+M",
    "/engine.io/?EIO=4&transport=polling",
    "/socket.io?EIO=4&transport=polling",
    "/socket.io/socket.io.js",
    "/?EIO=4&transport=polling&sid=",
    "/socket.io/?transport=polling&EIO=4&sid=a&sid=b",
    "http://localhost:3000/socket.io/?EIO=4&transport=polling",
]

HEADERS_POLL = [
    "Host: localhost:3000",
    "User-Agent: node",
    "Accept: */*",
    "Connection: keep-alive",
]
HEADERS_WS = [
    "Host: localhost:3000",
    "Connection: Upgrade",
    "Upgrade: websocket",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
]
HEADERS_CORS = [
    "Host: localhost:3000",
    "Origin: https://example.com",
    "Access-Control-Request-Method: POST",
    "Access-Control-Request-Headers: content-type, x-a",
]
HEADERS_POST = [
    "Host: localhost:3000",
    "Content-Type: text/plain;charset=UTF-8",
    "Content-Length: 28",
]

JSON = [
    "null", "true", "false", "0", "-1", "1.5", "1e3", "-0", "9223372036854775807",
    "18446744073709551615", "-9223372036854775809", "1.7976931348623157e308", "5e-324",
    '"plain"', '"esc\\"aped\\\\ \\n\\t\\u0000\\u00e9\\ud83d\\ude00"', '"héllo €😀"',
    "[]", "{}", '[1,"x",null,true,{"a":[]}]',
    '{"sid":"oSO0OpakMV_3jnilAAAA","pid":"CbI8e5dPsvrcX3D4AAAB"}',
    '{"a":1,"a":2}', HANDSHAKE,
    "[" + PLACEHOLDER % 0 + "]", '{"f":' + PLACEHOLDER % 1 + ',"g":[' + PLACEHOLDER % 2 + ']}',
    '{"_placeholder":true,"num":"0"}', '{"_placeholder":true}', '{"_placeholder":false,"num":0}',
    "[" * 20 + "]" * 20, '{"message":"Not authorized","data":{"code":3}}',
]


def frames(text, attachments):
    out = struct.pack("<BH", 0, len(text.encode())) + text.encode()
    for a in attachments:
        out += struct.pack("<BH", 1, len(a)) + a
    return out


def b64(b):
    import base64
    return "b" + base64.b64encode(b).decode()


def seeds():
    s = {t: [] for t in ["engine_packet", "engine_payload", "sio_decoder", "json_value",
                         "client_handshake", "http_routing"]}
    for t in EIO_TEXT:
        s["engine_packet"].append(t.encode())
    s["engine_packet"] += [b"\x01\x02\x03", bytes(range(256)), b"\xff\xfe"]

    payloads = [
        ["4hello", b64(b"\x01\x02\x03\x04"), "2"],
        ["0" + HANDSHAKE],
        ["0" + HANDSHAKE, '40{"sid":"oSO0OpakMV_3jnilAAAA"}'],
        ["40"], ["40/admin,"], ["3"], ["6"], ["1"], ["2", "2", "2"],
        ['42["chat message","hi"]', '42["chat message","again"]', "3"],
        ['451-["baz",' + PLACEHOLDER % 0 + "]", b64(b"\x01\x02\x03")],
        ['452-/admin,7["up",' + PLACEHOLDER % 0 + "," + PLACEHOLDER % 1 + "]", b64(b""),
         b64(bytes(range(64)))],
        ["4héllo", "4€"], ["b"], ["bAA=="],
    ]
    for p in payloads:
        body = "\x1e".join(p).encode()
        s["engine_payload"].append(b"\xff\xff" + body)
        s["client_handshake"].append(body)
    s["engine_payload"].append(struct.pack("<H", 16) + b"4" + b"x" * 20)
    s["engine_payload"].append(struct.pack("<H", 100) + b"4hello\x1e4world")

    for text, att in SIO:
        s["sio_decoder"].append(bytes([10, 0xFF]) + frames(text, att))
    s["sio_decoder"].append(bytes([10, 1]) + frames(SIO[22][0], SIO[22][1]))  # over 64 bytes
    s["sio_decoder"].append(bytes([1, 0xFF]) + frames(SIO[22][0], SIO[22][1]))  # over 1 attachment
    s["sio_decoder"].append(bytes([10, 0xFF]) + frames(SIO[21][0], []) + frames('2["x"]', []))
    s["sio_decoder"].append(bytes([10, 0xFF]) + frames('2["a"]', [b"stray"]))
    s["sio_decoder"].append(bytes([10, 0xFF]) + b"".join(frames(t, a) for t, a in SIO))

    for j in JSON:
        for n in ([0, 3] if "_placeholder" in j else [0]):
            s["json_value"].append(bytes([n]) + j.encode())

    s["client_handshake"] += [HANDSHAKE.encode(), ("0" + HANDSHAKE).encode(),
                              b'0{"sid":"x","pingInterval":1e12,"pingTimeout":-1}',
                              b'0{"sid":"x","pingInterval":25000,"pingTimeout":20000,"upgrades":"websocket"}',
                              b'{"code":1,"message":"Session ID unknown"}']

    req = []
    for u in URLS:
        req.append((0, "GET", u, HEADERS_POLL))
    req += [
        (1, "GET", URLS[1], HEADERS_POLL),
        (1, "POST", URLS[1], HEADERS_POST),
        (17, "POST", URLS[1], HEADERS_POST),
        (1, "PUT", URLS[1], HEADERS_POLL),
        (1, "GET", URLS[2], HEADERS_WS),
        (2, "GET", URLS[1], HEADERS_POLL),
        (0, "GET", URLS[3], HEADERS_WS),
        (0, "POST", URLS[0], HEADERS_POST),
        (4, "OPTIONS", "/engine.io/?EIO=4&transport=polling", HEADERS_CORS),
        (8, "OPTIONS", "/?EIO=4&transport=polling", HEADERS_CORS),
        (8, "GET", "/?EIO=4&transport=polling&sid=x", HEADERS_CORS),
        (4, "GET", "/engine.io/?EIO=4&transport=websocket&sid=x", HEADERS_WS + ["Origin: null"]),
    ]
    for flags, m, u, h in req:
        s["http_routing"].append(bytes([flags]) + "\n".join([m, u] + h).encode())
    return s


def main():
    for target, inputs in seeds().items():
        d = os.path.join(ROOT, target)
        os.makedirs(d, exist_ok=True)
        for data in inputs:
            with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
                f.write(data)
        print(f"{target}: {len(inputs)} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
