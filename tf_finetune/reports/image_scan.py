"""Image class folders as ``check-data`` reads them: every file's header and content hash, and what is wrong.

Files are listed and checked as ``train`` lists and checks them
(:func:`~tf_finetune.data.images.check_image`), and each is read once more for what training does not
need: its mode, size and format, and a content hash for duplicates. No TensorFlow.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tf_finetune.data.images import IMAGE_EXTENSIONS, check_image, check_layout, list_class_folders
from tf_finetune.reports.split_report import Finding, SplitReport, digest, listed, spread

_MODES = {
    "L": "grayscale",
    "LA": "grayscale+alpha",
    "1": "black-and-white",
    "CMYK": "CMYK",
    "RGBA": "alpha",
    "P": "palette",
    "I;16": "16-bit",
    "I;16B": "16-bit",
    "I": "32-bit integer",
    "F": "32-bit float",
}


@dataclass
class _Tally:
    """What the usable images of a split add up to, and the files that are not usable or misnamed."""

    classes: Counter[str]
    skipped: list[str] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    small: int = 0
    misnamed: list[str] = field(default_factory=list)
    modes: Counter[str] = field(default_factory=Counter)


def read_images(split: SplitReport, root: Path, image_size: int | None, findings: list[Finding], workers: int) -> None:
    """Read the class folders under ``root`` into ``split`` (counts, figures, content keys); what is
    wrong goes to ``findings``. Raises :class:`~tf_finetune.errors.DataError` as ``train`` would."""
    folders = list_class_folders(root)
    files, ignored, hidden = _walk_class_folders(root, folders)
    check_layout(root, folders, [path for path, _ in files])
    infos = _inspect_all([p for p, _ in files], workers)
    tally = _tally(split, folders, files, infos, image_size)
    split.classes = dict(tally.classes)
    split.examples = sum(tally.classes.values())
    split.details = {
        "extensions": dict(Counter(Path(p).suffix.lower() for p, _ in files + ignored)),
        "width": spread(tally.widths),
        "height": spread(tally.heights),
        "non_rgb": dict(tally.modes),
        "skipped": len(tally.skipped),
        "ignored_files": len(ignored),
        "hidden": len(hidden),
    }
    if image_size:
        split.details[f"smaller_than_{image_size}"] = tally.small
    findings.extend(_file_findings(split.name, tally, [p for p, _ in files], [p for p, _ in ignored], hidden))
    findings.extend(_content_findings(split.name, root, tally, image_size))


def _tally(
    split: SplitReport,
    folders: list[Path],
    files: list[tuple[str, str]],
    infos: list[dict[str, Any]],
    image_size: int | None,
) -> _Tally:
    """Add up the inspected ``files`` (path, class) by class, size and mode; index their content keys in ``split``."""
    tally = _Tally(Counter({folder.name: 0 for folder in folders}))
    for (path, label), info in zip(files, infos):
        split.keys.setdefault(info["hash"], []).append(path)
        if info["problem"]:
            tally.skipped.append(f"{path} ({info['problem']})")
            continue
        tally.classes[label] += 1
        width, height = info["size"]
        tally.widths.append(width)
        tally.heights.append(height)
        tally.small += bool(image_size and min(width, height) < image_size)
        if info["mode"] != "RGB":
            tally.modes[_MODES.get(info["mode"], info["mode"])] += 1
        if (info["format"] == "PNG") != path.lower().endswith(".png"):
            tally.misnamed.append(f"{path} ({info['format']})")
    return tally


def _file_findings(
    where: str, tally: _Tally, images: list[str], ignored: list[str], hidden: list[str]
) -> list[Finding]:
    """The findings about the files themselves: unusable, ignored, unusual extension, misnamed, hidden."""
    findings = []
    if tally.skipped:
        findings.append(
            Finding(
                "warning",
                f"{where}: {len(tally.skipped)} image file(s) cannot be used and will be "
                f"skipped: {listed(tally.skipped)}; fix or remove them",
            )
        )
    if ignored:
        findings.append(
            Finding(
                "note",
                f"{where}: {len(ignored)} file(s) are not {'/'.join(IMAGE_EXTENSIONS)} "
                f"and are ignored: {listed(ignored)}",
            )
        )
    findings.extend(_mixed_extensions(where, images))
    if tally.misnamed:
        findings.append(
            Finding(
                "note",
                f"{where}: {len(tally.misnamed)} image(s) are named for another format than "
                f"their content (they still train): {listed(tally.misnamed)}; rename them",
            )
        )
    if hidden:
        findings.append(
            Finding("note", f"{where}: {len(hidden)} hidden file(s)/folder(s) are ignored: {listed(hidden)}")
        )
    return findings


def _content_findings(where: str, root: Path, tally: _Tally, image_size: int | None) -> list[Finding]:
    """The findings about the usable images: small, not RGB, and class folders left without any."""
    findings = []
    if tally.small:
        findings.append(
            Finding(
                "note",
                f"{where}: {tally.small} image(s) have a side shorter than the model's {image_size} px "
                "and are enlarged",
            )
        )
    if tally.modes:
        described = ", ".join(f"{n} {m}" for m, n in tally.modes.items())
        findings.append(Finding("note", f"{where}: {described} image(s) are converted to RGB"))
    for name, count in tally.classes.items():
        if count == 0:
            findings.append(
                Finding(
                    "error", f"{where}: class folder {root / name} has no usable image; add images or remove the folder"
                )
            )
    return findings


def _mixed_extensions(where: str, paths: list[str]) -> list[Finding]:
    """A note naming the images whose extension is not the usual one of the split, if any."""
    extensions = Counter(Path(p).suffix.lower() for p in paths)
    if len(extensions) < 2:
        return []
    usual = extensions.most_common(1)[0][0]
    others = [p for p in paths if Path(p).suffix.lower() != usual]
    return [
        Finding(
            "note", f"{where}: {len(others)} image(s) have another extension than the usual {usual}: {listed(others)}"
        )
    ]


def _walk_class_folders(
    root: Path, folders: list[Path]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """(image file, class) pairs, (other file, class) pairs and hidden entries under the folders."""
    hidden = [p.name for p in root.iterdir() if p.name.startswith(".")]
    files: list[tuple[str, str]] = []
    ignored: list[tuple[str, str]] = []
    for folder in folders:
        for current, dirs, names in os.walk(folder, followlinks=False):
            hidden += [os.path.join(current, n) for n in dirs + names if n.startswith(".")]
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(n for n in names if not n.startswith(".")):
                path = os.path.join(current, name)
                (files if name.lower().endswith(IMAGE_EXTENSIONS) else ignored).append((path, folder.name))
    return files, ignored, hidden


def _inspect_all(paths: list[str], workers: int) -> list[dict[str, Any]]:
    """:func:`inspect_image` of each path, on ``workers`` threads, in order."""
    from PIL import Image

    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=workers) as pool:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return list(pool.map(inspect_image, paths))


def inspect_image(path: str) -> dict[str, Any]:
    """One read of an image file: ``problem`` (as :func:`~tf_finetune.data.images.check_image`
    says), content ``hash``, and ``size``, ``mode``, ``format`` from its header."""
    from PIL import Image

    with open(path, "rb") as handle:
        content_hash = digest(handle.read())
    info = {"hash": content_hash, "problem": check_image(path), "size": (0, 0), "mode": None, "format": None}
    if not info["problem"]:
        with Image.open(path) as image:
            info["size"], info["mode"], info["format"] = image.size, image.mode, image.format
    return info
