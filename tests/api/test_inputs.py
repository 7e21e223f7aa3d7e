"""NUL characters are refused at the door with a 422 that says so (api/inputs.py),
wherever they are: path, query, JSON body, login form."""

from __future__ import annotations

import pytest

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "where"),
    [
        ("GET", "/api/areas", {"params": {"within": "44\x0053"}}, "the query"),
        ("GET", "/api/areas/44%0053", {}, "the path"),
        ("POST", "/api/rounds", {"json": {"area_code": "x\u0000", "name": "n",
                                          "start_date": "2020-02-01", "end_date": "2020-02-02"}},
         "the body"),
        ("POST", "/api/auth/token", {"data": {"username": "a\x00b", "password": "whatever1"}},
         "the body"),
    ],
)  # fmt: skip
def test_a_nul_is_refused_with_the_reason(client, method, path, kwargs, where) -> None:
    response = client.request(method, path, **kwargs)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"].startswith(f"{where} holds a NUL character")


def test_text_without_nul_passes(client) -> None:
    assert client.get("/api/auth/me").status_code == 200
