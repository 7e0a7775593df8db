"""One Lambda "container" for the local stack: a separate process hosting one
function's handler with exactly the environment the template gives it.

Run as a script by local/functions.py (never imported by it). Protocol on
stdin/stdout, one JSON object per line:
  -> {"event": ..., "context": {"request_id", "deadline_ms"}}
  <- {"ok": result} | {"error": {"errorType", "errorMessage", "stackTrace"}}
The handler's own prints and logs go to stderr, as they would to CloudWatch.
"""

import importlib
import json
import os
import sys
import time
import traceback

# This file runs as a script: drop its own folder from the import path so the
# function sees only its code and layers, as in Lambda.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)


class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools use."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = os.environ.get("HARPOON_LOCAL_FUNCTION_ARN", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException) -> dict:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # anything the handler prints goes to the log, not the protocol
    sys.stdout = sys.stderr
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # init error: report it and stop, as Lambda does
        protocol.write(json.dumps({"init_error": _error(exc)}) + "\n")
        return
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(request["context"]["request_id"], request["context"]["deadline_ms"])
        try:
            reply = {"ok": handler(request["event"], context)}
            text = json.dumps(reply)
        except Exception as exc:
            text = json.dumps({"error": _error(exc)})
        protocol.write(text + "\n")


if __name__ == "__main__":
    main()
