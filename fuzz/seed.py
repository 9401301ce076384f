#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets into fuzz/seeds/<target>/ from the test vectors and
samples in tests/data (their sources and licences: tests/data/README.md). Deterministic: the
same files every run. Usage: python3 fuzz/seed.py"""

import base64
import hashlib
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OUT = ROOT / "fuzz" / "seeds"
NOW = 1_700_000_000  # altinn_systemuser::fuzzing::NOW
ISSUER = "https://test.maskinporten.no/"  # altinn_systemuser::fuzzing::ISSUER


def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def write(target: str, data: bytes) -> None:
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def load(path: pathlib.Path):
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def payloads():
    """Sample token payloads with their times moved around NOW, in the samples' own layout."""
    for name in ["maskinporten-systemuser-token-payload.test.json", "altinn-exchanged-systemuser-token-payload.tt02.json"]:
        p = load(DATA / "samples" / name)
        if p is None:
            continue
        life = p.get("exp", 0) - p.get("iat", 0)
        p["iat"], p["exp"] = NOW - 10, NOW - 10 + life
        yield json.dumps(p, indent=2).encode()
        p["iss"] = ISSUER
        p["aud"] = "https://api.example.no/"
        yield json.dumps(p, separators=(",", ":")).encode()


HEADERS = [
    {"alg": "RS256", "kid": "fuzz", "typ": "JWT"},
    {"alg": "RS384", "kid": "fuzz"},
    {"alg": "RS512", "kid": "fuzz", "typ": "at+jwt"},
    {"alg": "RS256", "kid": "other"},
    {"alg": "none", "kid": "fuzz"},
    {"alg": "RS256", "kid": "fuzz", "jku": "https://evil.example/"},
]


def main() -> None:
    jws = load(DATA / "vectors" / "wycheproof" / "json_web_signature_test.json")
    vectors = [t["jws"] for g in jws["testGroups"] for t in g["tests"] if isinstance(t.get("jws"), str)]

    # signed_token: control byte, header JSON, 0xFF, payload JSON.
    for ctrl in [0, 1, 2, 3, 0x14]:
        for header in HEADERS:
            for payload in payloads():
                write("signed_token", bytes([ctrl]) + json.dumps(header).encode() + b"\xff" + payload)

    # authorization_header: control byte, header value.
    for payload in payloads():
        for header in HEADERS:
            token = f"{b64(json.dumps(header).encode())}.{b64(payload)}.{b64(bytes(256))}"
            write("authorization_header", b"\x00Bearer " + token.encode())
    for v in vectors[:200]:
        write("authorization_header", b"\x00Bearer " + v.encode())
    for v in ["Basic dXNlcjpwYXNz", "bearer abc==", "Bearer a.b.c", "Bearer ", "DPoP a.b.c"]:
        write("authorization_header", b"\x00" + v.encode())

    # key_documents: control byte 0 a JWKS, 1 metadata, 2 Cache-Control.
    jwk = load(DATA / "vectors" / "wycheproof" / "json_web_key_test.json")
    for g in jwk["testGroups"]:
        for key in [g.get("private"), g.get("public")]:
            if isinstance(key, dict):
                if "keys" in key:
                    write("key_documents", b"\x00" + json.dumps(key).encode())
                else:
                    write("key_documents", b"\x00" + json.dumps({"keys": [key]}).encode())
    meta = (DATA / "samples" / "maskinporten-wellknown.test.json").read_bytes()
    write("key_documents", b"\x01" + meta)
    for cc in [b"public, max-age=3600", b"no-store", b"max-age=\"60\", must-revalidate"]:
        write("key_documents", b"\x02" + cc)

    # pdp_answer: control byte, response body.
    bodies = sorted((DATA / "vectors").glob("*/responses/**/*.json")) + sorted((DATA / "samples").glob("pdp-response-*.json"))
    for path in bodies:
        for ctrl in [0, 1, 2, 3]:
            write("pdp_answer", bytes([ctrl]) + path.read_bytes())

    # party: numbers, ISO 6523 ids, template and path.
    for s in ["310702641", "0192:310702641", "310702642", "01010012356", "9236090160",
              "iso6523-actorid-upis 0192:991825827", "iso6523-actorid-upis 0088:123",
              "/krav/{orgnr}\n/krav/310702641", "/a/{p}/b\n/a/01010012356/b", "/{x}\n//"]:
        write("party", s.encode())


if __name__ == "__main__":
    main()
