"""The security headers in a real browser: the console works under its Content-Security-Policy (a violation is a
console error), and the API docs render from the API's own files (no CDN) under theirs."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ConsolePage
from tests.browser.test_predict import predict_via_ui

pytestmark = pytest.mark.browser


def test_the_console_works_under_its_content_security_policy(console: ConsolePage, api_url: str) -> None:
    page = console.page
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    response = page.goto("/")
    assert response is not None
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    result = predict_via_ui(console)
    expect(result.locator(".shaded .w").first).to_be_visible()  # shading sets styles from script: allowed
    for view in ("jobs", "models"):
        page.goto(f"/#{view}")
        expect(page.locator(f"#view-{view}")).to_be_visible()
    assert all(url.startswith(api_url) for url in requests), [u for u in requests if not u.startswith(api_url)]
    assert console.js_errors() == []  # a CSP violation would be reported here


@pytest.mark.parametrize(("path", "rendered"), [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")])
def test_api_docs_render_offline_under_their_policy(console: ConsolePage, api_url: str, path: str,
                                                    rendered: str) -> None:
    page = console.page
    outside: list[str] = []
    page.route("**/*", lambda route: (route.continue_() if route.request.url.startswith(api_url)
                                      else (outside.append(route.request.url), route.abort())))
    page.goto(path)
    expect(page.locator(rendered).first).to_contain_text("SSA service", timeout=30_000)
    assert outside == []
    # ReDoc's sidebar badge points at its vendor's CDN: the policy blocks it (nothing leaves), which Chromium reports
    blocked_badge = "Loading the image 'https://cdn.redoc.ly/"
    assert [e for e in console.js_errors() if blocked_badge not in e] == []
