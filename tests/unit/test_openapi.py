"""GET /openapi.json: a valid OpenAPI 3.1 document, served without an API
key, whose request schema is the model the API validates with."""

import json
from pathlib import Path

import pytest

from harpoon.api import app
from harpoon.models import ProcessRequest, Requirements
from harpoon.openapi import ERRORS, REF, document
from local.template import load_stack
from tests.conftest import load_event

ROOT = Path(__file__).resolve().parents[2]


def test_document_is_valid_openapi_31():
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document())
    assert document()["openapi"] == "3.1.0"


def test_document_lists_every_route():
    paths = document()["paths"]
    from local.template import load_yaml
    from tests.conftest import ROOT

    events = load_yaml(ROOT / "template.yaml")["Resources"]["ApiFunction"]["Properties"]["Events"].values()
    routes = {(e["Properties"]["Path"], e["Properties"]["Method"].lower()) for e in events if e["Type"] == "HttpApi"}
    assert {(path, method) for path, ops in paths.items() for method in ops} == routes
    assert ("/v1/chat/completions", "post") in routes
    assert paths["/health"]["get"]["security"] == [] and paths["/openapi.json"]["get"]["security"] == []


def test_process_describes_every_status_and_header():
    process = document()["paths"]["/v2/process"]["post"]
    assert set(process["responses"]) == {"200", "202", "400", "401", "409", "413", "415", "422", "429", "500", "502",
                                         "503", "504"} == {"200", "202", *ERRORS}
    bodies = {"200": "ProcessResponse", "202": "AsyncAccepted"}
    for status, response in process["responses"].items():
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": REF.format(model=bodies.get(status, "Error"))}
    assert "X-Request-Id" in process["responses"]["200"]["headers"]
    assert all("Retry-After" in process["responses"][s]["headers"] for s in ("429", "503"))
    assert [p["name"] for p in process["parameters"]] == ["Prefer", "Idempotency-Key"]
    assert "json_too_deep" in process["responses"]["400"]["description"]


def test_security_schemes_are_the_api_key_and_bearer():
    doc = document()
    assert doc["components"]["securitySchemes"] == {
        "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        "bearer": {"type": "http", "scheme": "bearer", "description": "The same API key as a bearer token."},
    }
    assert doc["security"] == [{"apiKey": []}, {"bearer": []}]  # either one


def test_request_schema_is_the_models():
    schemas = document()["components"]["schemas"]
    expected = ProcessRequest.model_json_schema(ref_template=REF)
    assert schemas["Requirements"] == expected.pop("$defs")["Requirements"] == Requirements.model_json_schema()
    assert schemas["ProcessRequest"] == expected


def test_document_is_built_once():
    assert document() is document()


def test_served_without_an_api_key(lambda_context):
    event = json.loads(json.dumps(load_event("api_health")))  # no authorizer verdict, as the route has none
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/openapi.json"
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /openapi.json"
    response = app.resolve(event, lambda_context)
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/json"
    assert json.loads(response["body"]) == json.loads(json.dumps(document()))


def test_template_routes_it_without_the_authorizer():
    stack = load_stack(ROOT, overrides={"WorkflowType": "STANDARD"}, prefix="p",
                       secret_arns={"HostedAiApiKeySecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s"})
    routes = {(r.method, r.path): r.authorizer for r in stack.functions["ApiFunction"].routes}
    assert routes[("GET", "/openapi.json")] is None
    assert routes[("POST", "/v2/process")] is not None
