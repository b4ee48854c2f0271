"""/docs and /redoc work without the internet: every script, style and icon they load comes from the API."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from api.main import create_app
from tests.support.temporal import make_settings

EXPECTED_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


@pytest.fixture
async def docs() -> AsyncIterator[httpx.AsyncClient]:
    """The pages need no database or Temporal: the app without its lifespan serves them."""
    transport = httpx.ASGITransport(app=create_app(make_settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def referenced(html: str) -> list[str]:
    """Every URL the page loads: src and href attributes, and the schema URL handed to the script."""
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    urls += re.findall(r"""(?:url|spec-url)\s*[:=]\s*["']([^"']+)["']""", html)
    return urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_everything_from_the_api_itself(docs: httpx.AsyncClient, page: str) -> None:
    response = await docs.get(page)  # no API key: the docs are public
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert re.findall(r"https?://[^\s\"'<>]+", response.text) == []  # no CDN, no fonts, no favicon host

    urls = referenced(response.text)
    assert any(url.endswith(".js") for url in urls)
    assert "/openapi.json" in urls
    for url in urls:
        assert url.startswith("/"), url
        asset = await docs.get(url)
        assert asset.status_code == 200, url
        kind = next(t for ext, t in EXPECTED_TYPES.items() if url.endswith(ext))
        assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 1000, url  # the real bundle, not an empty placeholder
