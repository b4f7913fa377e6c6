"""Every error the API answers, as an RFC 9457 problem: ``application/problem+json`` with a stable ``code``.

``{"type": "/problems/<code>", "title", "status", "code", "detail"}``, plus ``help`` (how to fix it) when the error
knows, plus the error's own attributes where they are plain values (``campaign_id``, ``attester``, a revert's
arguments as decimal strings, since they are uint256). One handler serves every ``LedgerError``; the HTTP status
lives here, in ``STATUS``, because ``ledger/`` knows no HTTP. The API's own failures (schema, routing, body size,
bugs) use the codes in ``API_PROBLEMS``. A 5xx answer never carries the exception's text (it may name files or hosts):
that goes to the log.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ledger.errors import ContractRevert, LedgerError, RateLimited

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"

#: The API's own codes, for failures that are not ``LedgerError``s: status and meaning.
API_PROBLEMS: dict[str, tuple[int, str]] = {
    "not_found": (404, "no such route"),
    "method_not_allowed": (405, "the route does not take this method"),
    "request_too_large": (413, "the body is larger than the limit it names (`limit`, bytes)"),
    "invalid_request": (422, "the request does not match its schema; `errors` lists each field at fault"),
    "internal_error": (500, "a bug: logged with its traceback, never shown"),
    "not_ready": (503, "a dependency is down; `checks` says which"),
}

#: HTTP status of every ``LedgerError`` code (tests/api/test_problems.py checks none is missing).
STATUS: dict[str, int] = {
    **{code: status for code, (status, _) in API_PROBLEMS.items()},
    # callers
    "credentials_required": 401,
    "invalid_session": 401,
    "invalid_api_key": 401,
    "access_denied": 403,
    "not_marketer": 403,
    "not_attester": 403,
    "attester_not_registered": 409,
    "api_key_not_found": 404,
    # relayed marketer transactions
    "invalid_transaction": 422,
    "function_not_allowed": 422,
    "wrong_signer": 403,
    "campaign_mismatch": 403,
    "transaction_not_found": 404,
    # rate limits (api.limits): Retry-After says when to come back
    "rate_limited": 429,
    # Sign-In with Ethereum: a message that does not prove a sign-in here is an authentication failure
    "siwe_error": 401,
    "siwe_malformed": 422,
    "siwe_invalid_signature": 401,
    "siwe_domain_mismatch": 401,
    "siwe_uri_mismatch": 401,
    "siwe_chain_mismatch": 401,
    "siwe_issued_in_future": 401,
    "siwe_expired": 401,
    "siwe_not_yet_valid": 401,
    "siwe_nonce_used": 401,
    "invalid_signature": 401,
    "expired_signature": 401,
    "invalid_cursor": 422,
    # engagement intake
    "campaign_not_indexed": 404,
    "campaign_not_open": 409,
    "too_many_engagements": 413,
    "event_ids_exhausted": 409,
    "engagement_not_found": 404,
    "settled_event_not_found": 404,
    # CRM
    "invalid_contact": 422,
    "customer_not_found": 404,
    "ambiguous_customer": 409,
    "contact_in_use": 409,
    "nonce_used": 409,
    "wallet_linked_elsewhere": 409,
    "invalid_amount": 422,
    "invalid_conversion": 422,
    "conversion_conflict": 409,
    "invalid_conversion_file": 422,
    # the service itself (not the caller's fault)
    "ledger_error": 500,
    "configuration_error": 500,
    "deployment_not_found": 503,
    "chain_unavailable": 503,
    "chain_stalled": 503,
    "devnet_running": 503,
    "reorg_too_deep": 503,
    "transaction_failed": 502,
    # contract reverts: a refused argument is 422, a state that forbids the call 409
    "contract_revert": 409,
    "unknown_campaign": 404,
    "campaign_paused": 409,
    "campaign_closed": 409,
    "campaign_not_paused": 409,
    "campaign_not_ended": 409,
    "attester_already_added": 409,
    "attester_not_found": 409,
    "transfer_shortfall": 409,
    "nothing_to_claim": 409,
    "insufficient_balance": 409,
    "insufficient_allowance": 409,
    "invalid_nonce": 409,
    "reentrant_call": 409,
    "token_transfer_failed": 409,
    "invalid_purposes": 422,
    "invalid_expiry": 422,
    "invalid_brand": 422,
    "invalid_token": 422,
    "invalid_dates": 422,
    "invalid_attester": 422,
    "zero_amount": 422,
    "budget_too_large": 422,
    "malformed_batch": 422,
    "invalid_action": 422,
    "invalid_recipient": 422,
    "invalid_receiver": 422,
    "invalid_sender": 422,
    "invalid_approver": 422,
    "invalid_spender": 422,
    "invalid_short_string": 422,
    "string_too_long": 422,
}

RETRY_AFTER = {"description": "Whole seconds until a request can go through.", "schema": {"type": "integer"}}
_MEMBERS = {"type", "title", "status", "code", "detail", "help", "errors"}  # an error attribute never overrides these
_RAW = {"receipt", "revert", "data", "values", "fields"}  # chain objects and bytes: in the log, not the answer
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


class Problem(BaseModel):
    """An RFC 9457 problem. Beside these members, the error's own fields may appear (``campaign_id``, ``limit``,
    ``errors`` for invalid_request, ``checks`` for not_ready)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "/problems/campaign_not_indexed",
                    "title": "Campaign not indexed",
                    "status": 404,
                    "code": "campaign_not_indexed",
                    "detail": "campaign 7 of escrow 0x5fbdb2315678afecb367f032d93f642f64180aa3 on chain 31337 is "
                    "not indexed",
                    "help": "check the campaign id; a new campaign takes engagements once the indexer has seen it",
                    "chain_id": 31337,
                    "escrow": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
                    "campaign_id": 7,
                }
            ]
        },
    )

    type: str = Field(description="`/problems/<code>`: a relative URI naming the problem type.")
    title: str = Field(description="The code in words; the same for every occurrence of the problem.")
    status: int = Field(description="The HTTP status, repeated for clients that lose it.")
    code: str = Field(description="Stable snake_case code: what clients branch on.")
    detail: str = Field(description="This occurrence, in words.")
    help: str | None = Field(default=None, description="How to fix it, when the cause is the caller's to fix.")


