"""Request hardening of POST /v2/process: JSON nesting depth and bodies that
parse but are not Unicode get a 400 in the documented error shape, never a
500 or a RecursionError."""

import json

import pytest

from harpoon.api import ApiError, app, json_depth_exceeds, parse_process_request
from harpoon.models import MAX_BODY_BYTES, MAX_JSON_DEPTH
from tests.conftest import load_event

JSON = "application/json"


def nested(depth: int) -> str:
    """{"text": "hi", "requirements": [[...]]} with `depth` levels in all."""
    return '{"text": "hi", "requirements": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def refused(raw: bytes | str) -> ApiError:
    with pytest.raises(ApiError) as info:
        parse_process_request(JSON, raw.encode() if isinstance(raw, str) else raw)
    return info.value


@pytest.mark.parametrize("raw", [
    "[" * 100_000,  # the classic: RecursionError in json.loads
    '{"a":' * 30_000,
    '{"text": "hi", "x": ' + "[{" * 50_000,
    "[" * (MAX_BODY_BYTES // 2) + "]" * (MAX_BODY_BYTES // 2),  # as deep as a body can be, well-formed
])
def test_deep_nesting_is_a_400_without_parsing(raw):
    error = refused(raw)
    assert (error.status, error.code) == (400, "json_too_deep")
    assert error.details["limit"] == MAX_JSON_DEPTH
    # The scan stops at the first bracket too many, long before the end.
    assert error.details["at_offset"] < 200


def test_the_limit_itself_is_allowed():
    # MAX_JSON_DEPTH levels parse (then fail validation); one more does not.
    assert refused(nested(MAX_JSON_DEPTH)).code == "validation_error"
    assert refused(nested(MAX_JSON_DEPTH + 1)).code == "json_too_deep"


@pytest.mark.parametrize("text", [
    "[" * 5_000,  # brackets inside a string do not nest
    '\\"[[[[' * 1_000,  # nor after an escaped quote, which does not end the string
    "{\\\\" + "[" * 100,  # nor after an escaped backslash
])
def test_brackets_inside_strings_do_not_count(text):
    raw = '{"text": "' + text + '"}'
    assert parse_process_request(JSON, raw.encode()).text == json.loads(raw)["text"]


def test_depth_scan_is_flat():
    # Its cost on the worst bodies is in `make bench` (API: parsing the worst request bodies).
    assert json_depth_exceeds("[]" * 100_000, 1) == 0  # wide, not deep
    assert json_depth_exceeds('["]]]]", []]', 2) == 0
    assert json_depth_exceeds('["[[[", [[]]]', 2) == 10  # 1-based: the third '[' outside the string
    assert json_depth_exceeds('"' + '\\"' * 1000 + "[[[", 2) == 0  # an unterminated string swallows the rest


def test_an_unterminated_string_of_escaped_quotes_is_a_plain_400():
    error = refused(b'{"text": "' + b'\\"' * 1000)
    assert error.status == 400 and error.code == "invalid_json"


@pytest.mark.parametrize("raw", [
    r'{"text": "\ud800"}',  # a lone high surrogate: JSON, but no Unicode text
    r'{"text": "hi", "model": "\udc00x"}',
    b'{"text": "hi\xed\xa0\x80"}',  # a surrogate encoded as if UTF-8 is not UTF-8 either
])
def test_lone_surrogates_are_a_400(raw):
    error = refused(raw)
    assert (error.status, error.code) == (400, "invalid_json")


def test_a_surrogate_pair_is_fine():
    assert parse_process_request(JSON, rb'{"text": "\ud83d\ude00"}').text == "\U0001f600"


def test_utf16_json_is_still_read():
    assert parse_process_request(JSON, '{"text": "h\u00e9"}'.encode("utf-16")).text == "h\u00e9"


@pytest.mark.parametrize("raw", [b"\xff\xff\xff", b"", b"\x00\x00\x00"])
def test_undecodable_bodies_are_invalid_json(raw):
    assert refused(raw).code == "invalid_json"


def test_the_api_answers_deep_json_with_its_error_shape(lambda_context):
    event = {**load_event("api"), "body": "[" * 100_000}
    response = app.resolve(event, lambda_context)
    assert response["statusCode"] == 400
    error = json.loads(response["body"])["error"]
    assert error["code"] == "json_too_deep" and error["message"] and error["details"]["limit"] == MAX_JSON_DEPTH
