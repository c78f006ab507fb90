"""Zendesk credentials never reach logs, error messages or reprs, whatever happens."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from bot.connectors.base import TicketChange
from bot.connectors.zendesk import ZendeskConnector
from bot.connectors.zendesk_http import ZendeskConfig
from bot.errors import AuthError, ConnectorError
from bot.model import Priority
from bot.retry import RetryPolicy

TOKEN = "zd-T0KEN-must-never-be-logged-7f3a"
OAUTH = "oauth-SECRET-9c1d-never-logged"


def forbidden_strings(email: str, secret: str) -> list[str]:
    basic = base64.b64encode(f"{email}/token:{secret}".encode()).decode()
    return [secret, basic, f"Bearer {secret}"]


def exercise(connector: ZendeskConnector, sandbox) -> list[str]:
    """Everything a cycle does, including its failure paths; returns every message produced."""
    messages = [repr(connector), repr(connector.config), repr(connector.session), repr(connector.session.auth),
                str(connector.session.headers)]
    list(connector.fetch_changes(None))
    sandbox.faults.add(status=503, path="/api/v2/tickets/show_many")
    connector.get_tickets([1, 2])
    closed = next(t.id for t in sandbox.queue.tickets if t.status == "closed")
    sandbox.faults.add(status=409, path="/api/v2/tickets/3", method="PUT", times=2)
    results = connector.apply([
        TicketChange(closed, note="n"),
        TicketChange(3, priority=Priority.LOW, expected_updated_at="2024-01-01T00:00:00Z"),
        *[TicketChange(t, add_tags=frozenset({"x"})) for t in (4, 5)],
    ])
    messages += [r.error or "" for r in results]
    sandbox.faults.add(status=429, retry_after=0.5, body="Too many", content_type="text/plain", path="/api/v2/users")
    connector.directory(refresh=True)
    return messages


def test_an_api_token_appears_nowhere(zendesk, zd_sandbox, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3, zenpy and ours, at their most talkative
    messages = exercise(zendesk(), zd_sandbox)
    with pytest.raises(AuthError) as caught:
        zendesk(token="wrong-" + TOKEN).directory(refresh=True)
    messages.append(str(caught.value))
    text = caplog.text + "\n".join(messages)
    assert "zd-" not in "".join(messages)
    for secret in forbidden_strings("deskbot@support.example", TOKEN) + forbidden_strings(
            "deskbot@support.example", "wrong-" + TOKEN):
        assert secret not in text
    assert "GET" in caplog.text  # the logs were really captured


def test_an_oauth_token_appears_nowhere(zd_sandbox, zd_server, zd_time, caplog):
    caplog.set_level(logging.DEBUG)
    zd_sandbox.oauth_token, zd_sandbox.api_token = OAUTH, None
    config = ZendeskConfig.from_env({"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_OAUTH_TOKEN": OAUTH,
                                     "ZENDESK_URL": zd_server.url})
    connector = ZendeskConnector(config, retry=RetryPolicy(sleep=zd_time.sleep), clock=zd_time.now,
                                 sleep=zd_time.sleep, monotonic=zd_time.monotonic)
    messages = exercise(connector, zd_sandbox)
    assert zd_sandbox.requests[0].headers["Authorization"] == f"Bearer {OAUTH}"  # it did authenticate
    assert "Authorization" not in connector.session.headers  # only the auth object holds it
    for secret in forbidden_strings("", OAUTH):
        assert secret not in caplog.text + "\n".join(messages)


def test_the_config_repr_names_the_account_but_not_the_secrets():
    config = ZendeskConfig.from_env({"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_EMAIL": "bot@acme.example",
                                     "ZENDESK_API_TOKEN": TOKEN, "ZENDESK_OAUTH_TOKEN": OAUTH})
    assert "acme" in repr(config) and TOKEN not in repr(config) and OAUTH not in repr(config)
    assert repr(ZendeskConnector(config)) == "ZendeskConnector(https://acme.zendesk.com, auth=oauth_token)"


def test_errors_from_a_server_that_echoes_the_token_are_not_trusted(zendesk, zd_sandbox):
    body = json.dumps({"error": "RecordInvalid", "description": f"bad token {TOKEN}"})
    zd_sandbox.faults.add(status=422, body=body, path="/api/v2/tickets/show_many")
    with pytest.raises(ConnectorError) as caught:
        zendesk().get_tickets([1])
    assert TOKEN not in str(caught.value) and "[redacted]" in str(caught.value)
