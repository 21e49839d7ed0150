"""The dataset: ESC-50 layout (audio/*.wav + meta/esc50.csv), its folds, splits, and the download.

Any folder in that layout works, with any number of folds and classes: the csv needs the columns
filename, fold, target and category; esc10, src_file and take are optional, other columns are ignored.
A fold is a group label, as written in the csv: whole numbers (1..5, 0..9, 4 and 5 alone) stay numbers,
anything else ("A", "B", "fold1") is kept as text.
"""
import os
import re
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import UserError

REQUIRED_COLUMNS = ("filename", "fold", "target", "category")
OPTIONAL_COLUMNS = ("src_file", "esc10")
ESC50_COLUMNS = {name: name for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}
ESC50_CLASSES = 50
META_FILE = os.path.join("meta", "esc50.csv")
WHOLE_NUMBER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class Clip:
    filename: str
    fold: object  # int, or str where the csv names folds with text
    target: int
    category: str
    src_file: str
    esc10: bool


# The fold label of a set's final model: it trains on every clip (no fold is held out, none is tested), so its
# accuracy claim is the set's five-fold figure. Dataset.train(FINAL) is every clip and Dataset.test(FINAL) none.
FINAL = "final"


def fold_title(fold):
    """How the console names a fold: "Fold 3", or "Final model"."""
    return "Final model" if fold == FINAL else f"Fold {fold}"


def fold_tag(fold):
    """How a file name names a fold: fold_3, or final."""
    return FINAL if fold == FINAL else f"fold_{fold}"


def fold_seed(seed, fold):
    """The seed of one fold's random draws: seed + fold for a numbered fold (as always), a stable number
    derived from the label for a named one."""
    return seed + (fold if isinstance(fold, int) else zlib.crc32(str(fold).encode()) % 100_000)


def fold_labels(values):
    """The csv's fold cells as labels: all whole numbers -> ints, otherwise the stripped text."""
    if all(WHOLE_NUMBER.match(v) for v in values):
        return [int(v) for v in values]
    return list(values)


