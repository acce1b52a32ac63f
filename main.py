"""CDKTF app: load settings, build the stacks, synthesize. No resource code lives here."""

import sys
from pathlib import Path

from constructs_lib.settings import SettingsError, load_settings


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as error:
        # Before any cdktf import or App: a bad file stops the synth with nothing written.
        print(error, file=sys.stderr)
        return 2

    from constructs_lib.cdk import App
    from constructs_lib.naming import Names
    from constructs_lib.stacks import RemoteStateStack, ServiceStack

    names = Names(settings.service.name, settings.service.stage)
    app = App()
    RemoteStateStack(app, names.remote_state_stack, settings)
    ServiceStack(app, names.service_stack, settings, staging_dir=Path(app.outdir) / ".staging")
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
