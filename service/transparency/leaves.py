"""What a leaf of the log is: the canonical bytes of one event.

Leaf ``i`` is event ``sequence = i + 1`` written as its feed item
``{"id", "type", "sequence", "timestamp", "data"}`` (without ``log_index``, which is
``i`` itself) in the JSON Canonicalization Scheme (RFC 8785): object members sorted
by their UTF-16 code units, no whitespace, strings as JSON with only the escapes
RFC 8785 §3.2.2.2 requires, integers in decimal, other numbers in ECMAScript's
shortest form. A verifier holding a feed item or a webhook body drops ``log_index``,
canonicalises the rest with any RFC 8785 library, and gets the leaf bytes; its
hash is ``SHA-256(0x00 || bytes)``.

An event pruned by retention before the log existed (a database upgraded after
pruning) is represented by ``{"pruned": true, "sequence": N}``: its content was
gone before anyone could log it, and the log says so rather than inventing it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from service.core.jsonutil import isoformat


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value`` (dicts, lists/tuples, str, int, float, bool, None).

    Raises ``TypeError`` for anything else and ``ValueError`` for NaN or infinities.
    """
    return _write(value).encode("utf-8")


def _write(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        # Python's escaping is RFC 8785's: \" \\ \b \f \n \r \t, other controls as \u00xx.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: _utf16_key(kv[0]))
        return "{" + ",".join(f"{_write(k)}:{_write(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_write(v) for v in value) + "]"
    raise TypeError(f"not canonical JSON: {type(value).__name__}")


def _utf16_key(key: Any) -> bytes:
    if not isinstance(key, str):
        raise TypeError("object member names must be strings")
    return key.encode("utf-16-be")


def _number(value: float) -> str:
    """ECMAScript ``Number.prototype.toString`` for a finite double (RFC 8785 §3.2.2.3)."""
    if not math.isfinite(value):
        raise ValueError("NaN and infinities are not JSON")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest(abs(value))
    k, n = len(digits), exponent + len(digits)  # value = 0.digits * 10**n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


def _shortest(value: float) -> tuple[str, int]:
    """``(digits, exponent)`` with ``value == int(digits) * 10**exponent``, digits shortest."""
    mantissa, _, exp = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    fraction = fraction.rstrip("0")
    digits = (whole + fraction).lstrip("0")
    exponent = (int(exp) if exp else 0) - len(fraction)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return stripped, exponent


def leaf_document(
    *, event_id: str, event_type: str, sequence: int, timestamp: dt.datetime, data: Any
) -> dict[str, Any]:
    """The feed item of an event, without ``log_index``: what leaf ``sequence - 1`` holds."""
    return {
        "id": event_id,
        "type": event_type,
        "sequence": sequence,
        "timestamp": isoformat(timestamp),
        "data": data,
    }


def leaf_bytes(document: dict[str, Any]) -> bytes:
    """The canonical bytes of a leaf document."""
    return canonical_json(document)


def pruned_leaf(sequence: int) -> bytes:
    """The leaf of an event retention removed before the log could record it."""
    return canonical_json({"pruned": True, "sequence": sequence})
