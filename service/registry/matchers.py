"""An application's fuzzy matchers, made on first use and kept in ``app.state``: the term
vocabulary of search (typos in search words) and the name index of ``/v1/verify`` (also the
suggestions of a search that found nothing). Both follow the schools' changes through the
public-representation cache's clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from service.registry import fuzzy
from service.registry.verify import Verifier
from service.web import cache


@dataclass(frozen=True)
class Matchers:
    """An application's fuzzy matchers: the term vocabulary (typos in search words) and the
    name index of ``/v1/verify`` (suggestions), both following the schools' changes."""

    vocabulary: fuzzy.Vocabularies
    verifier: Verifier


def matchers_of(request: Request) -> Matchers:
    """The application's matchers, made on first use."""
    state = request.app.state
    found = getattr(state, "imi_matchers", None)
    if found is None:
        clock = cache.cache_of(state).clock
        found = Matchers(fuzzy.Vocabularies(lambda: clock.stamp_now(("school",))), verifier_of(request))
        state.imi_matchers = found
    return found


def verifier_of(request: Request) -> Verifier:
    """The application's name index of ``/v1/verify``, made on first use."""
    state = request.app.state
    found = getattr(state, "imi_verifier", None)
    if found is None:
        clock = cache.cache_of(state).clock
        found = Verifier(lambda: clock.stamp_now(("school",)))
        state.imi_verifier = found
    return found
