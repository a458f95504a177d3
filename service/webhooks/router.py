"""Webhook routes (placeholder until webhooks land)."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["webhooks"])
