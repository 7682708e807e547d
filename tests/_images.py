"""A whole 1x1 PNG for the tests that attach an image: a header alone is refused (the API cannot
process an image with no pixels), so a fixture must be a real image.

tests/ is on `sys.path`, so the tests import it as `from _images import PNG_1X1, PNG_1X1_B64`.
"""

from __future__ import annotations

import base64

__all__ = ["PNG_1X1", "PNG_1X1_B64"]

PNG_1X1_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PNG_1X1 = base64.b64decode(PNG_1X1_B64)
