"""The OpenAPI document of /api/v1, built from the router and the pydantic models.

Handlers say what they take and give with ``@documented(...)``; every /api/v1 route
is listed, the undocumented ones with their method, path and docstring.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

import server

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[web.StreamResponse]])
API_PREFIX = "/api/v1/"
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string", "description": "in the caller's language"},
                "field": {"type": "string"},
            },
            "required": ["code", "message"],
        }
    },
}


@dataclass(frozen=True)
class Doc:
    summary: str = ""
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)  # name -> description
    tags: tuple[str, ...] = ()


def documented(
    summary: str = "",
    *,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    query: dict[str, str] | None = None,
    tags: tuple[str, ...] = (),
) -> Callable[[Handler], Handler]:
    def mark(handler: Handler) -> Handler:
        handler.openapi = Doc(summary, body, response, status, query or {}, tags)  # type: ignore[attr-defined]
        return handler

    return mark


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if not path or not path.startswith(API_PREFIX) or route.method in ("HEAD", "*"):
            continue
        doc: Doc = getattr(route.handler, "openapi", Doc())
        summary = doc.summary or (route.handler.__doc__ or "").strip().split("\n")[0]
        operation: dict[str, Any] = {
            "operationId": route.name or f"{route.method.lower()}_{path}",
            "summary": summary,
            "tags": list(doc.tags) or [path[len(API_PREFIX) :].split("/")[0]],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
                for name in _path_params(path)
            ]
            + [
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "description": text,
                    "schema": {"type": "string"},
                }
                for name, text in doc.query.items()
            ],
            "responses": {
                "4XX": {
                    "description": "refused, with a message in the caller's language",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            },
        }
        ok: dict[str, Any] = {"description": "done"}
        if doc.response is not None:
            ok["content"] = {"application/json": {"schema": _schema(doc.response, components)}}
        operation["responses"][str(doc.status)] = ok
        if doc.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(doc.body, components)}},
            }
        if route.method not in ("GET", "HEAD", "OPTIONS"):
            operation["parameters"].append(
                {"name": "X-CSRF-Token", "in": "header", "required": True,
                 "description": "from GET /api/v1/csrf", "schema": {"type": "string"}}
            )  # fmt: skip
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Yizhan (一站) API",
            "version": server.__version__,
            "description": "Online mediation and hearings. Authenticate with the session "
            "cookie from POST /api/v1/auth/login; send the CSRF token on every change.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "yz_session"}
            },
        },
        "security": [{"session": []}],
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(build(request.app))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi_json, name="api_openapi")
