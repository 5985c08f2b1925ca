"""`python -m bot.ops.healthcheck`: exit 0 when the local /healthz answers 200 (for Docker's HEALTHCHECK).

Reads HTTP_PORT (default 8080) when run; needs nothing but the standard library.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def check(port: int, timeout: float = 5.0) -> bool:
    """True when http://127.0.0.1:<port>/healthz answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    return 0 if check(int(os.environ.get("HTTP_PORT") or 8080)) else 1


if __name__ == "__main__":
    sys.exit(main())
