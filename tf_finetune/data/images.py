"""Image classification data: one sub-folder per class holding JPEG or PNG files."""

from __future__ import annotations

import logging
import os
import shlex
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from tf_finetune.errors import DataError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_FORMATS = {"JPEG", "PNG", "MPO"}  # MPO: multi-picture JPEG from cameras; decodes as JPEG
_JPEG_END = b"\xff\xd9"
_PNG_END = b"IEND\xaeB`\x82"
# Folder names of data splits, and the flag each split goes to.
SPLIT_FLAGS = {
    "train": "--data",
    "training": "--data",
    "val": "--validation-data",
    "valid": "--validation-data",
    "validation": "--validation-data",
    "dev": "--validation-data",
    "eval": "--validation-data",
    "evaluation": "--validation-data",
    "test": "--test-data",
    "testing": "--test-data",
}


@dataclass(frozen=True)
class ImageFiles:
    """The usable images of one class-folder tree.

    Attributes:
        root: the folder read.
        paths: image files, grouped by class, sorted within a class.
        labels: class index of each path.
        class_names: sorted class-folder names; index = position.
        skipped: (path, reason) of files that were left out.
        details: with an ``inspect`` function, what it found for each of ``paths``.
    """

    root: Path
    paths: tuple[str, ...]
    labels: tuple[int, ...]
    class_names: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    details: tuple[dict, ...] | None = None


