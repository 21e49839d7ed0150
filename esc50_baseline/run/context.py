"""The run context: what every stage needs (the resolved parameters, the dataset, the active folds) and where
each cached artifact of a set lives: one helper per artifact, so that a file name is spelled in one place."""
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import DamagedFile, UserError
from ..data.dataset import fold_seed, fold_tag, validation_split
from ..features.extraction import FeatureCache, FeatureSettings
from ..features.normalization import Normalizer

KERAS = "keras"  # the float model's format name beside the TFLite formats


@dataclass
class RunContext:
    """One set's run: its parameters, the dataset, the active folds and its stage folders (`paths`: stage ->
    folder, named by setup.stage_paths)."""
    params: dict
    dataset: object
    folds: list
    paths: dict
    overwrite: bool = False
    members: list = field(default_factory=list)  # an ensemble's member sets (their RunContexts)
    teacher: object = None  # the RunContext of the set this one learns from (learner.distillation.teacher)
    same_settings: str = ""  # the command-line flags that chose this run's data and settings, for hints
    _features: dict = field(default_factory=dict)

    def sets(self):
        """The trained sets whose predictions this set's are: its members, or itself."""
        return self.members or [self]

    def every_set(self):
        """This set, its members and its teacher, and theirs."""
        yield self
        for other in self.members + ([self.teacher] if self.teacher else []):
            yield from other.every_set()

    # -- what a stage reads -------------------------------------------------------------------------------------

    @property
    def settings(self):
        return FeatureSettings.from_params(self.params["feature_extractor"])

    def features(self, clips):
        """(clips, n_mels, n_frames) float32, read from the cache once per run and kept in memory."""
        cache = FeatureCache(self.paths["features"])
        missing = [c.filename for c in clips if c.filename not in self._features and not cache.has(c.filename)]
        if missing:
            raise UserError(f"Features of {len(missing)} clip(s) are not in the cache {self.paths['features']} "
                            f"(e.g. {missing[0]}); enable flow.feature_extraction and run again.")
        for c in clips:
            if c.filename not in self._features:
                self._features[c.filename] = cached_entry(cache.load, c.filename)
        if not clips:  # e.g. no validation clips (learner.validation_amount: 0)
            shape = next(iter(self._features.values())).shape if self._features else (0, 0)
            return np.zeros((0,) + shape, np.float32)
        return np.stack([self._features[c.filename] for c in clips])

    @property
    def waveform_augmentation(self):
        from ..features.waveform_augmentation import WaveformSettings
        return WaveformSettings.from_params(self.params["learner"]["augmentation"]["waveform"])

    def augmented_features(self, clips):
        """(copies, clips, n_mels, n_frames): the cached waveform-augmented copies, or None when off."""
        from ..features.waveform_augmentation import copy_name
        copies = self.waveform_augmentation.copies
        if not copies:
            return None
        cache = FeatureCache(self.paths["augmented_features"])
        names = [copy_name(c.filename, k) for k in range(1, copies + 1) for c in clips]
        missing = [n for n in names if not cache.has(n)]
        if missing:
            raise UserError(f"{len(missing)} augmented copies are not in the cache {self.paths['augmented_features']} "
                            f"(e.g. {missing[0]}); enable flow.feature_extraction and run again.")
        return cached_entry(cache.load_many, names).reshape((copies, len(clips)) + self.settings.shape)

    def split(self, fold):
        """(train, validation, test) clips of one fold; validation is drawn from the training folds, or is the
        training folds named by learner.validation_folds."""
        held = {str(f) for f in self.params["learner"]["validation_folds"]}
        if held:
            train = self.dataset.train(fold)
            return ([c for c in train if str(c.fold) not in held], [c for c in train if str(c.fold) in held],
                    self.dataset.test(fold))
        seed = fold_seed(self.params["general"]["seed"], fold)
        train, validation = validation_split(self.dataset.train(fold), self.params["learner"]["validation_amount"], seed)
        return train, validation, self.dataset.test(fold)

    def normalizer(self, fold):
        return cached_entry(Normalizer.load, need(self.norm_path(fold), "feature_normalization"))

    # -- where each artifact lives ------------------------------------------------------------------------------

    def _in(self, stage, name):
        return os.path.join(self.paths[stage], name)

    def norm_path(self, fold):
        return self._in("normalization", f"norm_{fold_tag(fold)}.npz")

    def model_path(self, fold):
        return self._in("learner", f"model_{fold_tag(fold)}.keras")

    def split_path(self, fold):
        """Which clips the fold trained, validated and tested on (a CSV)."""
        return self._in("learner", f"split_{fold_tag(fold)}.csv")

    def log_dir(self, fold):
        """The fold's training logs: history.csv (each epoch's figures and time) and TensorBoard's."""
        return self._in("learner", f"logs_{fold_tag(fold)}")

    def history_path(self, fold):
        return os.path.join(self.log_dir(fold), "history.csv")

    def checkpoint_path(self, fold):
        """The per-epoch checkpoint of a training under way (removed once the model is saved)."""
        return self._in("learner", f"checkpoint_{fold_tag(fold)}.npz")

    def training_lock_path(self, fold):
        return self._in("learner", f".training_{fold_tag(fold)}.lock")

    def training_curves_path(self, fold):
        return self._in("learner", f"training_curves_{fold_tag(fold)}.png")

    def tflite_path(self, fold, fmt):
        return self._in("tflite", f"model_{fold_tag(fold)}_{fmt}.tflite")

    def model_file(self, fold, fmt=KERAS):
        """The fold's model of one format: the Keras file, or a TFLite format's."""
        return self.model_path(fold) if fmt == KERAS else self.tflite_path(fold, fmt)

    def labels_path(self):
        """labels.txt beside the TFLite models: the classes, one a line, in the models' output order."""
        return self._in("tflite", "labels.txt")

    def micro_package_dir(self, fold):
        return self._in("tflite", f"micro_{fold_tag(fold)}")

    def predictions_path(self, fold, fmt=KERAS):
        """The fold's test predictions (a probability CSV) of the float model, or of one TFLite format."""
        if fmt == KERAS:
            return self._in("recognizer", f"res_fold_{fold}.csv")
        return self._in("tflite", f"res_fold_{fold}_{fmt}.csv")

    def results_dir(self, fmt=KERAS):
        """The folder of the evaluation of the float model's predictions, or of one TFLite format's."""
        return self.paths["results"] if fmt == KERAS else os.path.join(self.paths["results"], f"tflite_{fmt}")

    def results_path(self, name, fmt=KERAS):
        """A file of the evaluation (results.yaml, tables.txt, tflite_comparison.csv, ...)."""
        return os.path.join(self.results_dir(fmt), name)

    def soundscape_folder(self, fold, pool):
        return os.path.join(self.paths["soundscapes"], f"fold_{fold}", pool)

    def sed_path(self, name):
        """A file of the detection stage: sed_fold_{fold}.yaml, detections_fold_{fold}.tsv, sed_tables.txt, ..."""
        return self._in("sed", name)

    def sed_fold_path(self, fold):
        return self.sed_path(f"sed_fold_{fold}.yaml")


def need(path, stage):
    """`path`, which an earlier stage writes; a missing one is named with the switch that makes it."""
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist yet; enable flow.{stage} and run again.")
    return path


def cached_entry(load, *args):
    """A cache entry read by a later stage; one that was damaged since its stage checked it is named."""
    try:
        return load(*args)
    except DamagedFile as e:
        raise UserError(f"{e}; run the same command again: the stage that wrote it checks its cache and computes "
                        "damaged entries again.") from None
