"""Reads template.yaml for the local stack: functions, their handlers and
environment, the HTTP API routes, tables, and the state machine's ASL with its
DefinitionSubstitutions. Intrinsics are resolved against local physical ids,
so the local stack runs what deploys instead of a copy of it.

Only what the template uses is supported (Ref, Fn::GetAtt, Fn::Sub, Fn::Join,
Fn::If/Equals/Not with Conditions); anything else raises UnsupportedTemplate
loudly rather than running something different from AWS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT = "123456789012"
REGION = "us-east-1"


class UnsupportedTemplate(Exception):
    pass


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_yaml(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@dataclass
class Route:
    method: str
    path: str
    function: str  # logical id
    authorizer: str | None = None  # logical id of the Lambda authorizer's function, if the route has one

    def matches(self, method: str, path: str) -> dict | None:
        if self.method not in ("ANY", method.upper()):
            return None
        pattern = ""
        for piece in re.split(r"(\{\w+\+?\})", self.path):
            if piece.startswith("{"):
                name = piece.strip("{}+")
                pattern += f"(?P<{name}>.+)" if piece.endswith("+}") else f"(?P<{name}>[^/]+)"
            else:
                pattern += re.escape(piece)
        match = re.fullmatch(pattern, path)
        return match.groupdict() if match else None


@dataclass
class Function:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    layer_dirs: list[Path]
    routes: list[Route] = field(default_factory=list)
    schedules: list[float] = field(default_factory=list)  # seconds between scheduled invocations
    # (state machine ARN, statuses): EventBridge rules on Step Functions'
    # "Execution Status Change" events, which the local stack delivers.
    execution_rules: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


@dataclass
class Table:
    logical_id: str
    name: str
    properties: dict


@dataclass
class StateMachine:
    logical_id: str
    name: str
    arn: str
    definition: str
    type: str


@dataclass
class Stack:
    root: Path
    parameters: dict[str, str]
    functions: dict[str, Function]
    tables: dict[str, Table]
    secrets: dict[str, str]  # logical id -> name
    state_machines: dict[str, StateMachine]


class Resolver:
    """Resolves intrinsics against the local physical ids."""

    def __init__(self, template: dict, parameters: dict[str, str], prefix: str, secret_arns: dict[str, str]):
        self.template = template
        self.parameters = parameters
        self.prefix = prefix
        self.secret_arns = secret_arns
        self.resources = template.get("Resources", {})

    def physical_name(self, logical_id: str) -> str:
        return f"{self.prefix}-{logical_id}"

    def ref(self, name: str) -> str:
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": self.prefix}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        resource = self.resources.get(name)
        if resource is None:
            raise UnsupportedTemplate(f"Ref to unknown name {name}")
        kind = resource["Type"]
        if kind == "AWS::Serverless::StateMachine":
            return self.state_machine_arn(name)
        if kind == "AWS::SecretsManager::Secret":
            return self.secret_arns[name]
        return self.physical_name(name)  # tables, functions, log groups, APIs: their name

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        if attribute == "Arn":
            if kind == "AWS::Serverless::Function":
                return self.function_arn(logical_id)
            if kind == "AWS::DynamoDB::Table":
                return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
            if kind == "AWS::Logs::LogGroup":
                return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
        if attribute == "Name" and kind == "AWS::Serverless::StateMachine":
            return name
        raise UnsupportedTemplate(f"GetAtt {logical_id}.{attribute} is not supported locally")

    def function_arn(self, logical_id: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.physical_name(logical_id)}"

    def state_machine_arn(self, logical_id: str) -> str:
        return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.physical_name(logical_id)}"

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub_var(m.group(1), extra), text)
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.resolve(arg[1]))
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key.startswith("Fn::"):
                raise UnsupportedTemplate(f"{key} is not supported by the local stack")
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub_var(self, name: str, extra: dict) -> str:
        if name in extra:
            return str(extra[name])
        if "." in name and not name.startswith("AWS::"):
            logical_id, attribute = name.split(".", 1)
            return self.get_att(logical_id, attribute)
        return str(self.ref(name))


def load_stack(root: Path, *, overrides: dict[str, str], prefix: str, secret_arns: dict[str, str]) -> Stack:
    template = load_yaml(root / "template.yaml")
    parameters = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    unknown = set(overrides) - set(parameters)
    if unknown:
        raise UnsupportedTemplate(f"override of unknown parameter(s) {sorted(unknown)}")
    parameters.update(overrides)
    resolver = Resolver(template, parameters, prefix, secret_arns)
    globals_fn = template.get("Globals", {}).get("Function", {})
    resources = template["Resources"]

    functions: dict[str, Function] = {}
    tables: dict[str, Table] = {}
    secrets: dict[str, str] = {}
    machines: dict[str, StateMachine] = {}
    for logical_id, resource in resources.items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::Serverless::Function":
            functions[logical_id] = _function(root, logical_id, props, globals_fn, resources, resolver)
        elif kind == "AWS::DynamoDB::Table":
            tables[logical_id] = Table(logical_id, resolver.physical_name(logical_id), resolver.resolve(props))
        elif kind == "AWS::SecretsManager::Secret":
            secrets[logical_id] = resolver.physical_name(logical_id)
        elif kind == "AWS::Serverless::StateMachine":
            definition = (root / props["DefinitionUri"]).read_text(encoding="utf-8")
            for key, value in resolver.resolve(props.get("DefinitionSubstitutions", {})).items():
                definition = definition.replace("${" + key + "}", str(value))
            leftover = re.findall(r"\$\{[^}]+\}", definition)
            if leftover:
                raise UnsupportedTemplate(f"{logical_id}: no substitution for {sorted(set(leftover))}")
            machines[logical_id] = StateMachine(
                logical_id,
                resolver.physical_name(logical_id),
                resolver.state_machine_arn(logical_id),
                json.dumps(json.loads(definition)),
                str(resolver.resolve(props.get("Type", "STANDARD"))),
            )
    return Stack(root, parameters, functions, tables, secrets, machines)


def _function(root: Path, logical_id: str, props: dict, globals_fn: dict, resources: dict, resolver: Resolver) -> Function:
    merged = {**globals_fn, **props}
    env = {
        **globals_fn.get("Environment", {}).get("Variables", {}),
        **props.get("Environment", {}).get("Variables", {}),
    }
    layer_dirs = []
    for layer in resolver.template.get("Globals", {}).get("Function", {}).get("Layers", []) + props.get("Layers", []):
        if not (isinstance(layer, dict) and "Ref" in layer and layer["Ref"] in resources):
            raise UnsupportedTemplate(f"{logical_id}: only layers defined in this template are supported locally")
        layer_dirs.append(root / resources[layer["Ref"]]["Properties"]["ContentUri"])
    routes, schedules, execution_rules = [], [], []
    for event in (props.get("Events") or {}).values():
        p = event.get("Properties", {})
        if event.get("Type") == "HttpApi":
            routes.append(Route(p.get("Method", "ANY").upper(), p.get("Path", "/"), logical_id,
                                route_authorizer(resources, p)))
        elif event.get("Type") == "Schedule":
            schedules.append(rate_seconds(resolver.resolve(p["Schedule"])))
        elif event.get("Type") == "EventBridgeRule":
            execution_rules.append(execution_rule(logical_id, resolver.resolve(p["Pattern"])))
    return Function(
        logical_id=logical_id,
        name=resolver.physical_name(logical_id),
        arn=resolver.function_arn(logical_id),
        code_dir=root / props["CodeUri"],
        handler=merged["Handler"],
        timeout=int(merged.get("Timeout", 3)),
        memory=int(merged.get("MemorySize", 128)),
        environment={k: str(v) for k, v in resolver.resolve(env).items()},
        layer_dirs=layer_dirs,
        routes=routes,
        schedules=schedules,
        execution_rules=execution_rules,
    )


def execution_rule(logical_id: str, pattern: dict) -> tuple[str, tuple[str, ...]]:
    """The one kind of EventBridge rule the local stack delivers: Step
    Functions' status changes of one state machine's executions."""
    detail = pattern.get("detail") or {}
    if (pattern.get("source") != ["aws.states"]
            or pattern.get("detail-type") != ["Step Functions Execution Status Change"]
            or len(detail.get("stateMachineArn") or []) != 1 or set(detail) - {"stateMachineArn", "status"}):
        raise UnsupportedTemplate(f"{logical_id}: only rules on one state machine's execution status changes "
                                  "are delivered locally")
    return detail["stateMachineArn"][0], tuple(detail.get("status") or ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"))


def route_authorizer(resources: dict, event_props: dict) -> str | None:
    """The function behind an HttpApi route's Lambda authorizer (the API's
    DefaultAuthorizer unless the route says otherwise; NONE for none). Only
    what the local gateway runs as API Gateway would is accepted: payload
    2.0, simple responses, no gateway cache."""
    api_ref = event_props.get("ApiId")
    if not (isinstance(api_ref, dict) and api_ref.get("Ref") in resources):
        return None  # the implicit API: no Auth in this template
    auth = resources[api_ref["Ref"]].get("Properties", {}).get("Auth") or {}
    name = (event_props.get("Auth") or {}).get("Authorizer", auth.get("DefaultAuthorizer"))
    if name in (None, "NONE"):
        return None
    spec = (auth.get("Authorizers") or {}).get(name)
    if spec is None or "FunctionArn" not in spec:
        raise UnsupportedTemplate(f"authorizer {name!r}: only Lambda authorizers of this template run locally")
    if str(spec.get("AuthorizerPayloadFormatVersion")) != "2.0" or spec.get("EnableSimpleResponses") is not True:
        raise UnsupportedTemplate(f"authorizer {name!r}: only payload 2.0 with simple responses runs locally")
    identity = spec.get("Identity") or {}
    if int(identity.get("ReauthorizeEvery", 300)) != 0:
        raise UnsupportedTemplate(f"authorizer {name!r}: the gateway's result cache is not emulated; set ReauthorizeEvery: 0")
    if set(identity) - {"ReauthorizeEvery"}:
        # API Gateway answers a bare 401 itself when an identity source is
        # missing; the local gateway always calls the authorizer.
        raise UnsupportedTemplate(f"authorizer {name!r}: identity sources are not emulated locally")
    arn = spec["FunctionArn"]
    if not (isinstance(arn, dict) and "Fn::GetAtt" in arn):
        raise UnsupportedTemplate(f"authorizer {name!r}: FunctionArn must be !GetAtt <Function>.Arn")
    target = arn["Fn::GetAtt"]
    return (target if isinstance(target, list) else target.split("."))[0]


def rate_seconds(expression: str) -> float:
    """`rate(5 minutes)` -> 300. cron() schedules are not run locally."""
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        raise UnsupportedTemplate(f"schedule {expression!r}: only rate(N minutes|hours|days) runs locally")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit
