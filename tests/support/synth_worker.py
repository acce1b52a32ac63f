"""A long-lived synth process: `main.synthesize` for each request, jsii started once.

A `python main.py` spends ~10 s of CPU starting jsii and loading the AWS provider bindings before a ~2 s synth;
the suite synthesizes some fifteen configurations, so one process per test session (per xdist worker) serves them
all. Requests and replies are JSON lines on stdin and stdout (`SynthWorker` in tests/support/synth.py is the
client); anything the app itself prints goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from constructs_lib.settings import SettingsError, load_settings
from main import synthesize


def serve() -> None:
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        try:
            synthesize(load_settings(request["config"]), request["outdir"])
            reply = {"error": None}
        except SettingsError as error:
            reply = {"error": str(error)}
        except Exception:
            reply = {"error": traceback.format_exc()}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    serve()
