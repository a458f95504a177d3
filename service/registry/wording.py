"""What the badge, the verification page and the feeds say about a school, in several languages.

The network records what schools *state*: nothing here may say that anyone is
certified or accredited (the tests scan every phrase in every language). A school
in status ``aligned`` *states alignment*; ``reaffirmation_due`` must re-affirm after
a major version; every other state (``none``, ``lapsed``, ``withdrawn``,
``suspended``, or a delisted school) has *no current alignment statement*.

Languages are chosen by RFC 4647 lookup (``de-CH`` -> ``de``), falling back to
English (:func:`choose`).
"""

from __future__ import annotations

from typing import Final

DEFAULT: Final = "en"

#: Phrase key -> text, per language. ``{version}`` is the version the school states alignment with.
MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "aligned": "States alignment with IMI Training Standards {version}",
        "reaffirmation_due": "Re-affirmation due",
        "no_statement": "No current alignment statement",
        "label": "IMI Network",
        "page_title": "Alignment statement",
        "status": "Status",
        "aligned_version": "Version stated",
        "due_by": "Re-affirmation due by",
        "checked": "Checked",
        "credential": "Signed credential",
        "credential_help": "A compact JWS signed by the IMI Standards API. Check it with "
        "POST /v1/credentials/verify or with the public keys at /.well-known/jwks.json.",
        "note": "The IMI Network keeps a public record of what training schools state about their "
        "own training. This page shows that record as it stands now.",
        "where": "Location",
        "website": "Website",
        "none": "—",
    },
    "de": {
        "aligned": "Erklärt Übereinstimmung mit den IMI Training Standards {version}",
        "reaffirmation_due": "Erneute Bestätigung fällig",
        "no_statement": "Keine aktuelle Übereinstimmungserklärung",
        "label": "IMI Network",
        "page_title": "Übereinstimmungserklärung",
        "status": "Stand",
        "aligned_version": "Erklärte Version",
        "due_by": "Erneute Bestätigung fällig bis",
        "checked": "Abgefragt",
        "credential": "Signierter Nachweis",
        "credential_help": "Ein kompaktes JWS, signiert von der IMI Standards API. Prüfbar mit "
        "POST /v1/credentials/verify oder mit den öffentlichen Schlüsseln unter /.well-known/jwks.json.",
        "note": "Das IMI Network führt ein öffentliches Verzeichnis dessen, was Ausbildungsstätten über "
        "ihre eigene Ausbildung erklären. Diese Seite zeigt den aktuellen Eintrag.",
        "where": "Ort",
        "website": "Website",
        "none": "—",
    },
    "nl": {
        "aligned": "Verklaart overeenstemming met de IMI Training Standards {version}",
        "reaffirmation_due": "Herbevestiging nodig",
        "no_statement": "Geen actuele verklaring van overeenstemming",
        "label": "IMI Network",
        "page_title": "Verklaring van overeenstemming",
        "status": "Stand",
        "aligned_version": "Verklaarde versie",
        "due_by": "Herbevestiging nodig vóór",
        "checked": "Opgevraagd",
        "credential": "Ondertekend bewijs",
        "credential_help": "Een compacte JWS, ondertekend door de IMI Standards API. Controleer het met "
        "POST /v1/credentials/verify of met de publieke sleutels op /.well-known/jwks.json.",
        "note": "Het IMI Network houdt openbaar bij wat opleidingen over hun eigen opleiding verklaren. "
        "Deze pagina toont die vermelding zoals ze nu is.",
        "where": "Plaats",
        "website": "Website",
        "none": "—",
    },
    "fr": {
        "aligned": "Déclare s'aligner sur les IMI Training Standards {version}",
        "reaffirmation_due": "Nouvelle déclaration attendue",
        "no_statement": "Aucune déclaration d'alignement en cours",
        "label": "IMI Network",
        "page_title": "Déclaration d'alignement",
        "status": "État",
        "aligned_version": "Version déclarée",
        "due_by": "Nouvelle déclaration attendue avant le",
        "checked": "Consulté",
        "credential": "Attestation signée",
        "credential_help": "Un JWS compact signé par l'IMI Standards API. À vérifier avec "
        "POST /v1/credentials/verify ou avec les clés publiques de /.well-known/jwks.json.",
        "note": "L'IMI Network tient un registre public de ce que les écoles déclarent sur leur propre "
        "formation. Cette page montre ce registre tel qu'il est maintenant.",
        "where": "Lieu",
        "website": "Site web",
        "none": "—",
    },
    "es": {
        "aligned": "Declara su alineación con los IMI Training Standards {version}",
        "reaffirmation_due": "Reafirmación pendiente",
        "no_statement": "Sin declaración de alineación vigente",
        "label": "IMI Network",
        "page_title": "Declaración de alineación",
        "status": "Estado",
        "aligned_version": "Versión declarada",
        "due_by": "Reafirmación pendiente antes del",
        "checked": "Consultado",
        "credential": "Credencial firmada",
        "credential_help": "Un JWS compacto firmado por la IMI Standards API. Compruébelo con "
        "POST /v1/credentials/verify o con las claves públicas de /.well-known/jwks.json.",
        "note": "La IMI Network lleva un registro público de lo que las escuelas declaran sobre su propia "
        "formación. Esta página muestra ese registro tal como está ahora.",
        "where": "Lugar",
        "website": "Sitio web",
        "none": "—",
    },
}

#: The three things a badge can say, by alignment status (anything else: ``no_statement``).
BADGE_STATES = {"aligned": "aligned", "reaffirmation_due": "reaffirmation_due"}


def choose(tag: str | None) -> str:
    """The language to answer in for the requested BCP 47 ``tag`` (normalised): RFC 4647
    lookup over the catalogue's languages (``de-CH`` -> ``de``), else English."""
    if tag:
        parts = tag.split("-")
        while parts:
            candidate = "-".join(parts)
            if candidate in MESSAGES:
                return candidate
            parts.pop()
    return DEFAULT


def state_of(status: str, *, listed: bool) -> str:
    """``aligned``, ``reaffirmation_due`` or ``no_statement`` for a school's alignment status."""
    return BADGE_STATES.get(status, "no_statement") if listed else "no_statement"


def status_phrase(state: str, *, version: str | None, lang: str) -> str:
    """What the badge says for ``state`` (:func:`state_of`) in ``lang`` (a catalogue language)."""
    text = MESSAGES[lang][state]
    return text.format(version=version or "") if state == "aligned" else text


def text(key: str, lang: str) -> str:
    """The phrase ``key`` in ``lang``."""
    return MESSAGES[lang][key]
