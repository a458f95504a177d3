"""``imi-api witnesses``: the regional associations that cosign the transparency log."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from service.cli import common

app = typer.Typer(
    help="Witnesses: regional associations that cosign the transparency log", no_args_is_help=True
)


@app.command("add")
def witnesses_add(
    name: Annotated[str, typer.Option(help="the association, e.g. 'Mindfulness Verband Deutschland'")],
    region: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 (DE) or UN M49 (150)")],
    key: Annotated[str, typer.Option(help="its cosigner vkey: <name>+<key id>+<base64(0x04||key)>")],
) -> None:
    """Register a witness; prints one line of JSON describing it."""
    from service.transparency import witnesses

    with common.operator_errors(), common.session() as session:
        witness = witnesses.add_witness(session=session, name=name, region=region, key=key)
        described = witnesses.witness_dict(witness)
    typer.echo(json.dumps(described, ensure_ascii=False))


@app.command("list")
def witnesses_list(
    removed: Annotated[bool, typer.Option("--removed", help="include removed witnesses")] = False,
) -> None:
    """Witnesses, one JSON object per line."""
    from service.transparency import witnesses

    with common.session() as session:
        latest = witnesses.latest_cosigned_sizes(session)
        for w in witnesses.list_witnesses(session=session, include_removed=removed):
            described = witnesses.witness_dict(w, latest_cosigned_size=latest.get(w.id))
            described["removed"] = w.removed_at is not None
            typer.echo(json.dumps(described, ensure_ascii=False))


@app.command("remove")
def witnesses_remove(witness_id: str) -> None:
    """Stop trusting a witness: its cosignatures are no longer served."""
    from service.transparency import witnesses

    with common.operator_errors(), common.session() as session:
        witnesses.remove_witness(session=session, witness_id=witness_id)
    common.err(f"removed {witness_id}")
