"""``GET /openapi.json`` and the browsable ``GET /docs`` page.

The page is rendered on the server from the same spec and needs nothing from the internet,
so it works on air-gapped clusters too.
"""

from __future__ import annotations

import html
import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from api.http.json_response import json_response
from api.openapi import OPERATIONS, build_openapi

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em}"
    "pre{background:#f4f4f4;padding:.8em;overflow-x:auto}h2{border-bottom:1px solid #ddd}"
    ".m{font-weight:bold;text-transform:uppercase;margin-right:.5em}"
)


def _package_version() -> str:
    try:
        return version("triton-openai-gateway")
    except PackageNotFoundError:
        return "0.0.0"


def openapi_document() -> dict[str, Any]:
    return build_openapi(OPERATIONS, _package_version())


async def openapi_json(request: Request) -> Response:
    return json_response(openapi_document())


async def docs_page(request: Request) -> Response:
    return HTMLResponse(render_docs(openapi_document()))


def render_docs(spec: dict[str, Any]) -> str:
    """An HTML page listing every operation with its example and every schema."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(spec['info']['title'])}"
        f"</title><style>{_STYLE}</style></head><body><h1>{_e(spec['info']['title'])}</h1>",
        f"<p>{_e(spec['info']['description'])} Machine-readable spec: "
        "<a href='/openapi.json'>/openapi.json</a>.</p><h2>Endpoints</h2>",
    ]
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            parts.append(_operation_html(path, method, operation))
    parts.append("<h2>Schemas</h2>")
    for name, schema in spec["components"]["schemas"].items():
        parts.append(f"<h3 id='{_e(name)}'>{_e(name)}</h3><pre>{_pretty(schema)}</pre>")
    parts.append("</body></html>")
    return "".join(parts)


def _operation_html(path: str, method: str, operation: dict[str, Any]) -> str:
    out = [
        f"<h3><span class='m'>{_e(method)}</span>{_e(path)}</h3><p>{_e(operation['summary'])}</p>"
    ]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    if "$ref" in body.get("schema", {}):
        name = body["schema"]["$ref"].rsplit("/", 1)[-1]
        out.append(f"<p>Request body: <a href='#{_e(name)}'>{_e(name)}</a></p>")
    if "example" in body:
        out.append(f"<pre>{_pretty(body['example'])}</pre>")
    statuses = ", ".join(operation["responses"])
    out.append(f"<p>Responses: {_e(statuses)}</p>")
    return "".join(out)


def _pretty(value: object) -> str:
    return _e(json.dumps(value, indent=2, ensure_ascii=False))


def _e(text: str) -> str:
    return html.escape(text, quote=True)
