"""A .tflite model that takes one clip of PCM samples and returns class probabilities: the project's log-mel
front end (framing, window, FFT, magnitude, mel projection, log) and the fold's normalisation inside the
graph, then the network. A device then needs no feature code of its own, and cannot get it subtly wrong."""
import numpy as np

from .formats import RAW_AUDIO_FORMATS as RAW_FORMATS
from ..errors import UserError
from ..runtime import tf

FRONT_END = "log_mel"  # the front end's layer: the operators named by it stay float in raw_int8


def front_end(extractor, normalizer, float16_constants=False):
    """The normalised log-mel features of (batch, n_samples) float32 samples, as TensorFlow ops that LiteRT
    runs (PAD, frames from slices, RFFT2D, COMPLEX_ABS, a matrix product, LOG): (batch, n_mels, n_frames, 1)."""
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
        spectrum = tf.abs(tf.signal.rfft(frames(y, s.n_fft, s.hop_length) * window))
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


def frames(y, length, hop):
    """(batch, n) -> (batch, n_frames, length), as tf.signal.frame, from slices of hop-long blocks: frame i is
    blocks i, i + 1, ... side by side, the last one cut. tf.signal.frame makes a GATHER with a table of every
    frame's sample indices instead, about 1 MB of int32 in the file for 251 frames of 2048."""
    n = int(y.shape[1])
    n_frames = 1 + (n - length) // hop
    pieces = -(-length // hop)
    n_blocks = n_frames + pieces - 1
    y = tf.pad(y, [[0, 0], [0, max(0, n_blocks * hop - n)]])  # zeros no frame reaches, to fill the last block
    blocks = tf.reshape(y[:, :n_blocks * hop], [-1, n_blocks, hop])
    parts = [blocks[:, k:k + n_frames, :] for k in range(pieces)]
    parts[-1] = parts[-1][:, :, :length - (pieces - 1) * hop]
    return tf.concat(parts, axis=2) if pieces > 1 else parts[0]


def raw_audio_model(model, extractor, normalizer, float16_constants=False):
    """A Keras model: (1, n_samples) float32 samples and (1,) int32 time shift -> the probabilities of `model` (a
    trained Keras model ending in its softmax) on their features rolled by that many frames (np.roll's sense).
    The shift is the test-time augmentation's: rolled features, not rolled samples, are what the project's
    pipeline averages over, and the two differ in the frames around the wrap (0 = the plain prediction)."""
    import keras
    from .convert import logits_model
    features = front_end(extractor, normalizer, float16_constants)
    n_frames = extractor.s.n_frames

    class LogMelFrontEnd(keras.layers.Layer):
        def call(self, samples):
            return features(samples)

    class TimeRoll(keras.layers.Layer):
        def call(self, x, shift):
            return tf.gather(x, tf.math.floormod(tf.range(n_frames) - shift[0], n_frames), axis=2)

    samples = keras.Input((extractor.s.n_samples,), batch_size=1, name="samples")
    shift = keras.Input((), batch_size=1, dtype="int32", name="time_shift")
    # float32 whatever the global policy: a training in this process may have left a mixed one behind
    front = LogMelFrontEnd(name=FRONT_END, dtype="float32")(samples)
    # the softmax apart from the network's logits, so that a full-integer network can end before it (raw_int8)
    logits = logits_model(model)(TimeRoll(name="time_roll", dtype="float32")(front, shift))
    return keras.Model([samples, shift], keras.layers.Softmax(name="probabilities", dtype="float32")(logits))


def convert_raw(model, fmt, extractor, normalizer, representative=None):
    """The .tflite bytes of the raw-audio model: float32, float16 weights (front end included), or a full-integer
    network behind the float front end (raw_int8). `representative` (clips, n_samples): training clips' samples,
    required for raw_int8: they calibrate the network's activations as the int8 format's features do."""
    from .convert import quiet_conversion
    keras_model = raw_audio_model(model, extractor, normalizer, float16_constants=fmt == "raw_float16")
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if fmt == "raw_float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif fmt == "raw_int8":
        if representative is None or len(representative) == 0:
            raise ValueError("the raw_int8 format needs representative samples")
        with quiet_conversion():
            return integer_network(converter, keras_model, representative)
    elif fmt != "raw_float32":
        raise ValueError(f"unknown raw-audio format {fmt!r}; use one of {', '.join(RAW_FORMATS)}")
    with quiet_conversion():
        return converter.convert()


def integer_network(converter, keras_model, representative):
    """Selective quantization: every operator int8 except the front end's (an FFT, a magnitude spectrum spanning
    orders of magnitude and a log, which 8 bits cannot carry) and the closing softmax (int8 probabilities
    round everything under 1/256 to 0). Between them a QUANTIZE and a DEQUANTIZE."""
    from tensorflow.lite.tools import flatbuffer_utils
    float_model = flatbuffer_utils.read_model_from_bytearray(converter.convert())
    graph = float_model.subgraphs[0]
    names = [graph.tensors[i].name.decode() for op in graph.operators for i in op.outputs]
    kept_float = [n for n in names if f"/{FRONT_END}" in n] + [graph.tensors[graph.outputs[0]].name.decode()]

    def calibration():
        for clip in representative:
            yield [np.asarray(clip, np.float32)[np.newaxis], np.zeros(1, np.int32)]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=calibration,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=kept_float))
    return debugger.get_nondebug_quantized_model()
