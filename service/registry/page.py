"""The verification page: ``GET /v1/schools/{id}/affiliation`` with ``Accept: text/html``.

What a visitor sees after clicking a school's badge: a minimal, self-contained HTML
page with the school, its alignment status (the badge's words and the badge itself,
inline), the version it states alignment with, the re-affirmation date, when the
answer was checked, and the signed credential — the same answer, credential
included, as the JSON affiliation (it is rendered from that cached answer). It
embeds nothing: no script, no external style sheet, font or image; its one inline
style block is allowed by hash in its own ``Content-Security-Policy``. Every text is
escaped. Its words (``wording.py``) and dates come from the message catalogue of the
language ``?lang=`` or ``Accept-Language`` chose (``embeds.py``; English by default).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy.engine import Engine

from service.core.messages import Words
from service.core.messages import words as words_of
from service.registry import badge, wording
from service.registry.models import School
from service.web import cache, markup
from service.web.http import CACHE_SHORT, make_etag

MEDIA_TYPE = "text/html"

STYLE = (
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "color:#202124;background:#f8f9fa}"
    "main{max-width:40rem;margin:2rem auto;padding:1.5rem 2rem;background:#fff;border:1px solid #dadce0;"
    "border-radius:8px}"
    "h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}"
    ".where{color:#5f6368;margin:0 0 1rem}dl{display:grid;grid-template-columns:max-content 1fr;"
    "gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}"
    "pre{white-space:pre-wrap;word-break:break-all;font-size:.75rem;background:#f1f3f4;padding:.75rem;"
    "border-radius:4px}.note{color:#5f6368;font-size:.875rem}"
)
#: The page's own policy: its inline style (by hash) and nothing else.
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
    "script-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

#: The HTML form of the affiliation read; a variant of the JSON answer (``affiliation.RESOURCE``),
#: rebuilt at least every minute so that "Checked" is never older than that (no re-signing:
#: the credential is the cached answer's).
RESOURCE = cache.Resource(
    route="/v1/schools/{school_id}/affiliation", domains=("school", "standards"), max_age_s=60.0
)


def _when(value: str | None, words: Words, *, date_only: bool = False) -> str:
    """A ``<time>`` with the RFC 3339 ``value`` as its machine form and the locale's date
    (and time, in UTC) as its text."""
    if not value:
        return ""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)
    shown = words.date(moment) if date_only else words.moment(moment)
    return f'<time datetime="{markup.attr(value)}">{markup.text(shown)}</time>'


def render(*, school: School, answer: dict[str, Any], checked_at: dt.datetime, lang: str) -> bytes:
    """The page for ``school`` from its affiliation ``answer`` (the JSON body) in ``lang``."""
    badge_words = badge.badge_text(school, lang=lang)
    words = words_of(lang)
    t = lambda message: markup.text(words.gettext(message))  # noqa: E731 - a local shorthand
    place = ", ".join(p for p in (school.city, school.country) if p)
    rows = [
        (t(wording.STATUS), markup.text(badge_words.message)),
        (t(wording.VERSION_STATED), markup.text(answer.get("aligned_version") or wording.NONE)),
    ]
    if answer.get("reaffirmation_due_by"):
        rows.append((t(wording.DUE_BY), _when(answer["reaffirmation_due_by"], words, date_only=True)))
    rows.append((t(wording.CHECKED), _when(checked_at.isoformat().replace("+00:00", "Z"), words)))
    if school.website:
        rows.append(
            (
                t(wording.WEBSITE),
                f'<a href="{markup.attr(school.website)}" rel="nofollow noopener">'
                f"{markup.text(school.website)}</a>",
            )
        )
    listing = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    inline_badge = badge.render_svg(badge_words).decode()
    html = (
        "<!DOCTYPE html>"
        f'<html lang="{markup.attr(words.language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{t(wording.PAGE_TITLE)}: {markup.text(school.name)}</title>"
        f"<style>{STYLE}</style></head><body><main>"
        f"<h1>{markup.text(school.name)}</h1>"
        f'<p class="where">{markup.text(place)}</p>'
        f"<p>{inline_badge}</p>"
        f"<dl>{listing}</dl>"
        f"<h2>{t(wording.CREDENTIAL)}</h2>"
        f"<p>{t(wording.CREDENTIAL_HELP)}</p>"
        f"<pre>{markup.text(answer.get('credential') or '')}</pre>"
        f'<p class="note">{t(wording.NOTE)}</p>'
        "</main></body></html>"
    )
    return html.encode()


def build(*, engine: Engine, school_id: str, answer: cache.Entry, lang: str, vary: str) -> cache.Built:
    """The page of ``school_id`` rendered from its current affiliation ``answer`` in ``lang``
    (blocking); ``vary``: the response's ``Vary``.

    Valid exactly as long as that answer is (same stamp, same expiry), so the page
    never shows another credential than the JSON. :class:`NotFound` for an unknown school.
    """
    school = badge.read_school(engine, school_id)
    body = json.loads(answer.body)
    checked_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    page = render(school=school, answer=body, checked_at=checked_at, lang=lang)
    return cache.Built(
        body=page,
        media_type=MEDIA_TYPE,
        headers={
            "ETag": make_etag(page),
            "Cache-Control": CACHE_SHORT,
            "Content-Language": lang,
            "Content-Security-Policy": CSP,
            "Vary": vary,
        },
        expires_at=answer.expires_at if answer.expires_at != float("inf") else None,
        stamp=answer.stamp,
    )
