"""moto gap: `UpdateFunctionConfiguration` ignores `KMSKeyArn` and `TracingConfig`.

moto 5.2.5 answered 200 with the old values, so changing a function's environment key or turning
`observability.tracing` on or off never took effect and every later plan showed the change again. Both are
applied here; an empty `KMSKeyArn` removes the key, as in Lambda. (Execution is `lambda_runner`'s.)
"""

from __future__ import annotations

from typing import Any

from moto.awslambda.models import LambdaFunction

_installed = False


def install() -> None:
    """Patch moto's function model (idempotent)."""
    global _installed
    if _installed:
        return
    moto_update_configuration = LambdaFunction.update_configuration

    def update_configuration(self: LambdaFunction, config_updates: dict[str, Any]) -> dict[str, Any]:
        if "KMSKeyArn" in config_updates:
            self.kms_key_arn = config_updates["KMSKeyArn"] or None
        if config_updates.get("TracingConfig"):
            self.tracing_config = {"Mode": config_updates["TracingConfig"].get("Mode") or "PassThrough"}
        return moto_update_configuration(self, config_updates)

    LambdaFunction.update_configuration = update_configuration
    _installed = True