class Dataset:
    """The metadata of one dataset copy: clips, folds and class labels (ordered by target)."""

    def __init__(self, root, subset="all", meta_file=META_FILE, audio_folder="audio", columns=None,
                 file_pattern="{filename}"):
        """`columns`: the CSV's column for each field (default ESC-50's names); `file_pattern`: where a row's file
        is under `audio_folder`, from its {filename} and {fold} (e.g. UrbanSound8K's "fold{fold}/{filename}")."""
        self.root = root
        self.meta_path = os.path.join(root, meta_file)
        self.audio_folder = os.path.join(root, audio_folder)
        self.columns = dict(ESC50_COLUMNS, **(columns or {}))
        self.file_pattern = file_pattern
        try:
            file_pattern.format(filename="x", fold=1)
        except (KeyError, IndexError, ValueError) as e:
            raise UserError(f"dataset.file_pattern is {file_pattern!r}, which names {e} besides {{filename}} and "
                            "{fold}; write the path of a row's file from those two, e.g. \"fold{fold}/{filename}\".")
        self.has_esc10_column = False
        clips = self._read_meta()
        if subset == "esc10":
            if not self.has_esc10_column:
                raise UserError(f"dataset.subset is esc10 but {self.meta_path} has no esc10 column; "
                                "set dataset.subset: all.")
            clips = [c for c in clips if c.esc10]
            if not clips:
                raise UserError(f"dataset.subset is esc10 but no row of {self.meta_path} is marked esc10 True; "
                                "set dataset.subset: all.")
        if len({c.target for c in clips}) < 2:
            raise UserError(f"{self.meta_path} holds one class ({clips[0].category}); a classifier needs two or more "
                            "(add the other classes' rows).")
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
        table = read_table(self.meta_path)
        if table.empty:
            raise UserError(f"{self.meta_path} has no rows; it must list one clip per row.")
        missing = [self.columns[c] for c in REQUIRED_COLUMNS if self.columns[c] not in table.columns]
        if missing:
            mapped = self.columns != ESC50_COLUMNS
            raise UserError(f"{self.meta_path} lacks the column(s) {', '.join(missing)}; it needs "
                            f"{', '.join(self.columns[c] for c in REQUIRED_COLUMNS)} (esc10, src_file and take are "
                            f"optional); its header holds {', '.join(map(repr, table.columns))}; name its columns "
                            f"in dataset.columns{' (as set now)' if mapped else ''}.")
        renamed = {self.columns[c]: c for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS
                   if self.columns[c] in table.columns and self.columns[c] != c}
        # a column of a field's own name that another column stands for is not that field: dropped first
        table = table.drop(columns=[c for c in renamed.values() if c in table.columns]).rename(columns=renamed)
        self.has_esc10_column = "esc10" in table.columns
        for column in ("filename", "fold", "target"):
            empty = table.index[table[column] == ""]
            if len(empty):
                raise UserError(f"{self.meta_path} line {empty[0] + 2}: the {column} cell is empty; fill it in or "
                                "remove the row.")
        folds = fold_labels(table["fold"].tolist())
        rows = table.to_dict("records")
        clips = [self._clip(row, fold, line) for line, (row, fold) in enumerate(zip(rows, folds), start=2)]
        self._check(clips)
        return clips

    def _clip(self, row, fold, line):
        try:
            target = float(row["target"])
        except ValueError:
            target = float("nan")
        if not target.is_integer():
            raise UserError(f"{self.meta_path} line {line}: target is {row['target']!r}, not a whole number.")
        if str(fold).lower() == FINAL:
            raise UserError(f"{self.meta_path} line {line}: fold {fold!r} is the name of the final model's "
                            "pseudo-fold (every clip); name the fold otherwise.")
        if "/" in str(fold) or "\\" in str(fold):
            raise UserError(f"{self.meta_path} line {line}: fold {fold!r} holds a path separator; name folds "
                            "without / or \\.")
        filename = row["filename"]
        inside = os.path.normpath(self.file_pattern.format(filename=filename, fold=fold))
        if os.path.isabs(filename) or os.path.isabs(inside) or inside == ".." or inside.startswith(".." + os.sep):
            placed = "" if self.file_pattern == "{filename}" else f" (dataset.file_pattern puts it at {inside})"
            raise UserError(f"{self.meta_path} line {line}: file {filename!r}{placed} is not inside the audio folder "
                            f"{self.audio_folder}; name files by their path under it (no leading / or ..).")
        return Clip(filename=filename, fold=fold, target=int(target), category=row["category"] or row["target"],
                    src_file=row.get("src_file") or filename, esc10=row.get("esc10", "").lower() == "true")

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

    def audio_path(self, clip):
        return os.path.join(self.audio_folder, self.file_pattern.format(filename=clip.filename, fold=clip.fold))

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


def read_table(path):
    """A csv as a pandas DataFrame of stripped text cells (nothing turned into numbers or NaN), whatever
    its byte-order mark or line endings."""
    import pandas as pd
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=True)
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8 and run again.")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise UserError(f"{path} is not a readable CSV file ({str(e).strip()}); fix or replace it.")
    table.columns = [str(c).strip() for c in table.columns]
    return table.apply(lambda column: column.str.strip())


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
    """Resolve `general.active_folds` / --folds against the fold labels the csv holds. Labels may be
    written as numbers or text: 4 and "4" name the same numbered fold."""
    if wanted in (None, "all"):
        return list(available)
    if wanted == "last":
        return [available[-1]]
    if not isinstance(wanted, (list, tuple)):
        wanted = [wanted]
    if not wanted:
        raise UserError("No fold is named (an empty --folds or general.active_folds); name one or more of "
                        f"{', '.join(map(str, available))}, or use all.")
    by_text = {str(f): f for f in available}
    unknown = [str(f) for f in wanted if str(f).strip() not in by_text]
    if unknown:
        raise UserError(f"Fold(s) {', '.join(unknown)} are not in the dataset, which holds folds "
                        f"{', '.join(map(str, available))}; pick from those.")
    chosen = {by_text[str(f).strip()] for f in wanted}
    return [f for f in available if f in chosen]
