"""Notifiers: alerts wait in an outbox (`base`) and go out in order (`delivery`) to Slack or a terminal."""
