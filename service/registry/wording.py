"""What the badge, the verification page and the schools feed say about a school.

The network records what schools *state*: nothing here may say that anyone is
certified or accredited (the tests scan every message of every catalogue). A school
in status ``aligned`` *states alignment*; ``reaffirmation_due`` must re-affirm after
a major version; every other state (``none``, ``lapsed``, ``withdrawn``,
``suspended``, or a delisted school) has *no current alignment statement*.

The phrases are English msgids of the message catalogue (``service/core/messages.py``,
``service/locale/<lang>/LC_MESSAGES/messages.po``): a caller takes the
:class:`~service.core.messages.Words` of the language it serves and passes them in.
The languages a badge or page can be served in are :func:`service.core.messages.languages`
(English and every catalogue's).
"""

from __future__ import annotations

from typing import Final

from service.core.messages import N_, Words

#: The network's name: a proper name, the same in every language (the badge's label).
NETWORK: Final = "IMI Network"

#: What a badge says, by badge state (:func:`state_of`).
PHRASES: Final = {
    "aligned": N_("States alignment with IMI Training Standards %(version)s"),
    "reaffirmation_due": N_("Re-affirmation due"),
    "no_statement": N_("No current alignment statement"),
}

#: Alignment status codes (``School.alignment_status``) as a reader says them, for the feeds.
STATUS_NAMES: Final = {
    "none": N_("none"),
    "aligned": N_("aligned"),
    "reaffirmation_due": N_("re-affirmation due"),
    "lapsed": N_("lapsed"),
    "withdrawn": N_("withdrawn"),
    "suspended": N_("suspended"),
}

#: The verification page's labels and texts.
PAGE_TITLE: Final = N_("Alignment statement")
STATUS: Final = N_("Status")
VERSION_STATED: Final = N_("Version stated")
DUE_BY: Final = N_("Re-affirmation due by")
CHECKED: Final = N_("Checked")
WEBSITE: Final = N_("Website")
CREDENTIAL: Final = N_("Signed credential")
CREDENTIAL_HELP: Final = N_(
    "A compact JWS signed by the IMI Standards API. Check it with POST /v1/credentials/verify "
    "or with the public keys at /.well-known/jwks.json."
)
NOTE: Final = N_(
    "The IMI Network keeps a public record of what training schools state about their own "
    "training. This page shows that record as it stands now."
)
#: Shown for a value the record does not have (no version stated).
NONE: Final = "—"


def state_of(status: str, *, listed: bool) -> str:
    """``aligned``, ``reaffirmation_due`` or ``no_statement`` for a school's alignment status."""
    return status if listed and status in ("aligned", "reaffirmation_due") else "no_statement"


def status_phrase(state: str, *, version: str | None, words: Words) -> str:
    """What the badge says for ``state`` (:func:`state_of`) in ``words``' language."""
    text = words.gettext(PHRASES[state])
    return (text % {"version": version or ""}).strip() if state == "aligned" else text


def status_name(status: str | None, words: Words) -> str:
    """An alignment status code as a reader says it (``reaffirmation_due`` → ``re-affirmation due``,
    ``Erneute Bestätigung fällig``); an unknown code stays as it is."""
    code = status or "none"
    return words.gettext(STATUS_NAMES[code]) if code in STATUS_NAMES else code
