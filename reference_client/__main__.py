"""``python -m reference_client`` and the ``abp-client`` console script."""

from __future__ import annotations

import sys

from reference_client.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
