"""The local gateway runs the template's Lambda authorizer as API Gateway
does, and refuses authorizer set-ups it would not run faithfully."""

from __future__ import annotations

import pytest

from local.apigw import authorize, authorizer_event, build_event
from local.template import Route, UnsupportedTemplate, route_authorizer
from tests.local.test_local_runtime import stack


def test_routes_get_the_apis_default_authorizer_unless_they_opt_out():
    routes = {(r.method, r.path): r.authorizer for r in stack().functions["ApiFunction"].routes}
    assert routes[("POST", "/v2/process")] == "AuthorizerFunction"
    assert routes[("GET", "/health")] is None


def _api(**authorizer) -> dict:
    spec = {"FunctionArn": {"Fn::GetAtt": ["Auth", "Arn"]}, "AuthorizerPayloadFormatVersion": "2.0",
            "EnableSimpleResponses": True, "Identity": {"ReauthorizeEvery": 0}, **authorizer}
    return {"Api": {"Type": "AWS::Serverless::HttpApi",
                    "Properties": {"Auth": {"DefaultAuthorizer": "A", "Authorizers": {"A": spec}}}}}


def test_a_faithful_authorizer_is_accepted():
    assert route_authorizer(_api(), {"ApiId": {"Ref": "Api"}}) == "Auth"
    assert route_authorizer(_api(), {"ApiId": {"Ref": "Api"}, "Auth": {"Authorizer": "NONE"}}) is None
    assert route_authorizer(_api(), {}) is None  # the implicit API: no Auth


@pytest.mark.parametrize(("change", "problem"), [
    ({"AuthorizerPayloadFormatVersion": "1.0"}, "payload 2.0"),
    ({"EnableSimpleResponses": False}, "simple responses"),
    ({"Identity": {"ReauthorizeEvery": 300, "Headers": ["x-api-key"]}}, "ReauthorizeEvery: 0"),
    ({"Identity": {"ReauthorizeEvery": 0, "Headers": ["x-api-key"]}}, "identity sources"),
    ({"FunctionArn": "arn:aws:lambda:us-east-1:1:function:elsewhere"}, "GetAtt"),
])
def test_anything_the_local_gateway_would_run_differently_is_refused(change, problem):
    with pytest.raises(UnsupportedTemplate, match=problem):
        route_authorizer(_api(**change), {"ApiId": {"Ref": "Api"}})


def test_api_gateways_answers_to_an_authorizers_reply():
    assert authorize({"ok": {"isAuthorized": True, "context": {"tenant_id": "t"}}}) == {"tenant_id": "t"}
    assert authorize({"ok": {"isAuthorized": False}}) == (403, b'{"message":"Forbidden"}')
    assert authorize({"ok": {"isAuthorized": "yes"}})[0] == 500  # malformed
    assert authorize({"error": {"errorType": "Boom", "errorMessage": "x"}})[0] == 500


def test_the_authorizer_gets_the_request_without_its_body():
    route = Route("POST", "/v2/process", "ApiFunction", "AuthorizerFunction")
    event = build_event("POST", "/v2/process?a=1", {"x-api-key": "k", "host": "h"}, b'{"text":"secret"}', route, {},
                        "127.0.0.1")
    sent = authorizer_event(event, route)
    assert sent["type"] == "REQUEST" and sent["version"] == "2.0" and sent["headers"]["x-api-key"] == "k"
    assert sent["routeArn"].endswith("/$default/POST/v2/process") and sent["rawQueryString"] == "a=1"
    assert "body" not in sent
