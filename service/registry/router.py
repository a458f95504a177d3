"""Registry routes (placeholder until the registry lands)."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["registry"])
