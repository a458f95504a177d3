"""Standards routes (placeholder until the standards domain lands)."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["standards"])