def title_of(code: str) -> str:
    return code.replace("_", " ").capitalize()


def problem(
    code: str, detail: str, *, status: int | None = None, help: str | None = None, **fields: Any
) -> JSONResponse:
    """A problem+json response; ``status`` defaults to the code's in ``STATUS``. A 401 says how to authenticate."""
    status = status or STATUS.get(code, 500)
    body: dict[str, Any] = {"type": f"/problems/{code}", "title": title_of(code), "status": status, "code": code}
    body["detail"] = detail
    if help:
        body["help"] = help
    body.update(fields)
    headers = {"WWW-Authenticate": 'Bearer realm="adledger"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def ledger_problem(exc: LedgerError) -> JSONResponse:
    """The problem for a ``LedgerError``: its code, message, help and plain fields (5xx: no message, no fields).
    A 429 says when to come back in ``Retry-After`` (whole seconds), as its ``retry_after`` member does."""
    status = STATUS.get(exc.code, 500)
    if status >= 500:
        log.error("%s: %s", exc.code, exc, exc_info=exc)
        return problem(
            exc.code, f"{title_of(exc.code)}; the details are in the service's log", status=status, help=exc.help
        )
    response = problem(exc.code, str(exc), status=status, help=exc.help, **_fields_of(exc))
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _fields_of(exc: LedgerError) -> dict[str, Any]:
    if isinstance(exc, ContractRevert):  # uint256 arguments: decimal strings, as every amount in the API
        items = {
            name: str(value) if isinstance(value, int) and not isinstance(value, bool) else value
            for name, value in exc.fields.items()
        }
    else:
        items = vars(exc)
    return {
        name: value
        for name, value in items.items()
        if not name.startswith("_") and name not in _MEMBERS | _RAW and _is_plain(value)
    }


def _is_plain(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return all(_is_plain(item) for item in value)
    return value is None or isinstance(value, str | int | bool)


async def _on_ledger_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LedgerError)
    return ledger_problem(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A schema mismatch is 422 invalid_request listing every field; a ``LedgerError`` a validator raised (the
    engagement limit) keeps its own code and status."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for error in errors:
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, LedgerError):
            return ledger_problem(cause)
    fields = [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", "")), "type": error["type"]}
        for error in errors
    ]
    first = fields[0] if fields else {"loc": [], "msg": "invalid request"}
    more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
    detail = f"{'.'.join(first['loc'])}: {first['msg']}{more}"
    return problem("invalid_request", detail, errors=fields)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI could not read the body (not UTF-8): a body not of the schema, like bad JSON
        error = {"loc": ["body"], "msg": str(exc.detail), "type": "body_unreadable"}
        return problem("invalid_request", f"body: {exc.detail}", errors=[error])
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        detail = f"no route {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.url.path} does not take {request.method}"
    else:
        detail = str(exc.detail)
    response = problem(code, detail, status=exc.status_code)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    if exc.status_code == 405 and (allowed := _allowed_methods(request.app.router.routes, request.scope)):
        response.headers["Allow"] = ", ".join(sorted(allowed))
    return response


def _allowed_methods(routes: Iterable[Any], scope: Any) -> set[str]:
    """Every method the path takes, over all its routes: Starlette's own Allow names only the first matching
    route's, and a path such as /v1/campaigns has a GET route and a POST route. Included routers are walked
    through (FastAPI wraps each in a route of its own that holds the ``original_router``)."""
    methods: set[str] = set()
    for route in routes:
        inner = getattr(getattr(route, "original_router", None), "routes", None) or getattr(route, "routes", None)
        if inner is not None:
            methods |= _allowed_methods(inner, scope)
        elif route.matches(scope)[0] != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug. Starlette re-raises it after this answer, so the server logs the traceback."""
    return problem("internal_error", "an unexpected error occurred; it has been logged")


def install(app: FastAPI) -> None:
    """Registers the handlers, and documents every problem response as ``application/problem+json``."""
    app.add_exception_handler(LedgerError, _on_ledger_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _problems_as_problem_json(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


#: What every route behind a signed-in wallet may answer besides its own problems.
WALLET_PROBLEMS = ("credentials_required", "invalid_session")


def responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each listed problem code under its status, with an example of each.

    A route that needs a caller's credentials (it lists ``credentials_required``) is rate-limited per caller by its
    principal (``api.deps``), so ``rate_limited`` is documented with it; routes limited otherwise list it."""
    if "credentials_required" in codes and "rate_limited" not in codes:
        codes = (*codes, "rate_limited")
    by_status: dict[int, list[str]] = defaultdict(list)
    for code in codes:
        by_status[STATUS[code]].append(code)
    documented: dict[int | str, dict[str, Any]] = {}
    for status, listed in sorted(by_status.items()):
        examples = {
            code: {
                "value": {
                    "type": f"/problems/{code}",
                    "title": title_of(code),
                    "status": status,
                    "code": code,
                    "detail": "what went wrong, in words",
                }
            }
            for code in listed
        }
        documented[status] = {
            "model": Problem,
            "description": "\n".join(f"- `{code}`: {meaning(code)}" for code in listed),
            "content": {"application/json": {"examples": examples}},
        }
        if "rate_limited" in listed:
            documented[status]["headers"] = {"Retry-After": RETRY_AFTER}
    return documented


def meaning(code: str) -> str:
    """What a code means, for the docs: the API's own words, or the first sentence of its LedgerError's docstring
    (a class of ledger's own before a contract revert sharing the code)."""
    if code in API_PROBLEMS:
        return API_PROBLEMS[code][1]
    classes: list[type[LedgerError]] = []
    pending: list[type[LedgerError]] = [LedgerError]
    while pending:
        cls = pending.pop(0)
        classes.append(cls)
        pending.extend(cls.__subclasses__())
    for cls in sorted(classes, key=lambda cls: issubclass(cls, ContractRevert)):
        if cls.code == code and cls.__doc__:
            first = re.split(r"\.(?:\s|$)", " ".join(cls.__doc__.split()))[0].replace("``", "`")
            return first.removeprefix("Raised ").removeprefix("when ")
    return code


def _problems_as_problem_json(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents every response as application/json; problems are served as application/problem+json.
    Every operation may answer invalid_request (an unknown query parameter, at least: ``reject_unknown_query``)."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            _document_invalid_request(operation.setdefault("responses", {}))
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                if str(status)[0] in "45" and "application/json" in content:
                    content[MEDIA_TYPE] = content.pop("application/json")
    return schema


def _document_invalid_request(documented: dict[str, Any]) -> None:
    listed = responses("invalid_request")[422]
    example = listed["content"]["application/json"]["examples"]
    if "422" not in documented:
        schema = {"$ref": "#/components/schemas/Problem"}
        documented["422"] = {"description": listed["description"],
                             "content": {"application/json": {"schema": schema, "examples": example}}}  # fmt: skip
        return
    content = documented["422"].setdefault("content", {}).setdefault("application/json", {})
    if "invalid_request" not in content.setdefault("examples", {}):
        content["examples"] |= example
        documented["422"]["description"] += "\n" + listed["description"]


def _query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters the route and its dependencies take, by the name a caller sends; kept on the route
    (APIRoute is not hashable, so no cache can key on it)."""
    known: frozenset[str] | None = getattr(route, "_query_names", None)
    if known is not None:
        return known
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(param.alias for param in dependant.query_params)
        pending.extend(dependant.dependencies)
    route._query_names = known = frozenset(names)  # type: ignore[attr-defined]
    return known


async def reject_unknown_query(request: Request) -> None:
    """An app-wide dependency: a query parameter the route does not take is refused (422 invalid_request), so a
    misspelt ``limt=5`` is an error, not a silently ignored filter."""
    route = request.scope.get("route")
    if not request.query_params or not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params.keys()) - _query_names(route))
    if unknown:
        raise RequestValidationError(
            [
                {"loc": ("query", name), "msg": "this route takes no such query parameter", "type": "extra_forbidden"}
                for name in unknown
            ]  # fmt: skip
        )
