"""The worker runtime: one Celery worker per GPU slot, models kept warm in memory."""
