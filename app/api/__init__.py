"""The gateway's blueprints, one per part of the HTTP API."""
