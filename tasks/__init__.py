"""What the gateway and the workers share: the Celery app, queue and task names,
the models catalog and the shapes of the messages they exchange."""
