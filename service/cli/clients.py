"""``imi-api clients``: API clients (OAuth 2.0 client credentials) and their secrets."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from service.cli import common

app = typer.Typer(help="API clients (OAuth 2.0 client credentials)", no_args_is_help=True)


@app.command("create")
def clients_create(
    name: Annotated[str, typer.Option(help="who the client is")],
    scope: Annotated[list[str], typer.Option(help="a scope; repeat for more")],
    school: Annotated[str | None, typer.Option(help="bind a school:self client to a school")] = None,
    organisation: Annotated[
        str | None,
        typer.Option(help="review:comment: the organisation it stands for (shown with its comments)"),
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="review:comment: the organisation's region (DE, or UN M49 such as 150)")
    ] = None,
    commenter_type: Annotated[
        str | None, typer.Option(help="review:comment: association, training_school, individual or other")
    ] = None,
) -> None:
    """Register an API client; prints one line of JSON with its id and secret."""
    from service.security import clients as service
    from service.standards.schemas import normalise_region

    try:
        if region is not None:
            region = normalise_region(region)
    except ValueError as exc:
        common.err(f"error: --region: {exc}")
        raise typer.Exit(2) from exc
    with common.operator_errors(), common.session() as session:
        if school is not None:
            # A typo would make a client that can edit nothing (every write a 404), silently.
            from service.core.errors import NotFound
            from service.registry.models import School

            if session.get(School, school) is None:
                raise NotFound(
                    f"--school: there is no school {school!r} (its id: GET /v1/schools?q=<its name>)"
                )
        client, secret = service.create_client(
            session=session,
            name=name,
            scopes=scope,
            school_id=school,
            organisation=organisation,
            region=region,
            commenter_type=commenter_type,
        )
    typer.echo(json.dumps({"client_id": client.id, "client_secret": secret}))


@app.command("list")
def clients_list() -> None:
    """List clients, one JSON object per line (no secrets)."""
    from service.core.jsonutil import dumps
    from service.security import clients as service

    with common.session() as session:
        for c in service.list_clients(session=session):
            row: dict[str, object] = {
                "client_id": c.id,
                "name": c.name,
                "scopes": c.scopes.split(),
                "school_id": c.school_id,
                "created_at": c.created_at,
                "revoked_at": c.revoked_at,
            }
            if c.organisation is not None:  # a review:comment client: whom it stands for
                row.update(organisation=c.organisation, region=c.region, commenter_type=c.commenter_type)
            typer.echo(dumps(row).decode())


@app.command("revoke")
def clients_revoke(client_id: str) -> None:
    """Revoke a client: its tokens stop working at once."""
    from service.security import clients as service

    with common.operator_errors(), common.session() as session:
        service.revoke_client(session=session, client_id=client_id)
    common.err(f"revoked {client_id}")


@app.command("rotate-secret")
def clients_rotate(client_id: str) -> None:
    """Give a client a new secret; prints one line of JSON with it."""
    from service.security import clients as service

    with common.operator_errors(), common.session() as session:
        secret = service.rotate_secret(session=session, client_id=client_id)
    typer.echo(json.dumps({"client_id": client_id, "client_secret": secret}))
