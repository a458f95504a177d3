"""Fill a migrated database with N synthetic schools through the registry's own service.

``python -m bench.populate N`` with the ``IMI_*`` environment of the target
database. Names are deterministic (seeded) mixes of realistic words so prefix
search has realistic selectivity.
"""

from __future__ import annotations

import random
import sys

from service.core.config import get_settings
from service.core.db import make_engine, transaction
from service.registry import service as registry
from service.registry.schemas import SchoolCreate

WORDS = [
    "Mindful",
    "Awareness",
    "Centre",
    "Institute",
    "Academy",
    "Sangha",
    "Compassion",
    "Presence",
    "Stillness",
    "Breath",
    "Heart",
    "Open",
    "Clear",
    "Light",
    "River",
    "Mountain",
    "Garden",
    "Path",
    "Insight",
    "Calm",
    "Kindness",
    "Horizon",
    "Harbour",
    "Valley",
    "Meadow",
    "North",
    "South",
]
CITIES = [
    ("CH", "Zürich"),
    ("BR", "São Paulo"),
    ("DE", "München"),
    ("NL", "Utrecht"),
    ("GB", "Bristol"),
    ("US", "Portland"),
    ("JP", "Kyoto"),
    ("AU", "Melbourne"),
    ("ZA", "Cape Town"),
    ("CA", "Montréal"),
    ("TR", "İstanbul"),
    ("GR", "Θεσσαλονίκη"),
    ("IL", "Haifa"),
    ("AR", "Córdoba"),
    ("IN", "Pune"),
]
PROGRAMMES = ["MBSR", "MBCT", "MSC", "MBCP", "MBRP"]


def main(count: int) -> None:
    settings = get_settings()
    engine = make_engine(settings.database_url)
    registry.configure(engine=engine, settings=settings)
    rng = random.Random(2015)
    done = 0
    while done < count:
        with transaction(engine) as session:
            for _ in range(min(500, count - done)):
                country, city = rng.choice(CITIES)
                name = " ".join(rng.sample(WORDS, 3)) + f" {done}"
                data = SchoolCreate(
                    name=name,
                    country=country,
                    city=city,
                    website=f"https://school{done}.example.org/",  # type: ignore[arg-type]
                    programmes=rng.sample(PROGRAMMES, 2),
                    languages=["en"],
                )
                registry.create_school(
                    session=session, data=data, actor="bench", base_url=settings.public_base_url
                )
                done += 1
    engine.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]))
