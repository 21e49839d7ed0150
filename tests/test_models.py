import numpy as np
import pytest

from esc50_baseline import runtime  # noqa: F401
from esc50_baseline.errors import UserError
from esc50_baseline.models.blocks import adapt_pool
from esc50_baseline.models.builder import build_model
from esc50_baseline.models.complexity import DTYPE_BYTES, keras_size_report


def test_cnn3_has_dcase_parameter_count(defaults):
    model = build_model(defaults["learner"], (40, 500), 10)
    assert model.count_params() == 46246


@pytest.mark.parametrize("family, conv_filters", [("cnn3", [16, 16, 32]), ("cnn4", [16, 16, 16, 16]),
                                                  ("cnn5", [16, 32, 32, 32, 32])])
def test_families_build_on_esc50_frames(defaults, family, conv_filters):
    learner = dict(defaults["learner"], model=family)
    model = build_model(learner, (40, 251), 50)
    convs = [l for l in model.layers if type(l).__name__ == "Conv2D"]
    assert [l.filters for l in convs] == conv_filters
    assert model.output_shape == (None, 50)
    out = model(np.zeros((2, 40, 251, 1), np.float32))
    np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-5)


def test_time_pool_adapts_to_frames():
    assert adapt_pool([4, None], (8, 50)) == (4, 50)
    assert adapt_pool([4, 100], (8, 50)) == (4, 50)
    assert adapt_pool(2, (1, 7)) == (1, 2)


def test_explicit_layer_list(defaults):
    learner = dict(defaults["learner"], model="layers", layers=[
        {"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 3, "padding": "same"}},
        {"class_name": "MaxPooling2D", "config": {"pool_size": [None, None]}},
        {"class_name": "Flatten"},
        {"class_name": "Dense", "config": {"units": "CLASS_COUNT", "activation": "softmax"}}])
    model = build_model(learner, (40, 251), 7)
    assert model.output_shape == (None, 7)
    assert model.count_params() == (9 * 4 + 4) + (4 * 7 + 7)
    with pytest.raises(UserError, match="not a Keras layer class"):
        build_model(dict(learner, layers=[{"class_name": "Conv9D"}]), (40, 251), 7)


@pytest.mark.parametrize("family, params_in_readme, macs_in_readme", [("vgg7", 1_178_066, 415.4e6),
                                                                      ("vgg7_small", 108_802, 52.3e6)])
def test_vgg_families_by_an_independent_formula(defaults, family, params_in_readme, macs_in_readme):
    """The default and the small set's networks: 3x3 conv-BN-ReLU layers with 2x2 max pools after the 1st,
    3rd and 5th, global average pooling and a dense softmax, counted here from the filter list alone."""
    spec = defaults["learner"]["families"][family]
    model = build_model(dict(defaults["learner"], model=family), (40, 251), 50)
    freq, time, channels, macs, params = 40, 251, 1, 0, 0
    for i, filters in enumerate(spec["filters"], start=1):
        macs += freq * time * filters * 9 * channels
        params += 9 * channels * filters + 4 * filters  # no conv bias; batch norm: gamma, beta, mean, variance
        channels = filters
        if i in spec["pools"]:
            freq, time = freq // 2, time // 2
    macs += channels * 50
    params += channels * 50 + 50
    report = keras_size_report(model)["total"]
    assert report["macs"] == macs and model.count_params() == params == params_in_readme
    assert abs(macs - macs_in_readme) < 0.05e6  # the README's Models table


def test_cnn3_macs_and_dcase_size_by_hand(defaults):
    model = build_model(defaults["learner"], (40, 251), 50)
    report = keras_size_report(model)
    # conv: output positions x out channels x (7*7*in channels); dense: in x out
    conv1 = 40 * 251 * 16 * 49 * 1
    conv2 = 40 * 251 * 16 * 49 * 16
    conv3 = 8 * 50 * 32 * 49 * 16       # after the (5, 5) pool: 40/5 x 251//5
    dense1 = (2 * 1 * 32) * 100         # after the (4, rest of time) pool
    dense2 = 100 * 50
    assert report["total"]["macs"] == conv1 + conv2 + conv3 + dense1 + dense2
    params = model.count_params()
    assert report["total"]["params"] == params
    nonzero = sum(int(np.count_nonzero(w)) for w in model.get_weights())
    assert report["total"]["nonzero"] == nonzero
    assert report["total"]["bytes"] == 4 * nonzero == report["total"]["bytes_float32"]
    assert report["total"]["bytes_float16"] == 2 * nonzero
    assert not report["fits_dcase_macs"]
    assert DTYPE_BYTES["int8"] == 1


def seed_family(defaults, family, n_classes=10, frames=251):
    return build_model(dict(defaults["learner"], model=family), (40, frames), n_classes)


def kinds(model):
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize("family", ["cnn8_avg", "resnet", "crnn_att", "lstm", "kumar"])
def test_seed_families_give_probabilities_and_learn_a_step(defaults, family):
    import keras
    keras.utils.set_random_seed(0)  # unseeded, the LSTM's 8 steps on random data did not always lower the loss
    model = seed_family(defaults, family)
    assert model.output_shape == (None, 10)
    x = np.random.default_rng(0).normal(size=(4, 40, 251, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(x)).sum(axis=1), 1.0, rtol=1e-5)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    y = np.eye(10, dtype=np.float32)[[0, 1, 2, 3]]
    losses = [float(model.train_on_batch(x, y)) for _ in range(8)]  # training mode: BN on batch statistics
    assert losses[-1] < losses[0]


def test_seed_family_structures(defaults):
    cnn8 = seed_family(defaults, "cnn8_avg")
    convs = [l for l in cnn8.layers if type(l).__name__ == "Conv2D"]
    assert len(convs) == 8 and [l.strides[0] for l in convs] == [1, 1, 2, 1, 2, 1, 2, 1]
    assert "MaxPooling2D" not in kinds(cnn8) and "GlobalAveragePooling2D" in kinds(cnn8)
    resnet = seed_family(defaults, "resnet")
    assert kinds(resnet).count("Add") == 8  # 4 stages x 2 basic blocks
    kumar = seed_family(defaults, "kumar", n_classes=7)
    assert [l.filters for l in kumar.layers if type(l).__name__ == "Conv2D"] == \
        [16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512, 1024, 7]
    crnn = seed_family(defaults, "crnn_att")
    assert "Bidirectional" in kinds(crnn) and "Dot" in kinds(crnn)
    assert kinds(seed_family(defaults, "lstm")).count("LSTM") == 1


def test_recurrent_macs_by_hand(defaults):
    lstm = seed_family(defaults, "lstm", n_classes=50)
    spec = defaults["learner"]["families"]["lstm"]
    units, dense = spec["units"], spec["dense_units"]
    expected = 251 * 4 * units * (40 + units) + units * dense + dense * 50
    assert keras_size_report(lstm)["total"]["macs"] == expected


def test_unknown_family_type_is_named(defaults):
    learner = dict(defaults["learner"], model="odd", families={"odd": {"type": "transformer"}})
    with pytest.raises(UserError, match="learner.families.odd.type is 'transformer'"):
        build_model(learner, (40, 251), 5)
    learner = dict(defaults["learner"], model="odd", families={"odd": {"type": "resnet", "filters": [8]}})
    with pytest.raises(UserError, match="learner.families.odd .type resnet. has no setting 'stem_filters'"):
        build_model(learner, (40, 251), 5)
