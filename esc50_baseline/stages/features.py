"""The feature stages: every clip's log-mel features (and the waveform-augmented copies of the clips still to be
trained on) into the on-disk cache, then each fold's normalization fitted on its training clips."""
import os
import time

from ..errors import UserError
from ..features.extraction import extract_to_cache
from ..features.normalization import Normalizer
from ..data.dataset import fold_title
from .common import section, stale


def do_feature_extraction(ctx):
    section("Feature extraction")
    settings = ctx.settings
    print(f"  log-mel {settings.n_mels} x {settings.n_frames} per clip, cache {ctx.paths['features']}")
    started = time.monotonic()
    clips = {c.filename: ctx.dataset.audio_path(c) for c in ctx.dataset.clips}
    failures = extract_to_cache(clips, settings, ctx.paths["features"],
                                workers=ctx.params["general"]["workers"], overwrite=ctx.overwrite)
    if failures:
        names = sorted(failures)
        listing = "; ".join(failures[n] for n in names[:5]) + ("; ..." if len(names) > 5 else "")
        if ctx.params["dataset"]["on_bad_audio"] == "stop":
            raise UserError(f"{len(failures)} clip(s) could not be read: {listing}; replace or remove them, "
                            "or set dataset.on_bad_audio: skip to leave them out.")
        print(f"  Skipped {len(failures)} unreadable clip(s): {', '.join(names)}")
        ctx.dataset.without(names)
    print(f"  {len(ctx.dataset.clips)} clips ready in {time.monotonic() - started:.1f} s")
    if ctx.waveform_augmentation.copies:
        _augmented_feature_extraction(ctx)


def _augmented_feature_extraction(ctx):
    """The waveform-augmented copies of every clip that some fold still to be trained trains on: only training
    reads them (a teacher's targets are made while its student trains)."""
    from ..features import waveform_augmentation
    settings, augmentation = ctx.settings, ctx.waveform_augmentation
    folds = [fold for fold in ctx.folds if ctx.overwrite or not model_cached(ctx, fold)]
    if not folds:
        print(f"  {augmentation.copies} augmented copies a clip: not needed, every active fold's model is cached")
        return
    training = sorted({c for fold in folds for c in ctx.dataset.train(fold)}, key=lambda c: c.filename)
    mates = {}
    for c in ctx.dataset.clips:
        mates.setdefault(c.fold, []).append(ctx.dataset.audio_path(c))
    jobs = waveform_augmentation.jobs([(c.filename, ctx.dataset.audio_path(c), c.fold) for c in training], mates,
                                      augmentation, ctx.params["general"]["seed"])
    print(f"  {augmentation.copies} augmented copies of {len(training)} training clips, "
          f"cache {ctx.paths['augmented_features']}")
    started = time.monotonic()
    failures = extract_to_cache(jobs, settings, ctx.paths["augmented_features"],
                                workers=ctx.params["general"]["workers"], overwrite=ctx.overwrite,
                                augmentation=augmentation, label="augmented")
    if failures:
        raise UserError(f"{len(failures)} augmented copies could not be made: "
                        f"{next(iter(failures.values()))}; replace or remove that clip and run again.")
    print(f"  {len(jobs)} augmented copies ready in {time.monotonic() - started:.1f} s")


def model_cached(ctx, fold):
    """Whether the learning stage will read fold `fold`'s model from the cache rather than train it: the model
    is whole and newer than an intact normalization (one that is damaged or missing is fitted again, which
    makes the model stale). learning.learn_fold decides it again after normalization, when a missing one means that stage
    was off."""
    from ..models.model_files import model_file_problem
    model, norm = ctx.model_path(fold), ctx.norm_path(fold)
    return (os.path.exists(norm) and Normalizer.intact(norm) and not stale(model, norm)
            and not model_file_problem(model))


def do_feature_normalization(ctx):
    section("Feature normalization")
    for fold in ctx.folds:
        path = ctx.norm_path(fold)
        if os.path.exists(path) and not ctx.overwrite:
            if Normalizer.intact(path):
                print(f"  {fold_title(fold)}: cached")
                continue
            print(f"  {fold_title(fold)}: the cached {path} is damaged; fitting it again")
        train, _validation, _test = ctx.split(fold)
        Normalizer.fit(ctx.features(train)).save(path)
        print(f"  {fold_title(fold)}: mean and std of {len(train)} training clips")
