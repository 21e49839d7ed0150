import os

import pytest

from conftest import ROOT
from esc50_baseline import config
from esc50_baseline.errors import UserError

YAML = os.path.join(ROOT, "task_esc50.yaml")


def write(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return str(path)


def test_shipped_sets_resolve():
    p = config.Parameters(YAML)
    assert {"cnn3", "cnn4", "cnn5", "quick", "vgg7", "vgg7_small", "resnet", "cnn8_avg", "crnn_att", "lstm",
            "kumar"} <= set(p.sets)
    assert p.active_set == "low_complexity_fa"
    cnn3, strong = p.resolve("cnn3"), p.resolve("cnn3_strong")
    assert cnn3["learner"]["augmentation"]["mixup_alpha"] == 0 and cnn3["learner"]["validation_amount"] == 0.2
    assert strong["learner"]["model"] == "cnn3" and strong["learner"]["augmentation"]["waveform"]["copies"] == 4
    assert strong["testing"]["time_shifts"] == p.resolve("vgg7")["testing"]["time_shifts"]
    quick = p.resolve("quick")
    assert quick["general"]["active_folds"] == "last"
    assert quick["feature_extractor"]["n_mels"] == 40  # inherited from defaults
    assert p.resolve("cnn4")["learner"]["model"] == "cnn4"
    assert [m["set_id"] for m in p.members("vgg7_cnn8_avg")] == ["vgg7", "cnn8_avg"]
    # the seed ensemble's members differ in the seed alone
    vgg7, seed1 = p.members("vgg7x2")
    assert (vgg7["general"]["seed"], seed1["general"]["seed"]) == (0, 1)
    assert seed1["learner"] == vgg7["learner"] and seed1["testing"] == vgg7["testing"]


def test_param_override_keeps_types():
    params = config.Parameters(YAML).resolve("cnn3", ["learner.epochs=7", "learner.learning_rate=0.01",
                                                      "general.active_folds=[1, 2]"])
    assert params["learner"]["epochs"] == 7
    assert params["learner"]["learning_rate"] == 0.01
    assert params["general"]["active_folds"] == [1, 2]


def test_levels_in_db_take_fractions():
    """The detector's decibel settings are measured in steps like 4.5 dB: their defaults are floats."""
    params = config.Parameters(YAML).resolve("vgg7", ["detection.activity_db=4.5", "detection.soundscapes.audible_db=1.5"])
    assert (params["detection"]["activity_db"], params["detection"]["soundscapes"]["audible_db"]) == (4.5, 1.5)


def test_unknown_key_names_path_and_nearest_key(tmp_path):
    text = open(YAML).read().replace("      model: cnn4\n", "      modle: cnn4\n", 1)
    with pytest.raises(UserError, match=r"learner\.modle.*did you mean 'learner\.model'"):
        config.Parameters(write(tmp_path, text))


def test_wrong_type_is_rejected(tmp_path):
    text = open(YAML).read().replace("epochs: 20\n", "epochs: many\n")  # in the quick set
    with pytest.raises(UserError, match=r"learner\.epochs.*must be an integer"):
        config.Parameters(write(tmp_path, text))
    with pytest.raises(UserError, match=r"learner\.epochs"):
        config.Parameters(YAML).resolve("cnn3", ["learner.epochs=abc"])


def test_bad_choice_is_rejected():
    with pytest.raises(UserError, match=r"dataset\.subset.*one of: all, esc10"):
        config.Parameters(YAML).resolve("cnn3", ["dataset.subset=esc20"])
    with pytest.raises(UserError, match=r"waveform\.vocoder.*'both'.*one of: separate, joint"):
        config.Parameters(YAML).resolve("vgg7", ["learner.augmentation.waveform.vocoder=both"])
    with pytest.raises(UserError, match=r"mixup_kind.*'power'.*one of: log_mel, between_class"):
        config.Parameters(YAML).resolve("vgg7", ["learner.augmentation.mixup_kind=power"])


def test_syntax_error_gives_line_number(tmp_path):
    with pytest.raises(UserError, match=r"not valid YAML at line 4"):
        config.Parameters(write(tmp_path, "active_set: a\ndefaults:\n  x: 1\n   y: 2\n"))


def test_unknown_set_and_param(tmp_path):
    p = config.Parameters(YAML)
    with pytest.raises(UserError, match=r"Set 'cnn33'.*did you mean 'cnn3'"):
        p.resolve("cnn33")
    with pytest.raises(UserError, match=r"--param learner\.epoch names no setting.*learner\.epochs"):
        p.resolve("cnn3", ["learner.epoch=3"])
    with pytest.raises(UserError, match=r"key\.path=value"):
        p.resolve("cnn3", ["learner.epochs"])


def test_stage_hashes_change_only_downstream_of_the_edit():
    p = config.Parameters(YAML)
    base = p.resolve("cnn3")
    more_epochs = p.resolve("cnn3", ["learner.epochs=5"])
    more_mels = p.resolve("cnn3", ["feature_extractor.n_mels=64"])
    assert config.stage_hash(base, "features") == config.stage_hash(more_epochs, "features")
    assert config.stage_hash(base, "normalization") == config.stage_hash(more_epochs, "normalization")
    assert config.stage_hash(base, "learner") != config.stage_hash(more_epochs, "learner")
    for stage in ("features", "normalization", "learner"):
        assert config.stage_hash(base, stage) != config.stage_hash(more_mels, stage)


def test_verbosity_does_not_invalidate_the_model():
    p = config.Parameters(YAML)
    assert config.stage_hash(p.resolve("cnn3"), "learner") == \
        config.stage_hash(p.resolve("cnn3", ["learner.verbose=0"]), "learner")


def test_a_model_is_hashed_with_its_own_family_only():
    p = config.Parameters(YAML)
    learner = lambda params: config.stage_hash(params, "learner")
    base = p.resolve("cnn3")
    assert learner(base) == learner(p.resolve("cnn3", ["learner.families.vgg7.dropout=0.5"]))  # another family
    assert learner(base) == learner(p.resolve("cnn3", ["learner.families.new_one={type: vgg, filters: [8]}"]))
    assert learner(base) != learner(p.resolve("cnn3", ["learner.families.cnn3.filters=[16, 16, 64]"]))


def test_settings_at_their_neutral_value_leave_the_hash_as_before_they_existed():
    p = config.Parameters(YAML)
    base = p.resolve("cnn3")
    older = p.resolve("cnn3")
    # as a cache made before them saw it
    for key in ("jit_compile", "distillation", "ema_momentum", "ema_refresh_batch_norm"):
        del older["learner"][key]
    for stage in ("learner", "recognizer", "tflite"):
        assert config.stage_hash(base, stage) == config.stage_hash(older, stage)
    student = p.resolve("cnn3", ["learner.distillation.teacher=vgg7"])
    assert config.stage_hash(student, "learner") != config.stage_hash(base, "learner")
    averaged = p.resolve("cnn3", ["learner.ema_momentum=0.999", "learner.monitor.metric=last"])
    last = p.resolve("cnn3", ["learner.monitor.metric=last"])
    assert config.stage_hash(averaged, "learner") != config.stage_hash(last, "learner")
    refreshed = p.resolve("cnn3", ["learner.ema_momentum=0.999", "learner.monitor.metric=last",
                                   "learner.ema_refresh_batch_norm=true"])
    assert config.stage_hash(refreshed, "learner") != config.stage_hash(averaged, "learner")


@pytest.mark.parametrize("added, on", [
    (("steady_background", "steady_background_snr_db"), "steady_background=0.5"),
    (("freq_mixstyle", "freq_mixstyle_alpha"), "freq_mixstyle=0.4"),
    (("filter_augment", "filter_augment_db"), "filter_augment=0.5"),
    (("mixup_kind",), "mixup_kind=between_class")])
def test_a_setting_inside_a_dict_at_its_neutral_value_leaves_the_hash_as_before_it_existed(added, on):
    p = config.Parameters(YAML)
    base = p.resolve("vgg7")
    older = p.resolve("vgg7")
    for key in added:  # a cache made before they existed
        del older["learner"]["augmentation"][key]
    for stage in ("learner", "recognizer", "tflite", "sed"):
        assert config.stage_hash(base, stage) == config.stage_hash(older, stage)
    on = p.resolve("vgg7", [f"learner.augmentation.{on}"])
    assert config.stage_hash(on, "learner") != config.stage_hash(base, "learner")
    assert config.stage_hash(on, "augmented_features") == config.stage_hash(base, "augmented_features")  # on the fly
    # the other settings in that dict are hashed as before
    assert config.stage_hash(p.resolve("vgg7", ["learner.augmentation.mixup_alpha=0.3"]), "learner") != \
        config.stage_hash(base, "learner")


def test_a_setting_two_dicts_deep_at_its_neutral_value_leaves_the_hash_as_before_it_existed():
    p = config.Parameters(YAML)
    base = p.resolve("vgg7")
    older = p.resolve("vgg7")
    del older["learner"]["augmentation"]["waveform"]["vocoder"]  # a cache made before the setting existed
    for stage in ("augmented_features", "learner", "recognizer", "tflite", "sed"):
        assert config.stage_hash(base, stage) == config.stage_hash(older, stage)
    joint = p.resolve("vgg7", ["learner.augmentation.waveform.vocoder=joint"])
    for stage in ("augmented_features", "learner", "recognizer"):  # other copies, so another model
        assert config.stage_hash(joint, stage) != config.stage_hash(base, stage)
    assert config.stage_hash(joint, "features") == config.stage_hash(base, "features")


def test_the_copy_count_is_left_out_of_the_copies_cache_hash_alone():
    p = config.Parameters(YAML)
    four, two = p.resolve("low_complexity"), p.resolve("low_complexity", ["learner.augmentation.waveform.copies=2"])
    assert config.stage_hash(four, "augmented_features") == config.stage_hash(two, "augmented_features")
    for stage in ("learner", "recognizer", "tflite", "sed"):  # the network trains on other copies
        assert config.stage_hash(four, stage) != config.stage_hash(two, stage)
    louder = p.resolve("low_complexity", ["learner.augmentation.waveform.gain_db=3.0"])
    assert config.stage_hash(louder, "augmented_features") != config.stage_hash(four, "augmented_features")


def test_a_teacher_takes_the_students_overrides_but_those_of_its_training():
    """`learner.epochs=400` on the student's command must not retrain its 200-epoch teacher for 400 epochs."""
    p = config.Parameters(YAML)
    overrides = ["learner.distillation.teacher=vgg7", "learner.epochs=400", "learner.families.vgg7.dropout=0.5",
                 "general.seed=3", "path.application=/elsewhere", "general.workers=1"]
    student = p.resolve("low_complexity", overrides)
    teacher, kept = p.teacher(student, overrides)
    assert student["learner"]["epochs"] == 400 and student["general"]["seed"] == 3
    assert teacher == p.resolve("vgg7", ["path.application=/elsewhere", "general.workers=1"])
    assert kept == ["path.application=/elsewhere", "general.workers=1"]


@pytest.mark.parametrize("override, key, must", [
    ("learner.epochs=0", "learner.epochs", "at least 1"),
    ("learner.batch_size=0", "learner.batch_size", "at least 1"),
    ("learner.batch_size=-8", "learner.batch_size", "at least 1"),
    ("learner.learning_rate=-0.001", "learner.learning_rate", "a positive number"),
    ("feature_extractor.fs=0", "feature_extractor.fs", "a positive sample rate"),
    ("feature_extractor.n_mels=0", "feature_extractor.n_mels", "at least 1"),
    ("feature_extractor.n_mels=1026", "feature_extractor.n_mels", "at most 1025"),
    ("feature_extractor.win_length_seconds=0.1", "feature_extractor.win_length_seconds", "at most 0.04644 s"),
    ("feature_extractor.fmax=30000", "feature_extractor.fmax", "at most fs / 2 = 22050 Hz"),
    ("testing.time_shifts=[]", "testing.time_shifts", "a non-empty list"),
    ("testing.time_shifts=[0, 2.5]", "testing.time_shifts", "whole frame counts"),
    ("tflite.formats=[int8, int4]", "tflite.formats", "float32, float16, dynamic_int8, int8"),
    ("tflite.formats=[]", "tflite.formats", "a non-empty list"),
    ("learner.validation_amount=1.0", "learner.validation_amount", "up to \\(not including\\) 1"),
    ("learner.jit_compile=true", "learner.jit_compile", "false while general.deterministic is true"),
    ("learner.ema_momentum=1.0", "learner.ema_momentum", "0 \\(off\\) or a momentum below 1"),
    ("learner.ema_momentum=0.999", "learner.ema_momentum", "0 unless learner.monitor.metric is last"),
    ("learner.ema_refresh_batch_norm=true", "learner.ema_refresh_batch_norm", "false while learner.ema_momentum is 0"),
    ("learner.augmentation.steady_background=1.5", "learner.augmentation.steady_background", "a chance from 0"),
    ("learner.augmentation.steady_background_snr_db=[30, 10]", "learner.augmentation.steady_background_snr_db",
     "\\[lowest, highest\\] in dB"),
])
def test_out_of_range_settings_are_named(override, key, must):
    with pytest.raises(UserError, match=f"^{key} is .* in set 'quick' of .*task_esc50.yaml with --param overrides; "
                                        f"it must be .*{must}"):
        config.Parameters(YAML).resolve("quick", [override])


def test_settings_at_the_edge_of_their_range_are_accepted():
    params = config.Parameters(YAML).resolve("quick", [
        "learner.epochs=1", "learner.batch_size=1", "feature_extractor.n_mels=1025", "testing.time_shifts=[-3]",
        "learner.validation_amount=0", "learner.jit_compile=true", "general.deterministic=false",
        "feature_extractor.fmax=22050"])
    assert params["learner"]["epochs"] == 1 and params["feature_extractor"]["n_mels"] == 1025
