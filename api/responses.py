"""Response classes."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class GeoJSONResponse(JSONResponse):
    """``application/geo+json`` serialised with orjson (fast on big collections)."""

    media_type = "application/geo+json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
