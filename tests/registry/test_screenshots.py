"""The badge and the verification page as a browser renders them: headless Chromium (Debian's
``chromium``) screenshots a running server, and the images are checked for their size and for
showing something. Skipped, saying why, where Chromium is not installed (``.ci/run`` installs it)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from service.core.config import Settings
from service.main import create_app
from tests.live import free_port, serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed here (apt-get install chromium; CI does)"
)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"public_base_url": f"http://127.0.0.1:{free_port()}"}


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[str, Any]]:
    app = create_app(settings)
    with serve(app, int(settings.public_base_url.rsplit(":", 1)[1])) as base:
        yield base, app


def screenshot(url: str, out: Path, *, width: int, height: int) -> Image.Image:
    """A PNG of ``url`` as headless Chromium renders it in a ``width`` x ``height`` window."""
    profile = out.parent / f"profile-{out.stem}"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        f"--screenshot={out}",
        url,
    ]
    done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert out.exists(), done.stderr.decode(errors="replace")[-2000:]
    image = Image.open(out)
    image.load()
    return image.convert("RGB")


def _drawn_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """The bounding box of everything that is not the white background."""
    inverted = Image.eval(image, lambda v: 255 - v).convert("L")
    return inverted.point(lambda v: 255 if v > 8 else 0).getbbox()


def test_badge_and_page_render_in_chromium(
    live: tuple[str, Any],
    tmp_path: Path,
    session_factory: Callable[[], Any],
) -> None:
    base, app = live
    from service.registry import service as registry
    from service.registry.schemas import SchoolCreate

    with session_factory() as session:
        school = registry.create_school(
            session=session,
            data=SchoolCreate(name="Stille Zee Mindfulness", country="NL", city="Den Haag"),
            actor="test",
            base_url=base,
        )
        school_id = school.id

    badge = screenshot(
        f"{base}/v1/schools/{school_id}/badge.svg", tmp_path / "badge.png", width=400, height=120
    )
    assert badge.size == (400, 120)
    box = _drawn_box(badge)
    assert box is not None, "the badge rendered blank"
    left, top, right, bottom = box
    # Drawn at the top left, as wide and high as the SVG says (20 px high, a few hundred wide).
    assert left <= 1 and top <= 1 and 15 <= bottom - top <= 21 and 200 <= right - left <= 330
    colours = badge.crop(box).getcolors(maxcolors=100_000)
    assert colours is not None and len(colours) > 10  # two boxes and anti-aliased text

    page = screenshot(
        f"{base}/v1/schools/{school_id}/affiliation", tmp_path / "page.png", width=800, height=900
    )
    assert page.size == (800, 900)
    stat = ImageStat.Stat(page.convert("L"))
    assert stat.stddev[0] > 5, "the verification page rendered blank"
    box = _drawn_box(page)
    assert box is not None and box[2] - box[0] > 300 and box[3] - box[1] > 200
