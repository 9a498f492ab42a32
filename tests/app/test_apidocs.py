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


def test_redocs_script_asks_nothing_of_the_internet(client):
    js = client.get("/redoc").text
    url = re.search(r'src="(/static-docs/[^"]+\.js)"', js).group(1)
    script = client.get(url).text
    assert len(script) > 100_000 and "redocly logo" in script  # ReDoc itself, its footer kept
    assert re.findall(r"https?://cdn[\w.]*/[^\"' ]*", script) == []


def test_the_train_bodys_two_forms_have_their_own_titles(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["TrainRequest"]
    titles = [form.get("title") for form in schema["oneOf"]]
    assert len(set(titles)) == 2 and all(titles) and "TrainRequest" not in titles


def test_docs_pages_are_not_in_the_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/docs" not in paths and "/redoc" not in paths
