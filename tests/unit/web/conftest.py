from __future__ import annotations

import sys
from pathlib import Path

# The web tests share one support module (tests/integration/web/support.py).
_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
