"""The HTTP service: the FastAPI app, its routes and the gallery. It reads runs/ and never trains."""
