"""A small route table for the HTTP API: each route names its permission Action and body schema.

The same table drives authorization (deny by default), request validation, CSRF checks and the OpenAPI document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from mediation.access import PUBLIC, Actor, check_role
from mediation.errors import Forbidden, InvalidInput, OneDoorError, TooLarge
from mediation.models import StaffLogin
from mediation.permissions import Action
from mediation.resources import login_actor
from signaling.limits import TooDeep, loads, too_deep_error
from signaling.outage import RETRY_AFTER, outage
from signaling.services import SERVICES, Services

log = logging.getLogger(__name__)
COOKIE = "od_session"
MAX_BODY = 256 * 1024


@dataclass
class Ctx:
    services: Services
    request: web.Request
    actor: Actor = PUBLIC
    login: StaffLogin | None = None

    def param(self, name: str) -> str:
        return self.request.match_info[name]


Handler = Callable[[Ctx, Any], Awaitable[Any]]


@dataclass
class Route:
    method: str
    path: str
    handler: Handler
    action: Action | None  # None with staff=True: any logged-in staff member
    body: type[BaseModel] | None
    staff: bool
    summary: str


class Api:
    """A module's route table; the app factory installs the tables it is given (signaling.app)."""

    def __init__(self, routes: list[Route] | None = None) -> None:
        self.routes: list[Route] = list(routes or [])

    @classmethod
    def merge(cls, tables: list[Api]) -> Api:
        return cls([r for t in tables for r in t.routes])

    def route(self, method: str, path: str, *, action: Action | None = None, body: type[BaseModel] | None = None,
              staff: bool = True, summary: str = "") -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.routes.append(Route(method, path, fn, action, body, staff, summary or (fn.__doc__ or "").strip()))
            return fn
        return deco

    def install(self, app: web.Application) -> None:
        for r in self.routes:
            app.router.add_route(r.method, r.path, _wrap(r))


def _wrap(r: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        ctx = Ctx(request.app[SERVICES], request)
        if r.staff:
            async with ctx.services.db.session() as s:
                ctx.actor, ctx.login = await login_actor(s, request.cookies.get(COOKIE))
            if r.action is not None:
                check_role(ctx.actor, r.action)  # the object half is checked by the use case
            if r.method not in ("GET", "HEAD") and request.headers.get("X-CSRF-Token") != ctx.login.csrf_token:
                raise Forbidden("missing or wrong CSRF token", code="csrf")
        body = None
        if r.body is not None:
            body = r.body.model_validate(await _json(request))
        out = await r.handler(ctx, body)
        if isinstance(out, web.StreamResponse):
            return out
        return web.json_response(out, dumps=lambda v: json.dumps(v, ensure_ascii=False))

    return handle


async def _json(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise TooLarge("request body too large", code="too_large")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise TooLarge("request body too large", code="too_large")
    try:
        return loads(raw.decode("utf-8") if raw else "{}")
    except TooDeep:
        raise too_deep_error() from None
    except ValueError:  # UnicodeDecodeError included
        raise InvalidInput("body is not valid JSON", code="bad_json") from None


def error_response(e: OneDoorError) -> web.Response:
    return web.json_response({"error": e.to_dict()}, status=e.status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


@web.middleware
async def errors_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                            ) -> web.StreamResponse:
    try:
        return await handler(request)
    except OneDoorError as e:
        return error_response(e)
    except ValidationError as e:
        errs = [{"loc": list(x["loc"]), "msg": x["msg"]} for x in e.errors()[:10]]
        return error_response(InvalidInput("the request does not match the schema", code="invalid_input",
                                           errors=errs))
    except web.HTTPException as e:
        if e.status >= 400 and request.path.startswith("/api"):
            return web.json_response({"error": {"code": "http_" + str(e.status), "message": e.reason}},
                                     status=e.status)
        raise
    except Exception as e:
        down = outage(e)
        if down is not None:
            out = error_response(down)
            out.headers["Retry-After"] = str(RETRY_AFTER)
            return out
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"error": {"code": "internal", "message": "internal error"}}, status=500)


def openapi(api: Api, title: str = "OneDoor API") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for r in api.routes:
        op: dict[str, Any] = {"summary": r.summary, "responses": {"200": {"description": "OK"},
                                                                  "default": {"description": "JSON error"}}}
        if r.staff:
            op["security"] = [{"cookie": []}]
            op["x-permission"] = r.action.value if r.action else "any staff"
        if r.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": r.body.model_json_schema(ref_template="#/components/schemas/{model}")}}}
        params = [seg[1:-1] for seg in r.path.split("/") if seg.startswith("{")]
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                                for p in params]
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {"openapi": "3.0.3", "info": {"title": title, "version": "0.1.0"}, "paths": paths,
            "components": {"securitySchemes": {"cookie": {"type": "apiKey", "in": "cookie", "name": COOKIE}}}}
