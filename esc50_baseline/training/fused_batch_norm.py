"""Batch normalization trained with TensorFlow's fused kernel instead of Keras 3's op-by-op arithmetic.

Keras 3 computes a BatchNormalization layer's batch statistics, the normalisation and their gradients from
a dozen elementwise ops (mean, squared difference, multiply, tile, ...); on the TensorFlow backend it has no
fused path. In the mobile family's training step on a CPU core those ops took half the time. TensorFlow's
FusedBatchNormV3 (oneDNN on a CPU, cuDNN on a GPU) does the same arithmetic in one kernel each way.

Only training changes. A model is built from Keras's own layers; `for_training` swaps its batch
normalization for the subclass below, with the same weights, and `plain` swaps it back, which the trainer
does before saving. So saved models, TFLite files and everything downstream see plain Keras. The subclass
falls back to Keras's own code wherever the fused kernel does not apply (inference, a frozen layer, another
axis than the last, masks, renormalisation, synchronised statistics, another backend).
"""
from ..models.builder import map_config, rebuilt

NAME = "FusedBatchNormalization"
_classes = {}


def layer_class():
    """The subclass, made once (keras is imported only when a model is)."""
    if NAME not in _classes:
        import keras

        class FusedBatchNormalization(keras.layers.BatchNormalization):
            def call(self, inputs, training=None, mask=None):
                if not self._fused(inputs, training, mask):
                    return super().call(inputs, training=training, mask=mask)
                import tensorflow as tf
                x = tf.cast(inputs, "float32")  # statistics in float32, as Keras keeps them under mixed precision
                channels = x.shape[-1]
                scale = self.gamma if self.scale else tf.ones([channels])
                offset = self.beta if self.center else tf.zeros([channels])
                y, mean, variance, *_ = tf.compat.v1.nn.fused_batch_norm(
                    x, scale, offset, epsilon=self.epsilon, data_format="NHWC", is_training=True)
                # The kernel normalises with the batch's variance but returns it with Bessel's correction;
                # Keras's moving average takes the uncorrected one.
                count = tf.cast(tf.size(x) // channels, "float32")
                variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
                self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
                self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
                return tf.cast(y, self.compute_dtype)

            def _fused(self, inputs, training, mask):
                import keras
                return (training and self.trainable and mask is None and len(inputs.shape) == 4
                        and self.axis in (-1, 3) and not self.renorm and not self.synchronized
                        and self.epsilon >= 1.001e-5  # the kernel's smallest (cuDNN's)
                        and keras.backend.backend() == "tensorflow")

        _classes[NAME] = FusedBatchNormalization
    return _classes[NAME]


def for_training(model):
    """The model with every BatchNormalization (in nested models too) as the fused subclass, same weights."""
    import keras
    with keras.saving.custom_object_scope({NAME: layer_class()}):
        return rebuilt(model, map_config(model.get_config(), lambda node: _renamed(node, "BatchNormalization", NAME)))


def plain(model):
    """The model with Keras's own BatchNormalization again, same weights: what is saved."""
    return rebuilt(model, map_config(model.get_config(), lambda node: _renamed(node, NAME, "BatchNormalization")))


def _renamed(node, old, new):
    if node.get("class_name") != old or "config" not in node:
        return node
    return dict(node, class_name=new, module="keras.layers" if new == "BatchNormalization" else None,
                registered_name=None if new == "BatchNormalization" else new)
