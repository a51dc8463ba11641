"""Acceptance 5: the landing page and the slot picker weigh < 150 KB on first load together
(HTML + CSS + JS + the favicon, uncompressed, each asset counted once as a browser would
fetch it)."""

from __future__ import annotations

import re

LIMIT = 150 * 1024
ASSET_RE = re.compile(r'(?:href|src)="(/static/[^"]+\.(?:css|js|svg))"')


def page_weight(client, urls: list[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for url in urls:
        html = client.get(url).get_data()
        sizes[url] = len(html)
        for asset in ASSET_RE.findall(html.decode()):
            if asset not in sizes:
                sizes[asset] = len(client.get(asset).get_data())
    return sizes


def test_landing_and_picker_first_load_under_150_kb(client, public):
    sizes = page_weight(client, ["/book", "/book/consultation?tz=America/New_York"])
    total = sum(sizes.values())
    print("transfer sizes:", sizes, "total", total)
    assert total < LIMIT, sizes
