"""URLs of standards resources, as representations and event payloads link them (DESIGN §3).

Absolute with ``base_url`` (the ``public_base_url`` setting), root-relative without.
"""

from __future__ import annotations


def document_url(base_url: str | None, slug: str) -> str:
    """``…/v1/standards/{slug}``."""
    return f"{base_url or ''}/v1/standards/{slug}"


def version_url(base_url: str | None, slug: str, version: str) -> str:
    """``…/v1/standards/{slug}/versions/{version}``."""
    return f"{document_url(base_url, slug)}/versions/{version}"


def translated_version_url(base_url: str | None, slug: str, version: str, language: str) -> str:
    """``…/versions/{version}?lang={language}``: the version as served in a translation."""
    return f"{version_url(base_url, slug, version)}?lang={language}"


def diff_url(base_url: str | None, slug: str, from_version: str, to_version: str) -> str:
    """``…/v1/standards/{slug}/diff?from=…&to=…``."""
    return f"{document_url(base_url, slug)}/diff?from={from_version}&to={to_version}"


def review_url(base_url: str | None, slug: str, version: str) -> str:
    """``…/versions/{version}/review``: a version's review and its disposition report."""
    return f"{version_url(base_url, slug, version)}/review"


def comments_url(base_url: str | None, slug: str, version: str) -> str:
    """``…/versions/{version}/comments``: the comments on a version under review."""
    return f"{version_url(base_url, slug, version)}/comments"


def comment_url(base_url: str | None, slug: str, version: str, comment_id: str) -> str:
    """``…/versions/{version}/comments/{id}``: one comment."""
    return f"{comments_url(base_url, slug, version)}/{comment_id}"