def list_class_folders(root: str | Path) -> list[Path]:
    """The class sub-folders of ``root``, sorted by name, hidden ones left out.

    Raises:
        DataError: ``root`` is missing or has no class sub-folders.
    """
    root = Path(root)
    if not root.is_dir():
        hint = " (a .csv is text data: use a text model)" if root.suffix == ".csv" else ""
        raise DataError(f"image data folder {root} does not exist or is not a folder{hint}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in folders:
        if folder.is_symlink() and folder.resolve() in (root.resolve(), *root.resolve().parents):
            raise DataError(
                f"class folder {folder} is a symbolic link to {folder.resolve()}, which "
                f"contains it (a loop): remove the link {folder}"
            )
    if not folders:
        loose = [p.name for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        hint = (
            (f"; it holds {len(loose)} image file(s) directly: move each into a folder named after its class")
            if loose
            else ""
        )
        raise DataError(
            f"image data folder {root} has no class sub-folders{hint}. "
            "Expected one sub-folder per class, e.g. train/cats/*.jpg, train/dogs/*.jpg"
        )
    return folders


def list_images(
    root: str | Path,
    class_names: tuple[str, ...] | None = None,
    workers: int = 8,
    inspect: Callable[[str], dict] | None = None,
) -> ImageFiles:
    """Find and check every image under ``root``; unusable files are skipped with one warning.

    Files in nested folders of a class count for that class; hidden files and folders are
    ignored, symbolic links to folders are not followed.

    Args:
        root: folder with one sub-folder per class.
        class_names: when given (validation or test data), the training classes: each folder
            must be one of them and gets its index; classes without a folder are allowed.
        workers: threads that check files.
        inspect: instead of :func:`check_image`, a function returning a dict whose ``problem``
            is check_image's answer, plus whatever else it finds in the same read (the data
            report's hashes and headers); kept in ``details``.

    Returns:
        The usable images and what was skipped.

    Raises:
        DataError: no class folders, a folder of data sets rather than classes (see
            :func:`check_layout`; before any file is read), a class without any usable image,
            fewer than two classes, or (with ``class_names``) a class folder the training data
            does not have.
    """
    root = Path(root)
    folders = list_class_folders(root)
    found_files, ignored = _candidates(folders)
    check_layout(root, folders, [path for path, _ in found_files])
    _check_class_names(root, folders, class_names)
    names = tuple(class_names) if class_names is not None else tuple(p.name for p in folders)
    index_of = {name: index for index, name in enumerate(names)}
    candidates = [(path, index_of[folder.name]) for path, folder in found_files]
    found = _inspect_files([p for p, _ in candidates], workers, inspect or check_image)
    paths: list[str] = []
    labels: list[int] = []
    skipped: list[tuple[str, str]] = []
    details: list[dict] = []
    for (path, index), result in zip(candidates, found):
        problem = result["problem"] if isinstance(result, dict) else result
        if problem:
            skipped.append((path, problem))
        else:
            paths.append(path)
            labels.append(index)
            details.append(result)  # type: ignore[arg-type]  # a dict when inspecting
    _log_left_out(root, skipped, ignored)
    _check_every_class_has_images(folders, index_of, labels)
    return ImageFiles(root, tuple(paths), tuple(labels), names, tuple(skipped), tuple(details) if inspect else None)


def _inspect_files(
    paths: list[str], workers: int, inspect: Callable[[str], str | dict | None]
) -> list[str | dict | None]:
    """``inspect`` of each of ``paths``, in order, on ``workers`` threads."""
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=workers) as pool:
        # Pillow warns about images above ~89 M pixels; decoding is scaled, and check_image
        # itself reports the ones too large to open (DecompressionBombError).
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return list(pool.map(inspect, paths))


def _check_every_class_has_images(folders: Sequence[Path], index_of: dict[str, int], labels: list[int]) -> None:
    """Raise DataError for the first class folder none of whose files is usable."""
    labelled = set(labels)
    for folder in folders:
        if index_of[folder.name] not in labelled:
            raise DataError(
                f"class folder {folder} has no usable image "
                f"({'/'.join(IMAGE_EXTENSIONS)}); add images or remove the folder"
            )


def _log_left_out(root: Path, skipped: list[tuple[str, str]], ignored: int) -> None:
    """One warning naming the unusable files (the first ten), one line counting the others."""
    if skipped:
        shown = "; ".join(f"{p}: {why}" for p, why in skipped[:10])
        more = f" (and {len(skipped) - 10} more)" if len(skipped) > 10 else ""
        log.warning("skipped %d unusable image file(s) in %s: %s%s", len(skipped), root, shown, more)
    if ignored:
        log.info("ignored %d file(s) in %s that are not %s", ignored, root, "/".join(IMAGE_EXTENSIONS))


def check_layout(root: Path, folders: Sequence[Path], image_paths: Iterable[str]) -> None:
    """Raise when ``root`` holds data sets rather than classes (e.g. ``--data hymenoptera``
    with ``train/`` and ``val/`` in it), which would train a "train vs val" classifier.

    A class folder *holds class folders* when its images are in sub-folders, with at most one
    in ten directly in it. That is an error when such a folder is named like a split
    (:data:`SPLIT_FLAGS`), or when every class folder holds class folders and at least two
    sub-folder names are the same in all of them (``2019/{cats,dogs}``, ``2020/{cats,dogs}``).
    A class with some of its images in sub-folders (``red/*.jpg``, ``red/2019/*.jpg``) is fine.

    Args:
        root: the data folder.
        folders: its class folders.
        image_paths: the image files under them (paths that start with ``root``).

    Raises:
        DataError: naming the folders and the command that was probably meant.
    """
    direct: Counter[str] = Counter()
    nested: dict[str, Counter[str]] = {}
    for path in image_paths:
        parts = Path(path).relative_to(root).parts
        if len(parts) == 2:
            direct[parts[0]] += 1
        else:
            nested.setdefault(parts[0], Counter())[parts[1]] += 1
    holders = {name: sorted(subs) for name, subs in nested.items() if direct[name] * 10 <= sum(subs.values())}
    splits = [folder.name for folder in folders if folder.name in holders and folder.name.lower() in SPLIT_FLAGS]
    trained = (
        f"a {' vs '.join(folder.name for folder in folders)} classifier"
        if len(folders) > 1
        else f"a classifier of one class ({folders[0].name})"
    )
    if splits:
        roles: dict[str, str] = {}
        for name in splits:
            roles.setdefault(SPLIT_FLAGS[name.lower()], name)
        if "--data" not in roles:  # no training split: the first one is the data to train on
            roles = {"--data": splits[0]}
        command = " ".join(
            f"{flag} {shlex.quote(str(root / roles[flag]))}"
            for flag in ("--data", "--validation-data", "--test-data")
            if flag in roles
        )
        raise DataError(
            f"image data folder {root} holds data sets, not classes: its folder(s) {', '.join(splits)} "
            f"are data splits holding class folders ({', '.join(holders[splits[0]])}), so it would "
            f"train {trained}; did you mean {command}?"
        )
    shared = sorted(set.intersection(*(set(subs) for subs in holders.values()))) if holders else []
    if len(folders) >= 2 and len(holders) == len(folders) and len(shared) >= 2:
        names = ", ".join(folder.name for folder in folders)
        raise DataError(
            f"image data folder {root} holds data sets, not classes: each of its folders ({names}) "
            f"holds the same class folders ({', '.join(shared)}) rather than images, so it would "
            f"train {trained}; pass one data set, e.g. --data "
            f"{shlex.quote(str(folders[0]))} (if {names} are the classes, give their sub-folders "
            "different names)"
        )


def _check_class_names(root: Path, folders: list[Path], class_names: tuple[str, ...] | None) -> None:
    names = tuple(p.name for p in folders)
    if class_names is not None:
        # Held-out data may lack a class (the caller says so); a class the model never saw is an error.
        unexpected = sorted(set(names) - set(class_names))
        if unexpected:
            raise DataError(
                f"{root} has class folder(s) that the training data does not have: "
                f"{unexpected} (its classes: {', '.join(class_names)}); rename or remove them"
            )
    elif len(folders) < 2:
        raise DataError(
            f"image data folder {root} has {len(folders)} class folder(s) "
            f"({', '.join(names)}); at least 2 classes are needed"
        )


def _candidates(folders: list[Path]) -> tuple[list[tuple[str, Path]], int]:
    """(image file, class folder) of every file named like an image under the class folders,
    and how many other files there are."""
    candidates, ignored = [], 0
    for folder in folders:
        for path in walk_files(folder):
            if path.lower().endswith(IMAGE_EXTENSIONS):
                candidates.append((path, folder))
            else:
                ignored += 1
    return candidates, ignored


def walk_files(folder: Path) -> list[str]:
    """Every file under ``folder``, sorted, hidden files and folders left out, symbolic links to
    folders not followed (what training reads of a class folder)."""
    found: list[str] = []
    for current, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(current, f) for f in sorted(files) if not f.startswith("."))
    return found


def check_image(path: str) -> str | None:
    """Why ``path`` cannot be trained on, or None when it is a complete JPEG or PNG.

    Reads the header and the last bytes; only a file whose end marker is missing is
    decoded in full, to tell a truncated image from one with trailing bytes.
    """
    try:
        if os.path.getsize(path) == 0:
            return "empty file"
        with Image.open(path) as image:
            if image.format not in _FORMATS:
                return f"a {image.format} image, not JPEG or PNG"
            width, height = image.size
            if width < 1 or height < 1:
                return "image has no pixels"
            if _has_end_marker(path, image.format):
                return None
            image.load()  # raises on a truncated file
            return None
    except UnidentifiedImageError:
        return "not an image (cannot be decoded)"
    except Image.DecompressionBombError:
        return "image too large to decode safely"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"cannot be decoded ({exc})"


def _has_end_marker(path: str, image_format: str) -> bool:
    with open(path, "rb") as handle:
        handle.seek(max(0, os.path.getsize(path) - 64))
        tail = handle.read().rstrip(b"\0\r\n ")
    return tail.endswith(_PNG_END if image_format == "PNG" else _JPEG_END)
