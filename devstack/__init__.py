"""The development and test stack: starts the servers that are not configured
(embedded PostgreSQL, Redis), prepares the database, models and keys, and runs the
Procfile. `make run` and the test bootstrap both use it."""
