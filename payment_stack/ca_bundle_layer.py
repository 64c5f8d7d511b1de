"""A CA bundle known at synth, shipped to the posting function as a file in a layer of its own.

Lambda allows 4 KB for all of a function's environment variables together, and a root CA with
its intermediates is often more; a layer has room for any bundle. Lambda extracts a layer's
content under ``/opt``, so the function is given the file's path there
(``CORE_BANKING_CA_BUNDLE_FILE``) and reads it as ``cafile``. The bundle is public material
(certificates, no keys), so a layer (stored like code, readable by whoever may read the
function's code) is no weaker a place for it than the environment.

Built without Docker: the PEM is written to a temporary directory at synth, which CDK copies
into the cloud assembly as the layer's asset (hashed by content, so an unchanged bundle keeps
its asset and layer version).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from payment_stack.lambda_package import ARCHITECTURE, RUNTIME

# Where the file is in the layer's content, and so under /opt in the function.
LAYER_DIRECTORY = "core-banking-ca"
FILE_NAME = "ca-bundle.pem"
FUNCTION_PATH = f"/opt/{LAYER_DIRECTORY}/{FILE_NAME}"
# With this context set (SAM does), the template refers to the asset's source directory
# instead of a copy, so that directory must outlive the synth.
_ASSET_STAGING_DISABLED = "aws:cdk:disable-asset-staging"


def ca_bundle_layer(scope: Construct, construct_id: str, pem: str) -> lambda_.LayerVersion:
    """A layer holding ``pem`` exactly, as ``/opt/core-banking-ca/ca-bundle.pem``."""
    source = Path(tempfile.mkdtemp(prefix="core-banking-ca-"))
    try:
        (source / LAYER_DIRECTORY).mkdir()
        (source / LAYER_DIRECTORY / FILE_NAME).write_bytes(pem.encode("ascii"))
        # The asset is staged (copied into the cloud assembly) as the layer binds its code.
        return lambda_.LayerVersion(
            scope,
            construct_id,
            description="CA bundle the posting function trusts for the core-banking API",
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            code=lambda_.Code.from_asset(str(source)),
        )
    finally:
        if not scope.node.try_get_context(_ASSET_STAGING_DISABLED):
            shutil.rmtree(source, ignore_errors=True)
