"""Routes Lambda Invoke calls made by moto's Step Functions engine to the
local function pool, through botocore's public `before-call` event.

moto's Lambda cannot run code without Docker (it echoes the input). Its ASL
engine calls Lambda with `boto3.client("lambda")` from the default session of
the process it runs in, so a handler registered on that session answers those
calls with the real handler's result, or with FunctionError "Unhandled" and the
{errorType, errorMessage, stackTrace} payload, as the Lambda service does.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from urllib.parse import unquote

import boto3
from botocore.response import StreamingBody

Invoker = Callable[[str, object], dict]  # (function name or ARN, event) -> {"ok"} | {"error"}


class _HttpResponse:
    status_code = 200
    headers: dict = {}
    raw = None
    content = b""


def function_name_from_path(url_path: str) -> str:
    # /2015-03-31/functions/<name or url-encoded ARN>/invocations
    parts = url_path.split("?")[0].split("/")
    return unquote(parts[parts.index("functions") + 1])


def make_before_call_handler(invoke: Invoker):
    def handler(params: dict, **_kwargs):
        name = function_name_from_path(params["url_path"])
        body = params.get("body") or b"{}"
        event = json.loads(body if isinstance(body, (bytes, str)) else body.read())
        try:
            reply = invoke(name, event)
        except Exception as exc:  # the Lambda *service* failed: a ClientError, as from AWS
            from botocore.exceptions import ClientError

            code = "TooManyRequestsException" if type(exc).__name__ == "Throttled" else "ServiceException"
            status = 429 if code == "TooManyRequestsException" else 500
            raise ClientError(
                {"Error": {"Code": code, "Message": str(exc)}, "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "local"}},
                "Invoke",
            ) from None
        parsed = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "ResponseMetadata": {"HTTPStatusCode": 200}}
        if "error" in reply:
            payload = json.dumps(reply["error"]).encode()
            parsed["FunctionError"] = "Unhandled"
        else:
            payload = json.dumps(reply["ok"]).encode()
        parsed["Payload"] = StreamingBody(io.BytesIO(payload), len(payload))
        return _HttpResponse(), parsed

    return handler


def install(invoke: Invoker, session: boto3.Session | None = None) -> Callable[[], None]:
    """Register on the default boto3 session (or the one given); returns an
    uninstall function. Only clients created afterwards see it."""
    if session is None:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
    handler = make_before_call_handler(invoke)
    session.events.register("before-call.lambda.Invoke", handler, unique_id="harpoon-local-invoke")
    return lambda: session.events.unregister("before-call.lambda.Invoke", unique_id="harpoon-local-invoke")
