"""The Celery side: queue configuration, the training task, and the on-disk job records."""
