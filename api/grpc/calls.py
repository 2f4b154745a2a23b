"""One gRPC call through the gateway: authenticated, admitted, metered and recorded like an
HTTP request, its errors answered as gRPC statuses.

A client that cancels the call cancels the handler's task; the backend streams close on the
way out, which cancels the generation in Triton, and the usage record says 499.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import orjson

from api.auth.credentials import authenticate, presented_key
from api.auth.identity import Scope as KeyScope
from api.errors import APIError, BackendError
from api.gateway import Gateway
from api.grpc.status import error_status
from api.ids import unique_hex
from api.limits.metered import Caller, metered_request
from api.services import Services
from api.usage.meter import RequestUsage

logger = logging.getLogger(__name__)

T = TypeVar("T")
REQUEST_ID_KEY = "x-request-id"


@dataclass(frozen=True, slots=True)
class Call:
    """An admitted call: its request id, its usage meter and the JSON body it stands for."""

    request_id: str
    usage: RequestUsage
    body: dict[str, Any]


Work = Callable[[Call], Awaitable[T]]


class Calls:
    """Runs the RPCs' work inside the gateway (``gateway`` and ``services`` live as long as
    the app that owns them)."""

    def __init__(self, gateway: Gateway, services: Services) -> None:
        self.gateway, self.services = gateway, services

    async def run(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        method: str,
        body: Callable[[], dict[str, Any]],
        work: Work[T],
    ) -> T:
        """``work`` for the caller named in ``context``'s metadata, with the JSON ``body`` of
        the request (built after authentication, so that its errors reach only callers);
        every ``APIError`` ends the call with its status."""
        try:
            return await self._admitted(context, method, body, work)
        except APIError as error:
            code, message, trailing = error_status(error)
            await context.abort(code, message, trailing)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception:
            logger.exception("gRPC call failed", extra={"method": method})
            unexpected = BackendError(
                "The server had an error while processing your request.", code="internal_error"
            )
            await context.abort(*error_status(unexpected))
        raise AssertionError("context.abort returned")  # it always raises

    async def _admitted(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        method: str,
        build: Callable[[], dict[str, Any]],
        work: Work[T],
    ) -> T:
        metadata = _metadata(context)
        identity = await authenticate(self.gateway, presented_key(metadata), KeyScope.INFERENCE)
        request_id = unique_hex()
        body = build()
        caller = Caller(identity, method, request_id)
        async with metered_request(
            self.gateway,
            self.services.registry,
            caller,
            orjson.dumps(body),
            (asyncio.CancelledError,),
        ) as metered:
            await context.send_initial_metadata(
                ((REQUEST_ID_KEY, request_id), *metered.headers.items())
            )
            return await work(Call(request_id, metered.usage, body))


def _metadata(context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    """The call's text metadata by lower-case name (binary ``-bin`` values are left out)."""
    return {
        key.lower(): value
        for key, value in context.invocation_metadata() or ()
        if isinstance(value, str)
    }
