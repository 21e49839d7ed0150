"""The training schedule as phases: one for a network trained from scratch; for a pretrained backbone (the
`pretrained` family), first the head alone with the backbone frozen, then fine-tuning with the backbone's last
blocks (or all of it) unfrozen at a lower rate, as learner.fine_tuning says.

Each phase has its own optimizer and learning-rate schedule (warm-up and cosine decay within the phase).
While a layer is frozen (trainable = False) Keras 3 also runs its batch normalization in inference mode, so
the backbone's ImageNet statistics are kept; `batch_norm_frozen` keeps them through fine-tuning too, as the
Keras transfer-learning guide advises for small datasets.
"""
from dataclasses import dataclass

from ..errors import UserError
from ..models.pretrained import blocks, find_backbone, weights_setting


@dataclass
class Phase:
    start: int          # epochs done before it
    end: int            # epochs done after it
    learning_rate: float
    warmup_epochs: int
    unfrozen: object    # None: no backbone; 0: backbone frozen; "all" or a number of last blocks
    batch_norm_frozen: bool = True

    def apply(self, model):
        """Set the backbone's layers trainable as this phase says; returns a line saying so (or None)."""
        import keras
        net = find_backbone(model)
        if net is None:
            return None
        net.trainable = self.unfrozen != 0  # first: Keras may pass it on to some of the layers
        groups = blocks(net)
        count = len(groups) - (groups[0][0] == "stem")
        frozen_blocks = (0 if self.unfrozen == "all" else max(len(groups) - self.unfrozen, 0) if self.unfrozen
                         else len(groups))
        for i, (_name, layers) in enumerate(groups):
            for layer in layers:  # each layer set explicitly: the nested model's own flag does not reach them all
                layer.trainable = i >= frozen_blocks and not (
                    self.batch_norm_frozen and isinstance(layer, keras.layers.BatchNormalization))
        what = ("the backbone frozen (the head alone trains)" if self.unfrozen == 0 else
                "the whole backbone trainable" if self.unfrozen == "all" or self.unfrozen >= len(groups) else
                f"the backbone's last {self.unfrozen} of {count} blocks trainable")
        if self.unfrozen != 0 and self.batch_norm_frozen:
            what += ", its batch normalization frozen"
        return f"epochs {self.start + 1}-{self.end}: {what}, learning rate {self.learning_rate:g}"


def check(learner):
    """The fine-tuning settings against the model they would apply to: one sentence for the first problem.
    True when the model has a pretrained backbone (so the settings apply)."""
    spec = (learner.get("families") or {}).get(learner["model"])
    epochs, tuning = learner["epochs"], learner["fine_tuning"]
    frozen, unfreeze = tuning["frozen_epochs"], tuning["unfreeze"]
    if not (isinstance(spec, dict) and spec.get("type") == "pretrained"):
        if frozen:
            raise UserError(f"learner.fine_tuning.frozen_epochs is {frozen}, but learner.model {learner['model']} has "
                            "no pretrained backbone to freeze; set it to 0 or use a family of type pretrained.")
        return False
    if unfreeze != "all" and not (isinstance(unfreeze, int) and not isinstance(unfreeze, bool) and unfreeze >= 0):
        raise UserError(f"learner.fine_tuning.unfreeze is {unfreeze!r}; use all, or the number of the backbone's "
                        "last blocks to train after the frozen epochs (0: the head alone, throughout).")
    if frozen > epochs:
        raise UserError(f"learner.fine_tuning.frozen_epochs is {frozen}, more than learner.epochs ({epochs}); "
                        "make it at most that.")
    return True


def phases(learner, model):
    """The phases of training `model` as the learner settings say, in order."""
    if not check(learner) or find_backbone(model) is None:
        return [Phase(0, learner["epochs"], learner["learning_rate"], learner["warmup_epochs"], None)]
    tuning, frozen = learner["fine_tuning"], learner["fine_tuning"]["frozen_epochs"]
    rate = tuning["learning_rate"] or learner["learning_rate"]
    # random initial weights have no statistics worth keeping: frozen, their batch normalization would never
    # normalize (it would divide by the initial variance of 1 for good), and the network would not learn
    pretrained = weights_setting(learner["families"][learner["model"]]) != "none"
    schedule = [Phase(0, frozen, learner["learning_rate"], learner["warmup_epochs"], 0),
                Phase(frozen, learner["epochs"], rate, 0 if frozen else learner["warmup_epochs"], tuning["unfreeze"],
                      tuning["batch_norm_frozen"] and pretrained)]
    return [p for p in schedule if p.end > p.start]
