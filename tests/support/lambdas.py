"""Load a function's `handler.py` the way the Lambda runtime sees it.

`lambda` is a Python keyword and every function's file is `handler.py`, so each is executed from its path
under a unique module name (registered in `sys.modules`, so tests can import and patch it), with
`lambda/shared/` importable as it is inside the deployed zip.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tools.paths import PROJECT_ROOT

LAMBDA_ROOT = PROJECT_ROOT / "lambda"


def load_handler(function: str, module_name: str) -> ModuleType:
    shared = str(LAMBDA_ROOT / "shared")
    if shared not in sys.path:
        sys.path.insert(0, shared)
    spec = importlib.util.spec_from_file_location(module_name, LAMBDA_ROOT / function / "handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
