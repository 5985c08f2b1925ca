"""`python -m tests.fakes.launch ARGS`: the real entry point (`bot.__main__.main`), with discord.py pointed
at TEST_DISCORD_URL (a fake or a closed loopback port) so a subprocess test never reaches the internet."""

from __future__ import annotations

import os
import sys

from bot.__main__ import main
from tests.fakes.discord import point_discord_py_at

if __name__ == "__main__":
    point_discord_py_at(os.environ.get("TEST_DISCORD_URL", "http://127.0.0.1:9"))
    sys.exit(main(sys.argv[1:]))
