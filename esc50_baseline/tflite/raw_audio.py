"""A .tflite model that takes one clip of PCM samples and returns class probabilities: the project's log-mel
front end (framing, window, FFT, magnitude, mel projection, log) and the fold's normalisation inside the
graph, then the network. A device then needs no feature code of its own, and cannot get it subtly wrong."""
import numpy as np

from ..config import RAW_AUDIO_FORMATS as RAW_FORMATS
from ..errors import UserError
from ..training.runtime import tf


def front_end(extractor, normalizer, float16_constants=False):
    """The normalised log-mel features of (batch, n_samples) float32 samples, as TensorFlow ops that LiteRT
    runs (PAD, frames by GATHER, RFFT2D, COMPLEX_ABS, a matrix product, LOG): (batch, n_mels, n_frames, 1)."""
    s = extractor.s
    window = tf.constant(extractor.window, tf.float32)  # the window centred in the FFT frame, as librosa does
    mel_basis = tf.constant(extractor.mel_basis.T.astype(np.float32))  # (n_fft // 2 + 1, n_mels)
    mean = tf.constant(normalizer.mean, tf.float32)
    std = tf.constant(normalizer.std, tf.float32)
    padding = s.n_fft // 2 if s.center else 0
    if s.center and s.pad_mode != "constant":
        raise UserError(f"feature_extractor.pad_mode is '{s.pad_mode}', but a raw-audio TFLite model (tflite.formats "
                        "raw_*) pads with zeros; set pad_mode to constant, or drop the raw_* formats.")

    def features(samples):
        y = tf.pad(samples, [[0, 0], [padding, padding]])
        frames = tf.signal.frame(y, s.n_fft, s.hop_length)  # (batch, n_frames, n_fft)
        spectrum = tf.abs(tf.signal.rfft(frames * window))
        if s.power != 1.0:
            spectrum = spectrum ** s.power
        mel = tf.matmul(spectrum, mel_basis)  # (batch, n_frames, n_mels)
        if float16_constants:  # the offset (2.2e-16) would be 0 in float16: log(0 + offset) is given whole
            log_mel = tf.where(mel > 0, tf.math.log(mel), float(np.log(s.log_offset)))
        else:
            log_mel = tf.math.log(mel + s.log_offset)
        x = (log_mel - mean) / std
        return tf.transpose(x, [0, 2, 1])[..., tf.newaxis]
    return features


def raw_audio_model(model, extractor, normalizer, float16_constants=False):
    """A Keras model: (1, n_samples) float32 samples -> the probabilities of `model` (a trained Keras model ending
    in its softmax) on their features."""
    import keras
    features = front_end(extractor, normalizer, float16_constants)

    class LogMelFrontEnd(keras.layers.Layer):
        def call(self, samples):
            return features(samples)

    samples = keras.Input((extractor.s.n_samples,), batch_size=1, name="samples")
    return keras.Model(samples, model(LogMelFrontEnd(name="log_mel")(samples)))


def convert_raw(model, fmt, extractor, normalizer):
    """The .tflite bytes of the raw-audio model, in float32 or with float16 weights (front end included)."""
    from .convert import quiet_conversion
    keras_model = raw_audio_model(model, extractor, normalizer, float16_constants=fmt == "raw_float16")
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if fmt == "raw_float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif fmt != "raw_float32":
        raise ValueError(f"unknown raw-audio format {fmt!r}; use one of {', '.join(RAW_FORMATS)}")
    with quiet_conversion():
        return converter.convert()
