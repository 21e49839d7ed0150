"""The dataset: ESC-50 layout (audio/*.wav + meta/esc50.csv), its folds, splits, and the download.

Any folder in that layout works, with any number of folds and classes: the csv needs the columns
filename, fold, target and category; esc10, src_file and take are optional.
"""
import csv
import os
from dataclasses import dataclass

import numpy as np

from ..errors import UserError

REQUIRED_COLUMNS = ("filename", "fold", "target", "category")
ESC50_CLASSES = 50
META_FILE = os.path.join("meta", "esc50.csv")


@dataclass(frozen=True)
class Clip:
    filename: str
    fold: int
    target: int
    category: str
    src_file: str
    esc10: bool


class Dataset:
    """The metadata of one dataset copy: clips, folds and class labels (ordered by target)."""

    def __init__(self, root, subset="all", meta_file=META_FILE, audio_folder="audio"):
        self.root = root
        self.meta_path = os.path.join(root, meta_file)
        self.audio_folder = os.path.join(root, audio_folder)
        self.has_esc10_column = False
        clips = self._read_meta()
        if subset == "esc10":
            if not self.has_esc10_column:
                raise UserError(f"dataset.subset is esc10 but {self.meta_path} has no esc10 column; "
                                "set dataset.subset: all.")
            clips = [c for c in clips if c.esc10]
        self.clips = clips
        self.targets = sorted({c.target for c in clips})
        names = {c.target: c.category for c in clips}
        self.labels = [names[t] for t in self.targets]
        self.folds = sorted({c.fold for c in clips})

    def _read_meta(self):
        if not os.path.isdir(self.root):
            raise UserError(f"Dataset folder {self.root} does not exist; check --dataset_path.")
        if not os.path.exists(self.meta_path):
            raise UserError(f"{self.meta_path} is missing; a dataset folder needs its metadata csv there "
                            "(or set dataset.meta_file to where it is).")
        try:
            with open(self.meta_path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
                columns = rows[0].keys() if rows else []
        except (UnicodeDecodeError, csv.Error) as e:
            raise UserError(f"{self.meta_path} is not a readable CSV file ({e}); fix or replace it.")
        if not rows:
            raise UserError(f"{self.meta_path} has no rows; it must list one clip per row.")
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise UserError(f"{self.meta_path} lacks the column(s) {', '.join(missing)}; it needs "
                            f"{', '.join(REQUIRED_COLUMNS)} (esc10, src_file and take are optional).")
        self.has_esc10_column = "esc10" in columns
        clips = [self._clip(row, line) for line, row in enumerate(rows, start=2)]
        self._check(clips)
        return clips

    def _clip(self, row, line):
        def integer(column):
            try:
                return int(str(row[column]).strip())
            except (TypeError, ValueError):
                raise UserError(f"{self.meta_path} line {line}: {column} is {row[column]!r}, not a whole number.")
        filename = (row["filename"] or "").strip()
        if not filename:
            raise UserError(f"{self.meta_path} line {line} has an empty filename.")
        return Clip(filename=filename, fold=integer("fold"), target=integer("target"),
                    category=(row["category"] or "").strip() or str(row["target"]),
                    src_file=(row.get("src_file") or "").strip() or filename,
                    esc10=str(row.get("esc10", "")).strip().lower() == "true")

    def _check(self, clips):
        seen = set()
        for c in clips:
            if c.filename in seen:
                raise UserError(f"{self.meta_path} lists {c.filename} more than once; remove the duplicate row.")
            seen.add(c.filename)
        categories, targets = {}, {}
        for c in clips:
            if categories.setdefault(c.target, c.category) != c.category:
                raise UserError(f"{self.meta_path}: target {c.target} is both '{categories[c.target]}' and "
                                f"'{c.category}'; each target needs one category name.")
            if targets.setdefault(c.category, c.target) != c.target:
                raise UserError(f"{self.meta_path}: category '{c.category}' has targets {targets[c.category]} "
                                f"and {c.target}; each category needs one target.")
        # ESC-50's own metadata (it has the esc10 column) numbers its 50 classes 0..49; a subset such as
        # ESC-10 keeps those numbers. Other datasets may use any non-negative numbers.
        highest = ESC50_CLASSES - 1 if self.has_esc10_column else None
        bad = sorted({c.target for c in clips if c.target < 0 or (highest is not None and c.target > highest)})
        if bad:
            allowed = f"0..{highest} (ESC-50's classes)" if highest is not None else "whole numbers from 0 up"
            raise UserError(f"{self.meta_path}: target(s) {', '.join(map(str, bad))} out of range; targets "
                            f"must be {allowed}.")
        folds = sorted({c.fold for c in clips})
        if folds != list(range(1, len(folds) + 1)):
            raise UserError(f"{self.meta_path}: the fold column holds {folds}; folds must be numbered "
                            f"1..k without gaps.")

    def audio_path(self, clip):
        return os.path.join(self.audio_folder, clip.filename)

    def missing_audio(self):
        return [c.filename for c in self.clips if not os.path.isfile(self.audio_path(c))]

    def train(self, fold):
        return [c for c in self.clips if c.fold != fold]

    def test(self, fold):
        return [c for c in self.clips if c.fold == fold]

    def target_index(self, clips):
        """Class index (0..n_classes-1, ordered by target) of each clip."""
        index = {t: i for i, t in enumerate(self.targets)}
        return np.array([index[c.target] for c in clips], dtype=np.int64)

    def without(self, filenames):
        """Drop clips (e.g. unreadable ones that the YAML says to skip)."""
        dropped = set(filenames)
        self.clips = [c for c in self.clips if c.filename not in dropped]


def validation_split(clips, amount, seed):
    """Split clips into (train, validation): about `amount` of each class goes to validation, taking
    whole src_file groups so that takes of one recording never straddle the two."""
    if amount <= 0:
        return list(clips), []
    rng = np.random.default_rng(seed)
    groups = {}
    for c in clips:
        groups.setdefault(c.src_file, []).append(c)
    by_class = {}
    for src in sorted(groups):
        members = groups[src]
        majority = max({c.target for c in members}, key=lambda t: sum(c.target == t for c in members))
        by_class.setdefault(majority, []).append(src)
    chosen = set()
    for target in sorted(by_class):
        sources = by_class[target]
        if len(sources) < 2:
            continue  # a class with one recording stays whole in training
        order = rng.permutation(len(sources))
        wanted = amount * sum(len(groups[s]) for s in sources)
        taken = 0
        for i in order:
            # stop at the group that would overshoot more than it fills, and keep one group in training
            if taken + len(groups[sources[i]]) / 2 > wanted or len(chosen & set(sources)) == len(sources) - 1:
                break
            chosen.add(sources[i])
            taken += len(groups[sources[i]])
    train = [c for c in clips if c.src_file not in chosen]
    validation = [c for c in clips if c.src_file in chosen]
    return train, validation


def select_folds(available, wanted):
    """Resolve `general.active_folds` / --folds against the folds the csv holds."""
    if wanted in (None, "all"):
        return list(available)
    if wanted == "last":
        return [available[-1]]
    if isinstance(wanted, int):
        wanted = [wanted]
    if not isinstance(wanted, (list, tuple)) or not all(isinstance(f, int) for f in wanted):
        raise UserError(f"Active folds {wanted!r} must be all, last or a list of fold numbers like [1, 3].")
    unknown = [f for f in wanted if f not in available]
    if unknown:
        raise UserError(f"Fold(s) {', '.join(map(str, unknown))} are not in the dataset, which holds folds "
                        f"{', '.join(map(str, available))}; pick from those.")
    return sorted(set(wanted))
