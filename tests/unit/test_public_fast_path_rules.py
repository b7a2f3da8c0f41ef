"""The fast path's pure rules (services/api/public_cache.py): which Accept-Encoding takes gzip, the query key
(parameters in any order, repeated names kept in order), the representation chosen (gzip, its ETag, 304) and
the bound of the fast path's table."""

import gzip
from typing import Any

import pytest

from services.api.public_cache import Answer, PublicAnswers, accepts_gzip, etag_of, query_key, representation


@pytest.mark.parametrize(("header", "expected"), [
    (None, False), ("", False), ("identity", False), ("gzip", True), ("GZIP", True), ("br, gzip;q=0.5", True),
    ("gzip;q=0", False), ("gzip; q=0.0", False), ("*", True), ("*;q=0", False), ("deflate, br", False),
    ("x-gzip", True),
])
def test_which_accept_encoding_takes_gzip(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_the_query_key_ignores_the_order_of_distinct_parameters_only() -> None:
    assert query_key(b"q=x&year=2024") == query_key(b"year=2024&q=x")
    assert query_key(b"q=x&q=y") != query_key(b"q=y&q=x")  # a repeated name: as given
    assert query_key(b"q=x") != query_key(b"q=y") and query_key(b"") == query_key(b"")


def _answer(body: bytes) -> Answer:
    return Answer((1, 1), body, etag_of(body))


def test_the_representation_is_gzip_when_accepted_with_its_own_etag() -> None:
    answer = _answer(("公示" * 400).encode())
    status, headers, body = representation(answer, "application/json", "gzip", None)
    named = dict(headers)
    assert status == 200 and named[b"content-encoding"] == b"gzip" and named[b"vary"] == b"Accept-Encoding"
    assert gzip.decompress(body) == answer.body and named[b"etag"].decode() == answer.etag[:-1] + '-gzip"'
    assert answer.gzipped() is body  # computed once
    status, headers, body = representation(answer, "application/json", None, named[b"etag"].decode())
    assert status == 200 and body == answer.body  # the gzip ETag does not name the plain representation
    status, headers, body = representation(answer, "application/json", "gzip", named[b"etag"].decode())
    assert status == 304 and body == b"" and b"content-type" not in dict(headers)
    small = _answer(b"[]")
    assert b"content-encoding" not in dict(representation(small, "application/json", "gzip", None)[1])


def test_the_fast_path_table_is_bounded_in_entries_and_bytes() -> None:
    class Runner:  # the table never asks the runner anything
        running_here = True

    answers = PublicAnswers(Runner(), max_entries=3, max_bytes=2500)  # type: ignore[arg-type]

    def scope(q: str) -> dict[str, Any]:
        return {"path": "/public/results", "query_string": q.encode()}

    for n in range(5):
        answers.remember(scope(f"q={n}"), _answer(b"x" * 100), "text/html")  # type: ignore[arg-type]
    assert len(answers._served) == 3
    for n in range(3):
        answers.remember(scope(f"big={n}"), _answer(b"y" * 1000), "text/html")  # type: ignore[arg-type]
    assert answers._served_bytes <= 2500 and len(answers._served) == 2
    answers.remember({"path": "/elsewhere", "query_string": b""}, _answer(b"z"), "text/html")  # type: ignore[arg-type]
    assert all(key[0] == "/public/results" for key in answers._served)  # type: ignore[index]
    answers.remember(scope("none"), Answer(None, b"n", etag_of(b"n")), "text/html")  # type: ignore[arg-type]
    assert all(key[1] != ("none",) for key in answers._served)  # type: ignore[index]  # no positions: not kept

