"""deskbot: watches a Zendesk or Freshdesk queue, routes tickets, catches SLA breaches, alerts in Slack."""

__version__ = "0.1.0"
