"""API function: HTTP API (payload v2) -> harpoon.api routes."""

from aws_lambda_powertools import Logger

from harpoon.api import app

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    return app.resolve(event, context)
