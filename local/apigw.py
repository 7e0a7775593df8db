"""An HTTP server that behaves like API Gateway HTTP API (payload format 2.0)
in front of the template's functions: it turns each request into the event
`sam local start-api` would build and the Lambda's answer back into HTTP."""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from local.template import ACCOUNT, Route

MAX_PAYLOAD = 10 * 1024 * 1024  # HTTP API's request payload limit
TEXT_TYPES = ("application/json", "text/", "application/xml", "application/x-www-form-urlencoded")


def build_event(method: str, target: str, headers: dict[str, str], body: bytes, route: Route, path_params: dict, source_ip: str) -> dict:
    url = urlsplit(target)
    now = datetime.now(timezone.utc)
    content_type = headers.get("content-type", "")
    is_text = not body or any(content_type.startswith(t) for t in TEXT_TYPES)
    try:
        body_text, b64 = (body.decode("utf-8"), False) if is_text else (base64.b64encode(body).decode(), True)
    except UnicodeDecodeError:
        body_text, b64 = base64.b64encode(body).decode(), True
    route_key = f"{route.method} {route.path}"
    query = parse_qsl(url.query, keep_blank_values=True)
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": headers.get("host", "127").split(".")[0],
            "http": {"method": method, "path": url.path, "protocol": "HTTP/1.1", "sourceIp": source_ip, "userAgent": headers.get("user-agent", "")},
            "requestId": base64.b64encode(uuid.uuid4().bytes[:12]).decode(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": b64,
    }
    if body:
        event["body"] = body_text
    if query:
        event["queryStringParameters"] = {k: ",".join(v for kk, v in query if kk == k) for k, _ in query}
    if path_params:
        event["pathParameters"] = path_params
    cookies = headers.get("cookie")
    if cookies:
        event["cookies"] = [c.strip() for c in cookies.split(";")]
    return event


def authorizer_event(event: dict, route: Route) -> dict:
    """The payload 2.0 REQUEST event API Gateway sends a Lambda authorizer:
    the request's parts, without its body."""
    request = event["requestContext"]
    keep = ("routeKey", "rawPath", "rawQueryString", "cookies", "headers", "queryStringParameters", "pathParameters")
    return {
        "version": "2.0", "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{request['apiId']}/{request['stage']}/{route.method}{route.path}",
        "identitySource": [],
        **{k: event[k] for k in keep if k in event},
        "requestContext": request,
    }


def authorize(reply: dict) -> tuple[int, bytes] | dict:
    """What API Gateway does with an authorizer's answer (simple responses):
    the context to pass on, or the gateway's own refusal."""
    if "error" in reply:
        print(f"  authorizer failed: {reply['error'].get('errorType')}: {reply['error'].get('errorMessage')}",
              file=sys.stderr, flush=True)
        return 500, b'{"message":"Internal Server Error"}'
    answer = reply["ok"]
    if not isinstance(answer, dict) or not isinstance(answer.get("isAuthorized"), bool):
        return 500, b'{"message":"Internal Server Error"}'
    if not answer["isAuthorized"]:
        return 403, b'{"message":"Forbidden"}'
    return answer.get("context") or {}


def to_http(result: object) -> tuple[int, dict[str, str], bytes]:
    """Payload format 2.0: a dict with statusCode is a full response; anything
    else is a 200 JSON body."""
    if isinstance(result, dict) and "statusCode" in result:
        headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
        for cookie in result.get("cookies") or []:
            headers.setdefault("set-cookie", cookie)
        return int(result["statusCode"]), headers, raw
    return 200, {"content-type": "application/json"}, json.dumps(result).encode()


def summarize(method: str, path: str, status: int, body: bytes, elapsed_ms: float, request_id: str | None = None) -> str:
    """One log line per request: route, model, outcome, timings, and the
    request id that every function's log lines of it carry."""
    line = f"{method} {path} {status} {elapsed_ms:.0f}ms" + (f" id={request_id}" if request_id else "")
    try:
        data = json.loads(body)
    except ValueError:
        return line
    if isinstance(data, dict) and "route" in data:
        timings = data.get("timings_ms", {})
        steps = " ".join(f"{k}={v:.0f}" for k, v in timings.items() if isinstance(v, (int, float)) and k != "total")
        line += (f" model={data['route'].get('model')} tier={data.get('classification', {}).get('tier')}"
                 f" degraded={data['route'].get('degraded')} warm={(data.get('allocation') or {}).get('warm')} [{steps}]")
    elif isinstance(data, dict) and isinstance(data.get("error"), dict):
        line += f" error={data['error'].get('code')}"
    return line


