"""The OpenAPI document (/openapi.json) and the offline docs pages (/docs, /redoc)."""
