"""Where the files the constructs synthesize from are, in a checkout and in an installed wheel.

In a checkout they sit at the top of the repository (``lambdas/``, ``statemachine/``), as the
design card lays it out. The wheel carries the States Language files and the layer's
requirements as package data of ``payment_stack`` (pyproject.toml maps them to
``payment_stack/statemachine`` and ``payment_stack/lambda_layer``), and the function code as
the installed ``payment_posting_functions`` package. Nothing here depends on the working
directory: a user's app synthesizes from wherever it runs.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
_CHECKOUT = _HERE.parent
FUNCTIONS_PACKAGE = "payment_posting_functions"


def _installed_or_checkout(installed: Path, checkout: Path) -> Path:
    # An installed payment_stack has its files next to it; a checkout has none there.
    return installed if installed.is_dir() else checkout


STATEMACHINE_DIR = _installed_or_checkout(_HERE / "statemachine", _CHECKOUT / "statemachine")
# lambdas/requirements.txt (what the layer needs) and the hashed lock the layer installs.
LAYER_REQUIREMENTS_DIR = _installed_or_checkout(_HERE / "lambda_layer", _CHECKOUT / "lambdas")
# The code of every function: beside payment_stack in site-packages, or in lambdas/.
FUNCTIONS_DIR = _installed_or_checkout(
    _HERE.parent / FUNCTIONS_PACKAGE, _CHECKOUT / "lambdas" / FUNCTIONS_PACKAGE
)
