"""The moto internals the local stack and the workflow tests rely on. If moto
changes, these fail with a message saying what moved (moto is pinned exactly
in requirements-dev.txt for this reason)."""

import inspect
from pathlib import Path

import moto

ROOT = Path(__file__).resolve().parents[2]


def test_moto_is_the_pinned_version():
    pinned = [line for line in (ROOT / "requirements-dev.txt").read_text().splitlines() if line.startswith("moto")]
    assert pinned and pinned[0].endswith("==" + moto.__version__), f"moto {moto.__version__} is not the pinned {pinned}"


def test_the_asl_engine_calls_lambda_through_a_default_session_client():
    from moto.stepfunctions.parser.asl.utils import boto_client

    source = inspect.getsource(boto_client.boto_client_for)
    assert "boto3.client(" in source, "moto no longer creates Lambda clients with boto3.client: local/lambda_hook.py cannot reach it"


def test_function_errors_are_named_by_errortype():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_lambda

    assert '"errorType"' in inspect.getsource(state_task_service_lambda), "moto no longer names Lambda errors by errorType"


def test_retry_waits_and_jitter_are_patchable_where_the_tests_patch_them():
    from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl, retrier_decl

    assert "time.sleep(" in inspect.getsource(retrier_decl.RetrierDecl._eval_body), "retry wait moved: tests/statemachine/conftest.py"
    assert hasattr(retrier_decl, "time")
    assert "random.uniform(" in inspect.getsource(jitter_strategy_decl.JitterStrategyDecl._eval_body), "jitter moved"
    assert hasattr(jitter_strategy_decl, "random")


def test_the_server_config_endpoint_enables_the_engine():
    from moto.core.config import default_user_config

    assert "stepfunctions" in default_user_config and "execute_state_machine" in default_user_config["stepfunctions"]


def test_the_dynamodb_write_operations_that_local_ddb_atomic_locks_exist():
    from moto.dynamodb.models import DynamoDBBackend

    from local.ddb_atomic import WRITES

    assert all(callable(getattr(DynamoDBBackend, name, None)) for name in WRITES)
