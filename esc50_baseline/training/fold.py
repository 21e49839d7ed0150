"""One fold's network from its arrays to its saved file: TensorFlow set up for the fold's seed, the network
built and trained (resuming from its checkpoint), then saved whole as float32 with a figure of its training
curves. Plain values in: the learning stage gathers the fold's features, labels, copies and teacher."""
import os
from dataclasses import dataclass


@dataclass
class FoldData:
    """What one fold trains on: normalized features (clips, n_mels, n_frames) and class indices."""
    x_train: object
    y_train: object
    x_val: object
    y_val: object
    n_classes: int
    copies: object = None  # (copies, clips, n_mels, n_frames): waveform-augmented versions of x_train, or None
    teacher: object = None  # () -> what trainer.train_fold takes as `teacher`, made once the network is built
    normalizer: object = None  # the one the features went through (some augmentations mix before it)


@dataclass
class FoldFiles:
    """Where one fold's training writes: the model, its logs, its checkpoint and its training-curves figure."""
    model: str
    log_dir: str
    checkpoint: str
    curves: str


def train_and_save(learner, data, seed, deterministic, files, title, label, fresh=False):
    """Train the network of `learner` on `data` and save it to files.model; returns (best epoch or None, its
    monitored value, whether it resumed an interrupted training). `title` names the figure, `label` the console
    lines; `fresh`: ignore (and remove) a checkpoint."""
    from .. import interrupts, runtime  # runtime first: TensorFlow's quiet start-up and settings
    import keras
    from ..evaluation import plots
    from ..models import model_files
    from ..models.builder import build_model
    from ..models.complexity import keras_size_report, spatial_conv_share
    from . import fused_batch_norm, trainer
    keras.backend.clear_session()
    interrupts.check()  # a SIGTERM that landed in a finalizer of the last fold's graph (seen here) stops now
    shape = data.x_train.shape[1:]
    print("  " + runtime.setup(seed, deterministic, learner["mixed_precision"],
                               lambda: spatial_conv_share(build_model(learner, shape, data.n_classes))))
    strategy = runtime.distribution_strategy(learner["distribution"])
    with strategy.scope():
        model = fused_batch_norm.for_training(build_model(learner, shape, data.n_classes))
    total = keras_size_report(model)["total"]
    print(f"  Model {model.name}: {total['params']:,} parameters, {total['macs'] / 1e6:.2f} M MACs per clip")
    print(f"  {label}: {len(data.x_train)} training, {len(data.x_val)} validation clips, "
          f"{learner['epochs']} epochs, batch {learner['batch_size']}", flush=True)
    resumed = os.path.exists(files.checkpoint) and not fresh
    if fresh and os.path.exists(files.checkpoint):
        os.remove(files.checkpoint)
    elif resumed:
        print(f"  {label}: resuming from the checkpoint of an interrupted run")
    history, best_epoch, best = trainer.train_fold(
        model, data.x_train, data.y_train, data.x_val, data.y_val, data.n_classes, learner, seed, files.log_dir,
        checkpoint_path=files.checkpoint, strategy=strategy, train_copies=data.copies,
        teacher=data.teacher() if data.teacher else None, normalizer=data.normalizer, label=label)
    model_files.save_model_atomic(model_files.as_float32(fused_batch_norm.plain(model)), files.model)
    keras.mixed_precision.set_global_policy("float32")  # the precision is the training's, not the later stages'
    trainer.Checkpoint(files.checkpoint).remove()
    plots.training_curves_png(history, files.curves, title)
    return best_epoch, best, resumed
