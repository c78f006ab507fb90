"""Fixture modules shared across test folders."""

pytest_plugins = ["tests.connectors.freshdesk_fixtures"]
