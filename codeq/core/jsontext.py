"""Reading JSON fast without changing it: orjson where it reads exactly what the
standard library would, the standard library elsewhere.

orjson reads an integer beyond 64 bits as a float (123456789012345678901234567890
would come back as 1.2345678901234568e+29) and refuses an escaped lone surrogate;
both are valid JSON that a payload may hold. Text with a run of 19 or more digits
(where such an integer could be) or that orjson refuses goes to the standard
library, which reads both exactly.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONG_DIGITS = re.compile(rb"\d{19}")


def loads(data: str | bytes) -> Any:
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_DIGITS.search(raw):
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)
