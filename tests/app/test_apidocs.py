"""/docs and /redoc load nothing from outside the app (a lab's GPU box is often offline)."""
from __future__ import annotations

import re


def test_docs_pages_load_their_scripts_and_styles_from_the_app(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert urls, page
        assert [u for u in urls if u.startswith(("http:", "https:", "//"))] == [], (page, urls)
        for url in urls:
            if url.startswith("/static-docs/"):
                r = client.get(url)
                assert r.status_code == 200 and len(r.content) > 1000, url


def test_docs_pages_are_not_in_the_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/docs" not in paths and "/redoc" not in paths
