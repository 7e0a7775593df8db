"""template.yaml's dashboard and alarms against the metrics the code emits
(harpoon.metrics.CATALOG): a graph or an alarm that names a metric with other
dimensions than the code sends watches a metric that does not exist, and
CloudWatch says nothing about it (an empty graph, an alarm that never fires)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harpoon.metrics import CATALOG, NAMESPACE
from local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_yaml(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]
CATALOG_MODELS = {m["id"] for m in json.loads((ROOT / "layers/harpoon/harpoon/catalog.json").read_text())["models"]}
SERVICE = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
ALARMS = {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
DASHBOARDS = {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Dashboard"}
EXPECTED_ALARMS = {"BreakerOpenAlarm", "LeakedLeasesAlarm", "Api5xxRateAlarm", "LatencyP95Alarm", "SpendPerHourAlarm"}

POOL = "<pool>"  # what ${HostedAiPoolId} / !Ref HostedAiPoolId stands for below
API_ID = "<api-id>"


def _placeholder(name: str) -> str:
    """A ${name} of the dashboard's !Sub, as something json.loads accepts in
    its place: a parameter's default (numbers stay numbers), an ARN for
    `.Arn`, an id for a resource. An unknown name fails (a typo CloudFormation
    would refuse too)."""
    if name == "HostedAiPoolId":
        return POOL
    if name == "HttpApi":
        return API_ID
    if name.startswith("AWS::"):
        return {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}[name]
    if name in PARAMETERS:
        return str(PARAMETERS[name]["Default"])
    logical_id, _, attribute = name.partition(".")
    assert logical_id in RESOURCES, f"the dashboard's !Sub names unknown {name}"
    if attribute == "Arn" and RESOURCES[logical_id]["Type"] == "AWS::CloudWatch::Alarm":
        return f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{logical_id}"
    assert not attribute, f"the dashboard's !Sub uses {name}: not resolved by this test"
    return f"<{logical_id}>"


def dashboard_body(props: dict) -> dict:
    sub = props["DashboardBody"]["Fn::Sub"]
    text = sub if isinstance(sub, str) else sub[0]
    resolved = re.sub(r"\$\{([^}!]+)\}", lambda m: _placeholder(m.group(1)), text)
    assert "${" not in resolved
    return json.loads(resolved)


def dashboard_metrics(body: dict):
    """(widget title, namespace, metric name, {dimension: value}) of every
    metric line; expression lines ([{"expression": ...}]) are skipped."""
    for widget in body["widgets"]:
        for line in widget["properties"].get("metrics", []):
            fields = [f for f in line if not isinstance(f, dict)]
            if not fields:
                continue
            assert "." not in fields, "write every metric out: the '.' shorthand hides its dimensions from this test"
            namespace, name, *pairs = fields
            assert len(pairs) % 2 == 0, (widget["properties"]["title"], line)
            dims = dict(zip(pairs[::2], pairs[1::2]))
            assert len(dims) == len(pairs) // 2, f"dimension repeated in {line}"
            yield widget["properties"]["title"], namespace, name, dims


def alarm_metrics(props: dict):
    """(namespace, metric name, {dimension: value}) of every metric an alarm reads."""
    if "MetricName" in props:
        yield props["Namespace"], props["MetricName"], {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
    for query in props.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            yield metric["Namespace"], metric["MetricName"], dims


def check_harpoon_metric(where: str, name: str, dims: dict, *, pool) -> None:
    assert name in CATALOG, f"{where}: {name} is not in harpoon.metrics.CATALOG"
    spec = CATALOG[name]
    assert set(dims) == set(spec.dimensions) | {"service"}, (
        f"{where}: {name} has dimensions {sorted(dims)}; the code sends {sorted(spec.dimensions)} + service")
    assert dims["service"] == SERVICE, f"{where}: {name} service={dims['service']!r}"
    if "outcome" in dims:
        assert dims["outcome"] in spec.outcomes, f"{where}: {name} outcome={dims['outcome']!r} is never sent"
    if "model" in dims:
        assert dims["model"] in CATALOG_MODELS, f"{where}: {name} model={dims['model']!r} is not in catalog.json"
    if "pool" in dims:
        assert dims["pool"] == pool, f"{where}: {name} pool={dims['pool']!r} is not HostedAiPoolId"


def check_api_metric(where: str, name: str, dims: dict, *, api_id) -> None:
    assert name in {"Count", "4xx", "5xx", "Latency", "IntegrationLatency"}, f"{where}: {name}"
    assert dims == {"ApiId": api_id, "Stage": "$default"}, f"{where}: {name} {dims}"


# --- the dashboard -------------------------------------------------------------------


def test_there_is_one_dashboard_and_its_body_is_json():
    assert list(DASHBOARDS) == ["HarpoonDashboard"]
    body = dashboard_body(DASHBOARDS["HarpoonDashboard"])
    assert body["widgets"]
    for widget in body["widgets"]:
        assert {"type", "x", "y", "width", "height", "properties"} <= set(widget), widget
        assert 0 <= widget["x"] and widget["x"] + widget["width"] <= 24
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "us-east-1" and widget["properties"]["title"]


def test_every_dashboard_metric_is_one_the_code_sends_with_exactly_its_dimensions():
    body = dashboard_body(DASHBOARDS["HarpoonDashboard"])
    namespaces = set()
    for title, namespace, name, dims in dashboard_metrics(body):
        namespaces.add(namespace)
        if namespace == NAMESPACE:
            check_harpoon_metric(f"dashboard {title!r}", name, dims, pool=POOL)
        else:
            assert namespace == "AWS/ApiGateway", f"{title}: namespace {namespace}"
            check_api_metric(f"dashboard {title!r}", name, dims, api_id=API_ID)
    assert namespaces == {NAMESPACE, "AWS/ApiGateway"}


def test_the_dashboard_shows_every_catalog_metric_for_every_model():
    body = dashboard_body(DASHBOARDS["HarpoonDashboard"])
    shown: dict[str, set] = {}
    for _, namespace, name, dims in dashboard_metrics(body):
        if namespace == NAMESPACE:
            shown.setdefault(name, set()).add(dims.get("model"))
    assert set(shown) == set(CATALOG)
    for name, spec in CATALOG.items():
        if "model" in spec.dimensions:
            assert shown[name] == CATALOG_MODELS, f"{name} is shown for {shown[name]}, not every catalog model"
    api = {name for _, namespace, name, _ in dashboard_metrics(body) if namespace == "AWS/ApiGateway"}
    assert api == {"Count", "4xx", "5xx", "Latency", "IntegrationLatency"}


def test_dashboard_expressions_use_ids_of_the_same_graph():
    body = dashboard_body(DASHBOARDS["HarpoonDashboard"])
    for widget in body["widgets"]:
        lines = widget["properties"].get("metrics", [])
        ids = {line[-1]["id"] for line in lines if isinstance(line[-1], dict) and "id" in line[-1]}
        for line in lines:
            if isinstance(line[0], dict) and "expression" in line[0]:
                used = set(re.findall(r"\b([a-z]\w*)\b(?!\s*\()", line[0]["expression"]))
                assert used <= ids, (widget["properties"]["title"], used - ids)


def test_the_alarm_widget_lists_every_alarm():
    body = dashboard_body(DASHBOARDS["HarpoonDashboard"])
    listed = [arn for w in body["widgets"] if w["type"] == "alarm" for arn in w["properties"]["alarms"]]
    assert sorted(arn.rsplit(":", 1)[1] for arn in listed) == sorted(ALARMS)


# --- the alarms ----------------------------------------------------------------------


def test_the_five_alarms():
    assert set(ALARMS) == EXPECTED_ALARMS


def test_every_alarm_reads_metrics_the_code_sends_with_exactly_their_dimensions():
    for name, props in ALARMS.items():
        metrics = list(alarm_metrics(props))
        assert metrics, f"{name} reads no metric"
        for namespace, metric, dims in metrics:
            if namespace == NAMESPACE:
                check_harpoon_metric(f"alarm {name}", metric, dims, pool={"Ref": "HostedAiPoolId"})
            else:
                assert namespace == "AWS/ApiGateway", f"{name}: namespace {namespace}"
                check_api_metric(f"alarm {name}", metric, dims, api_id={"Ref": "HttpApi"})


def test_every_alarm_notifies_the_topic_both_ways_and_says_what_to_do():
    for name, props in ALARMS.items():
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert props.get("ActionsEnabled", True) is True, name
        assert props["TreatMissingData"] in ("notBreaching", "breaching", "ignore", "missing"), name
        description = props["AlarmDescription"]
        text = description if isinstance(description, str) else description["Fn::Sub"]
        # Long enough to say what to do; CloudWatch takes at most 1024 characters.
        assert 200 <= len(text) <= 1000, f"{name}: {len(text)} characters of description"
        assert "AlarmName" not in props, f"{name}: let CloudFormation name it (one stack per environment)"


def test_metric_math_alarms_return_one_series_built_from_their_own_queries():
    for name, props in ALARMS.items():
        queries = props.get("Metrics")
        if not queries:
            continue
        assert not {"MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Period"} & set(props), name
        assert [q["ReturnData"] for q in queries].count(True) == 1, name
        ids = {q["Id"] for q in queries}
        for query in queries:
            if "Expression" in query:
                expression = query["Expression"]
                text = expression if isinstance(expression, str) else expression["Fn::Sub"]
                used = set(re.findall(r"\b([a-z]\w*)\b(?!\s*\()", text))
                assert used <= ids - {query["Id"]}, (name, used - ids)
        periods = {q["MetricStat"]["Period"] for q in queries if "MetricStat" in q}
        assert len(periods) == 1, f"{name}: its metrics have different periods {periods}"


def _period(props: dict) -> int:
    return props.get("Period") or next(q["MetricStat"]["Period"] for q in props["Metrics"] if "MetricStat" in q)


def test_alarm_windows_and_thresholds():
    breaker, leaks, errors, latency, spend = (ALARMS[n] for n in (
        "BreakerOpenAlarm", "LeakedLeasesAlarm", "Api5xxRateAlarm", "LatencyP95Alarm", "SpendPerHourAlarm"))
    # Both models, opened, within a minute.
    opened = [dims for _, metric, dims in alarm_metrics(breaker) if metric == "BreakerTransitions"]
    assert {d["model"] for d in opened} == CATALOG_MODELS and {d["outcome"] for d in opened} == {"open"}
    assert _period(breaker) == 60 and breaker["Threshold"] == 1 and breaker["DatapointsToAlarm"] == 1
    # Only the reclaims that were leaks, not the warm pool's idle GPUs.
    reclaimed = {d["outcome"] for _, metric, d in alarm_metrics(leaks) if metric == "LeasesReclaimed"}
    assert reclaimed == {"active", "releasing", "pending"}
    assert _period(leaks) == 300
    # 5xx share over 5 minutes, with a traffic floor, against a parameter.
    assert _period(errors) == 300 and errors["Threshold"] == {"Ref": "Api5xxRateAlarmPercent"}
    rate = next(q for q in errors["Metrics"] if q["ReturnData"])["Expression"]["Fn::Sub"]
    assert "${Api5xxAlarmMinRequests}" in rate and rate.startswith("IF(")
    # p95 in 3 of 5 minutes, below the 25 s sync wait.
    assert latency["ExtendedStatistic"] == "p95" and latency["Threshold"] == {"Ref": "LatencyP95AlarmMs"}
    assert (latency["Period"], latency["EvaluationPeriods"], latency["DatapointsToAlarm"]) == (60, 5, 3)
    assert int(PARAMETERS["LatencyP95AlarmMs"]["Default"]) < 25_000
    # An hour of GpuCost, both models.
    costs = [dims for _, metric, dims in alarm_metrics(spend) if metric == "GpuCost"]
    assert {d["model"] for d in costs} == CATALOG_MODELS
    assert _period(spend) == 3600 and spend["Threshold"] == {"Ref": "SpendAlarmUsdPerHour"}


def test_alarm_parameters_have_defaults_descriptions_and_bounds():
    for name in ("Api5xxRateAlarmPercent", "Api5xxAlarmMinRequests", "LatencyP95AlarmMs", "SpendAlarmUsdPerHour"):
        spec = PARAMETERS[name]
        assert spec["Type"] == "Number" and "Default" in spec and spec["Description"], name
        assert "MinValue" in spec and spec["MinValue"] <= spec["Default"], name
    email = PARAMETERS["AlarmEmail"]
    assert email["Default"] == "" and re.fullmatch(email["AllowedPattern"], "")
    assert re.fullmatch(email["AllowedPattern"], "ops@example.com")


def test_the_topic_gets_an_email_subscription_only_when_one_is_given():
    assert RESOURCES["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    subscriptions = {n: r for n, r in RESOURCES.items() if r["Type"] == "AWS::SNS::Subscription"}
    assert list(subscriptions) == ["AlarmEmailSubscription"]
    subscription = subscriptions["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert TEMPLATE["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert subscription["Properties"] == {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email",
                                          "Endpoint": {"Ref": "AlarmEmail"}}
    assert TEMPLATE["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}
