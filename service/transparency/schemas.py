"""Response shapes of the transparency log (hashes and bytes in standard base64)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class InclusionProof(BaseModel):
    """RFC 9162 inclusion proof of leaf ``index`` (event ``index + 1``) in the tree of ``tree_size``."""

    index: int
    tree_size: int
    leaf_hash: str = Field(description="SHA-256(0x00 || leaf bytes), base64")
    proof: list[str] = Field(description="sibling hashes from the leaf up, base64")


class ConsistencyProof(BaseModel):
    """RFC 9162 consistency proof from the tree of ``from`` leaves to the tree of ``to`` leaves."""

    from_: int = Field(alias="from")
    to: int
    proof: list[str]


class Leaf(BaseModel):
    """One leaf: its index (event sequence − 1), hash and bytes (``null`` once pruned)."""

    index: int
    leaf_hash: str
    leaf: str | None = Field(description="base64 of the event's RFC 8785 canonical JSON")


class LeafPage(BaseModel):
    data: list[Leaf]


class WitnessPublic(BaseModel):
    """A registered witness (a regional association's cosigner)."""

    id: str
    name: str
    region: str
    key_name: str
    key_id: str
    vkey: str = Field(description="C2SP vkey, signature type 0x04 (tlog-cosignature)")
    latest_cosigned_size: int | None


class LogKey(BaseModel):
    """The log's checkpoint-signing key and its witnesses."""

    origin: str
    algorithm: str
    key_name: str
    key_id: str
    public_key: str = Field(description="raw 32-byte Ed25519 public key, base64")
    vkey: str = Field(description="C2SP vkey, signature type 0x01")
    witnesses: list[WitnessPublic]


class AcceptedCosignature(BaseModel):
    witness: str
    name: str
    tree_size: int
    timestamp: int


class CosignatureReceipt(BaseModel):
    """The cosignatures kept from a posted note."""

    accepted: list[AcceptedCosignature]
