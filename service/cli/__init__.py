"""The ``imi-api`` command (Typer). Logs go to stderr, results to stdout (DESIGN §7).

The commands live by what they act on: the service itself (``run.py``: ``migrate``,
``load-sample``, ``serve``, ``worker``, ``openapi``), its data (``data.py``: ``export``,
``import``, ``verify-snapshot``), API clients (``clients.py``), signing keys (``keys.py``)
and witnesses (``witnesses.py``); what they share is ``common.py``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli import clients, common, data, keys, run, witnesses

app = typer.Typer(help="IMI Standards API", no_args_is_help=True, add_completion=False)
app.add_typer(clients.app, name="clients")
app.add_typer(keys.app, name="keys")
app.add_typer(witnesses.app, name="witnesses")


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="show a traceback for every error")] = False,
) -> None:
    """IMI Standards API. Only `serve` and `migrate` create a database; every other command
    needs a migrated one and says so in one line (exit 2) when it is missing."""
    common.options.debug = debug
    # A bad IMI_… variable is an operator's mistake: one line here, not a traceback from
    # whichever command reads the settings first.
    common.settings_or_exit()


app.command()(run.migrate)
app.command("load-sample")(run.load_sample_cmd)
app.command()(run.serve)
app.command()(run.worker)
app.command("export")(data.export_cmd)
app.command("import")(data.import_cmd)
app.command()(run.openapi)
app.command("verify-snapshot")(data.verify_snapshot_cmd)
