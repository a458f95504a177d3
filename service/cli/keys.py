"""``imi-api keys``: the signing keys in ``IMI_KEYS_DIR``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from service.cli import common
from service.core.config import get_settings

app = typer.Typer(help="Signing keys in IMI_KEYS_DIR", no_args_is_help=True)


def _keys():  # type: ignore[no-untyped-def]
    from service.main import build_keys

    return build_keys(get_settings())


def _existing():  # type: ignore[no-untyped-def]
    """The key store, or one line and exit status 2 when IMI_KEYS_DIR holds no signing key: run
    outside the project folder, ``keys rotate`` would otherwise make a fresh set of keys the
    server never reads (and ``keys list`` print nothing), as ``clients create`` once made an
    empty database."""
    store = _keys()
    if not store.all():
        where = Path(get_settings().keys_dir)
        common.err(
            f"error: there are no signing keys in {where} (= {where.resolve()}) (IMI_KEYS_DIR): create them "
            "with `imi-api keys generate` (or `imi-api serve`), or set IMI_KEYS_DIR to the server's"
        )
        raise typer.Exit(2)
    return store


@app.command("generate")
def keys_generate() -> None:
    """Create a signing key, a secret-encryption key and the transparency log's key where there
    are none (the first start does this too), so a read-only mounted IMI_KEYS_DIR can be
    prepared ahead."""
    from service.security import secretbox
    from service.transparency.signer import load_signer

    key = _keys().ensure()
    secretbox.ensure_key(get_settings().keys_dir)
    log_key = load_signer(get_settings())
    typer.echo(json.dumps({"kid": key.kid, "log_vkey": log_key.vkey}))


@app.command("rotate")
def keys_rotate() -> None:
    """Start signing with a new key; old keys keep verifying until what they signed expires."""
    key = _existing().rotate()
    typer.echo(json.dumps({"kid": key.kid}))


@app.command("list")
def keys_list() -> None:
    """Every key on disk with its state, one JSON object per line."""
    store = _existing()
    published = {k.kid for k in store.published()}
    for key in store.all():
        state = "active" if key.retired_at is None else ("retired" if key.kid in published else "expired")
        typer.echo(
            json.dumps(
                {"kid": key.kid, "state": state, "created_at": key.created_at, "retired_at": key.retired_at}
            )
        )
