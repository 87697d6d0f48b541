"""Send this process's fal traffic to the loopback fal fake server (soak runs only).

`install(url)` patches httpx with respx so every request for fal's hosts goes to
`url` (webtoon.testing.fal_server) instead; the real fal-client and download code run
unchanged. Everything else passes through. Enabled by the `webtoon.testing` app when
WEBTOON_FAL_FAKE_URL is set; production settings never include that app.
"""

from __future__ import annotations

import httpx
import respx

from .fal_server import ERROR_HEADER, HOP_HEADERS, ORIGIN_HEADER

FAL_HOSTS = ("queue.fal.run", "fal.run", "rest.fal.ai", "rest.alpha.fal.ai", "v3.fal.media")

_router: respx.MockRouter | None = None


def install(url: str) -> None:
    global _router
    if _router is not None:
        return
    target = httpx.URL(url)
    client = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))
    router = respx.mock(assert_all_mocked=False, assert_all_called=False)

    def forward(request: httpx.Request) -> httpx.Response:
        router.calls.clear()  # respx records every response (image bytes) otherwise
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers[ORIGIN_HEADER] = f"{request.url.scheme}://{request.url.netloc.decode()}"
        answer = client.request(
            request.method,
            target.copy_with(raw_path=request.url.raw_path),
            headers=headers,
            content=request.read(),
        )
        if answer.headers.get(ERROR_HEADER) == "timeout":
            raise httpx.ReadTimeout("fake fal: read timed out", request=request)
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
        return httpx.Response(answer.status_code, headers=kept, content=answer.content)

    router.route(host=target.host, port=target.port).pass_through()
    for host in FAL_HOSTS:
        router.route(host=host).mock(side_effect=forward)
    router.route().pass_through()
    router.start()
    _router = router
