"""PNG figures: confusion matrix, training curves, image grids (matplotlib, no display needed)."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from PIL import ImageFont

MAX_ANNOTATED_CLASSES = 30  # beyond this, cell counts are unreadable
TILE_PX, CAPTION_PX, TITLE_PX = 200, 56, 40  # image_grid's layout: a tile's caption has 3 lines


F = TypeVar("F", bound=Callable)


def _quiet_glyphs(draw: F) -> F:
    """Class names in scripts the font lacks (CJK, ...) are drawn as boxes; the text reports
    have them. matplotlib's per-glyph UserWarning would only clutter the job's log."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from", category=UserWarning)
            return draw(*args, **kwargs)

    return cast(F, wrapper)


def _pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@_quiet_glyphs
def confusion_matrix(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: Path, title: str = "") -> Path:
    """Draw ``matrix`` (rows: true class, columns: predicted) to ``path``; returns ``path``."""
    plt = _pyplot()
    n = len(class_names)
    size = min(4 + 0.4 * n, 20)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    axes.set_xticks(range(n), labels=class_names, rotation=45, ha="right")
    axes.set_yticks(range(n), labels=class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title or "confusion matrix")
    if n <= MAX_ANNOTATED_CLASSES:
        peak = max((max(row) for row in matrix), default=0)
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                axes.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


@_quiet_glyphs
def training_curves(history: Mapping[str, Sequence[float]], path: Path) -> Path:
    """Loss and accuracy per epoch (training and validation) to ``path``; returns ``path``."""
    plt = _pyplot()
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for axes, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--o")):
            if history.get(key):
                epochs = range(1, len(history[key]) + 1)
                axes.plot(epochs, history[key], style, label=key)
        axes.set_xlabel("epoch")
        axes.set_title(metric)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


@_quiet_glyphs
def image_grid(tiles: Sequence[tuple[str, str]], path: Path, title: str) -> Path:
    """Image files as a grid of captioned tiles (up to 6 per row) to ``path``; returns ``path``.

    Drawn with Pillow, not matplotlib: a 36-tile grid takes a fraction of a second.

    Args:
        tiles: (image file, caption) pairs, in reading order; a caption may have three lines,
            each cut in the middle to the tile's width (see :func:`fit_width`).
        path: the PNG to write.
        title: the grid's title.
    """
    from PIL import Image, ImageDraw, ImageFont

    columns, rows = grid_layout(len(tiles))
    canvas = Image.new("RGB", (columns * TILE_PX, TITLE_PX + rows * (TILE_PX + CAPTION_PX)), "white")
    draw = ImageDraw.Draw(canvas)
    font, small = ImageFont.load_default(size=18), ImageFont.load_default(size=13)
    draw.text((8, 10), fit_width(title, font, canvas.width - 16), fill="black", font=font)
    for index, (image_path, caption) in enumerate(tiles):
        left = (index % columns) * TILE_PX
        top = TITLE_PX + (index // columns) * (TILE_PX + CAPTION_PX)
        lines = [fit_width(line, small, TILE_PX - 12) for line in caption.splitlines()]
        draw.multiline_text((left + 6, top + 4), "\n".join(lines), fill="darkred", font=small, spacing=2)
        with Image.open(image_path) as image:
            image.draft("RGB", (TILE_PX, TILE_PX))  # JPEGs decode at a reduced scale
            image = image.convert("RGB")
            image.thumbnail((TILE_PX - 8, TILE_PX - 8))
            canvas.paste(
                image, (left + (TILE_PX - image.width) // 2, top + CAPTION_PX + (TILE_PX - 8 - image.height) // 2)
            )
    canvas.save(path)
    return path


def fit_width(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: float) -> str:
    """``text``, or its start and end around "…" when it is wider than ``width`` pixels in
    ``font`` (a Pillow font): both ends of a file path tell where it is and which file it is.

    Args:
        text: one line.
        font: the font it is drawn in (anything with ``getlength``).
        width: the room, in pixels.

    Returns:
        The line as drawn.
    """
    if font.getlength(text) <= width:
        return text
    for keep in range(len(text) - 1, 0, -1):
        head, tail = (keep + 1) // 2, keep // 2
        short = text[:head] + "…" + text[len(text) - tail :]
        if font.getlength(short) <= width:
            return short
    return "…"


def grid_layout(tiles: int) -> tuple[int, int]:
    """(columns, rows) of :func:`image_grid` for ``tiles`` tiles: near square, at most 6 wide."""
    columns = max(1, min(6, math.ceil(math.sqrt(tiles or 1))))
    return columns, max(1, math.ceil(tiles / columns))
