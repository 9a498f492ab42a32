"""The HTTP service: FastAPI app, gallery and the service-wide settings.

Kept import-light: `app.settings` is shared with the worker and must not pull in FastAPI.
"""
