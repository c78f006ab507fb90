"""Helpdesk connectors. Register a new platform here: one line mapping its name to its class path."""

CONNECTORS: dict[str, str] = {
    "zendesk": "bot.connectors.zendesk:ZendeskConnector",
    "freshdesk": "bot.connectors.freshdesk:FreshdeskConnector",
}
