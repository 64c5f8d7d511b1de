"""The one code asset and dependency layer that every function of a stack shares.

Built without Docker (docs/adr/0001-lambda-bundling-without-docker.md): the code is the plain
``payment_posting_functions`` package (from ``lambdas/`` in a checkout, from site-packages
when the constructs are installed), and the dependency layer is ``pip install``-ed at synth
for the Lambda platform from wheels only, so no compiler and no container are needed. Every
wheel is checked against the hashes in ``lambdas/requirements.lock``
(docs/adr/0012-hashed-dependency-lock.md), which the wheel carries too (payment_stack/assets.py).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    DockerImage,
    IgnoreMode,
    ILocalBundling,
    Stack,
)
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from payment_stack.assets import FUNCTIONS_DIR, FUNCTIONS_PACKAGE, LAYER_REQUIREMENTS_DIR

# ``make lock`` resolves lambdas/requirements.txt for the Lambda interpreter and platform below,
# at the development lock's versions (so the versions tested are the ones deployed), with hashes.
LOCK = LAYER_REQUIREMENTS_DIR / "requirements.lock"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
_PYTHON_VERSION = "3.14"
_PLATFORM = "manylinux2014_aarch64"
# The asset is the folder that holds the package, so that the handler strings name it
# (``payment_posting_functions.handlers.dedup.handler``) as Lambda imports it from /var/task.
# That folder is lambdas/ in a checkout but all of site-packages when installed: gitignore
# patterns keep the package alone (other folders are not even walked), and drop the caches,
# which would also change the asset hash at random.
CODE_ROOT = FUNCTIONS_DIR.parent
_CODE_EXCLUDES = ["/*", f"!/{FUNCTIONS_PACKAGE}/", "__pycache__/", "*.pyc", ".mypy_cache/"]


@jsii.implements(ILocalBundling)
class PipInstallForLambda:
    """Installs ``lambdas/requirements.lock`` into ``python/`` for the Lambda platform."""

    def try_bundle(self, output_dir: str, options: Any = None, **_: Any) -> bool:
        # --require-hashes: a wheel whose hash the lock does not hold is refused, and so is a
        # dependency the lock does not pin (pip still resolves, to prove the lock complete).
        command = [
            sys.executable, "-m", "pip", "install", "-qq", "--disable-pip-version-check",
            "--no-compile", "--only-binary=:all:", "--implementation", "cp",
            "--python-version", _PYTHON_VERSION, "--platform", _PLATFORM,
            "--target", str(Path(output_dir) / "python"),
            "--require-hashes", "--requirement", str(LOCK),
        ]  # fmt: skip
        subprocess.run(command, check=True)  # noqa: S603 - fixed argv, no shell
        return True


def _pins_hash() -> str:
    return hashlib.sha256(LOCK.read_bytes()).hexdigest()


class LambdaPackage(Construct):
    """Shared per stack: ``LambdaPackage.of(scope)`` returns the stack's one instance."""

    _ID = "PaymentLambdaPackage"

    @classmethod
    def of(cls, scope: Construct) -> LambdaPackage:
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(cls._ID)
        return existing if isinstance(existing, LambdaPackage) else cls(stack, cls._ID)

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.code = lambda_.Code.from_asset(
            str(CODE_ROOT), exclude=_CODE_EXCLUDES, ignore_mode=IgnoreMode.GIT
        )
        self.dependencies_layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            description="Powertools, pydantic and the pinned AWS SDK for the payment functions",
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            code=lambda_.Code.from_asset(
                str(LAYER_REQUIREMENTS_DIR),
                # The layer depends on the pins alone, so only they decide when it is rebuilt.
                asset_hash_type=AssetHashType.CUSTOM,
                asset_hash=_pins_hash(),
                bundling=BundlingOptions(
                    # Required by the API, never pulled: local bundling always succeeds or
                    # raises, so Docker is not needed.
                    image=DockerImage.from_registry("local-bundling-only"),
                    local=PipInstallForLambda(),
                ),
            ),
        )
