"""The HTTP API of a node: the Starlette app and its views, request parsing, the response
shapes and the OpenAPI document, the event stream, batch submission and the PoW endpoint.
Served by hypercorn on trio (`serve_api`)."""

from .api import ApiConfig as ApiConfig
from .api import create_app as create_app
from .api import serve_api as serve_api