def make_api_server(host: str, port: int, routes: list[Route], invoke: Callable[[str, object], dict], log=sys.stdout,
                    admin: Callable[[str, str, bytes], tuple[int, object]] | None = None) -> ThreadingHTTPServer:
    """`admin(method, path, body)` answers /_local/... (the local stack's own
    commands, e.g. run a schedule now); API Gateway has no such paths."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:  # one summary line per request instead
            pass

        def _handle(self) -> None:
            started = time.perf_counter()
            self._gateway_id = None  # API Gateway's id of this call, once the event has one
            status, headers, body = self._dispatch()
            self.send_response(status)
            headers = {k.lower(): v for k, v in headers.items()}
            headers.setdefault("content-type", "application/json")
            headers["content-length"] = str(len(body))
            headers.setdefault("apigw-requestid", self._gateway_id or uuid.uuid4().hex[:16])
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            print(summarize(self.command, self.path, status, body, (time.perf_counter() - started) * 1000,
                            headers.get("x-request-id")), file=log, flush=True)

        def _read_body(self) -> bytes | None:
            """The request body (Content-Length or chunked); None past the limit."""
            if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                chunks, size = [], 0
                while True:
                    chunk_size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if chunk_size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    size += chunk_size
                    if size > MAX_PAYLOAD:
                        return None
                    chunks.append(self.rfile.read(chunk_size))
                    self.rfile.readline()
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_PAYLOAD:
                return None
            return self.rfile.read(length) if length else b""

        def _dispatch(self) -> tuple[int, dict, bytes]:
            body = self._read_body()
            if body is None:
                self.close_connection = True  # the unread body must not become the next request
                return 413, {}, b'{"message":"Request Entity Too Large"}'
            path = urlsplit(self.path).path
            if admin is not None and path.startswith("/_local/"):
                status, payload = admin(self.command, path, body)
                return status, {}, json.dumps(payload).encode("utf-8")
            for route in routes:
                params = route.matches(self.command, path)
                if params is not None:
                    break
            else:
                return 404, {}, b'{"message":"Not Found"}'
            headers: dict[str, str] = {}
            for key, value in self.headers.items():
                key = key.lower()
                headers[key] = f"{headers[key]},{value}" if key in headers else value
            event = build_event(self.command, self.path, headers, body, route, params, self.client_address[0])
            self._gateway_id = event["requestContext"]["requestId"]
            if route.authorizer is not None:
                try:
                    verdict = authorize(invoke(route.authorizer, authorizer_event(event, route)))
                except Exception as exc:  # the authorizer could not be invoked
                    print(f"  authorizer {route.authorizer} not invoked: {type(exc).__name__}: {exc}", file=log, flush=True)
                    verdict = (500, b'{"message":"Internal Server Error"}')
                if isinstance(verdict, tuple):
                    print(f"  authorizer {route.authorizer} refused or failed: {verdict[0]}", file=log, flush=True)
                    return verdict[0], {}, verdict[1]
                event["requestContext"]["authorizer"] = {"lambda": verdict}
            try:
                reply = invoke(route.function, event)
            except Exception as exc:  # throttled, or the function could not start
                print(f"  function {route.function} not invoked: {type(exc).__name__}: {exc}", file=log, flush=True)
                return 500, {}, b'{"message":"Internal Server Error"}'
            if "error" in reply:
                print(f"  function {route.function} failed: {reply['error'].get('errorType')}: {reply['error'].get('errorMessage')}", file=log, flush=True)
                return 500, {}, b'{"message":"Internal Server Error"}'
            return to_http(reply["ok"])

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

        def __getattr__(self, name: str):
            # Any other method (TRACE, QUERY, ...) is routed too: API Gateway's
            # 404, not http.server's 501.
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

    class Server(ThreadingHTTPServer):
        # socketserver's backlog of 5 resets connections under a burst that
        # API Gateway would simply accept.
        request_queue_size = 256

    server = Server((host, port), Handler)
    server.daemon_threads = True
    return server
