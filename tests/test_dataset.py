import os

import numpy as np
import pytest

from conftest import make_dataset, write_meta
from esc50_baseline.data.dataset import Dataset, select_folds, validation_split
from esc50_baseline.errors import UserError
from esc50_baseline.features.normalization import Normalizer


def test_reads_folds_classes_and_subset(tmp_path):
    root = str(tmp_path / "d")
    make_dataset(root, n_classes=4, n_folds=3, per_fold=2, seconds=0.5)
    ds = Dataset(root)
    assert ds.folds == [1, 2, 3] and ds.labels == ["class_0", "class_1", "class_2", "class_3"]
    assert len(ds.train(2)) == 16 and len(ds.test(2)) == 8
    assert all(c.fold != 2 for c in ds.train(2)) and all(c.fold == 2 for c in ds.test(2))
    esc10 = Dataset(root, subset="esc10")
    assert esc10.labels == ["class_0", "class_2"] and esc10.targets == [0, 2]


@pytest.mark.parametrize("change, message", [
    (lambda rows: [dict(r, target=77, category="x") if i == 0 else r for i, r in enumerate(rows)],
     r"target\(s\) 77 out of range; targets must be 0\.\.49"),
    (lambda rows: [dict(r, target=1) if i == 0 else r for i, r in enumerate(rows)], r"target 1 is both|has targets 1 and 0"),
    (lambda rows: rows + [rows[0]], r"more than once"),
    (lambda rows: [dict(r, fold="") if i == 3 else r for i, r in enumerate(rows)], r"line 5: the fold cell is empty"),
    (lambda rows: [dict(r, target="") if i == 2 else r for i, r in enumerate(rows)], r"line 4: the target cell is empty"),
    (lambda rows: [dict(r, target="3.5") if i == 1 else r for i, r in enumerate(rows)], r"line 3: target is '3\.5', not a whole"),
    (lambda rows: [dict(r, target="two") if i == 1 else r for i, r in enumerate(rows)], r"line 3: target is 'two', not a whole"),
    (lambda rows: [dict(r, fold="a/b") if i == 0 else r for i, r in enumerate(rows)], r"line 2: fold 'a/b' holds a path sep"),
])
def test_bad_metadata_is_named(tmp_path, change, message):
    root = str(tmp_path / "d")
    rows = make_dataset(root, seconds=0.2)
    write_meta(root, change(rows))
    with pytest.raises(UserError, match=message):
        Dataset(root)


def test_missing_column_and_missing_csv(tmp_path):
    root = str(tmp_path / "d")
    rows = make_dataset(root, seconds=0.2)
    write_meta(root, rows, fieldnames=["filename", "fold", "category"])
    with pytest.raises(UserError, match=r"lacks the column\(s\) target"):
        Dataset(root)
    os.remove(os.path.join(root, "meta", "esc50.csv"))
    with pytest.raises(UserError, match=r"esc50\.csv is missing"):
        Dataset(root)


def test_missing_audio_is_listed(tmp_path):
    root = str(tmp_path / "d")
    rows = make_dataset(root, seconds=0.2)
    os.remove(os.path.join(root, "audio", rows[1]["filename"]))
    assert Dataset(root).missing_audio() == [rows[1]["filename"]]


def test_validation_split_is_stratified_and_grouped(tmp_path):
    root = str(tmp_path / "d")
    rows = make_dataset(root, n_classes=5, n_folds=1, per_fold=20, seconds=0.1)
    # two takes per recording: recordings 0/1, 2/3, ... share a src_file
    for i, r in enumerate(rows):
        r["src_file"] = f"{r['target']}-{i // 2}"
    write_meta(root, rows)
    clips = Dataset(root).clips
    train, val = validation_split(clips, 0.2, seed=3)
    assert len(train) + len(val) == len(clips)
    assert not {c.src_file for c in train} & {c.src_file for c in val}
    for target in range(5):
        assert sum(c.target == target for c in val) == 4  # 20 % of 20, in whole pairs
    again_train, again_val = validation_split(clips, 0.2, seed=3)
    assert [c.filename for c in again_val] == [c.filename for c in val]


def test_select_folds():
    assert select_folds([1, 2, 3, 4], "all") == [1, 2, 3, 4]
    assert select_folds([1, 2, 3, 4], "last") == [4]
    assert select_folds([1, 2, 3], [3, 1]) == [1, 3]
    with pytest.raises(UserError, match=r"Fold\(s\) 5 are not in the dataset"):
        select_folds([1, 2, 3, 4], [5])


def test_the_normalization_stage_fits_on_the_fold_s_training_clips_only(tmp_path, defaults):
    """Clips of each fold at another level: the statistics of fold 2 are those of its training clips
    (folds 1 and 3, less the validation clips), not of all clips and not of the test fold."""
    import soundfile as sf
    from esc50_baseline.run.context import RunContext
    from esc50_baseline.stages.features import do_feature_normalization
    from esc50_baseline.features.extraction import FeatureCache, FeatureSettings, extract_to_cache
    root = str(tmp_path / "d")
    rows = make_dataset(root, n_classes=2, n_folds=3, per_fold=3, seconds=5.0)
    for row in rows:  # fold k: k times as loud
        path = os.path.join(root, "audio", row["filename"])
        y, fs = sf.read(path)
        sf.write(path, y * row["fold"] / 3, fs, subtype="FLOAT")
    dataset = Dataset(root)
    params = dict(defaults, general=dict(defaults["general"], seed=0), learner=dict(defaults["learner"], validation_amount=0.2))
    paths = {"features": str(tmp_path / "features"), "normalization": str(tmp_path / "norm")}
    extract_to_cache({c.filename: dataset.audio_path(c) for c in dataset.clips},
                     FeatureSettings.from_params(params["feature_extractor"]), paths["features"], show_progress=False)
    ctx = RunContext(params=params, dataset=dataset, folds=[2], paths=paths)
    do_feature_normalization(ctx)
    train, validation, test = ctx.split(2)
    assert validation and {c.fold for c in train} == {1, 3} and {c.fold for c in test} == {2}
    cache = FeatureCache(paths["features"])
    expected = cache.load_many([c.filename for c in train]).astype(np.float64)
    saved = Normalizer.load(ctx.norm_path(2))
    np.testing.assert_allclose(saved.mean, expected.mean(axis=(0, 2)), rtol=1e-5)
    np.testing.assert_allclose(saved.std, expected.std(axis=(0, 2)), rtol=1e-5)
    everything = cache.load_many([c.filename for c in dataset.clips]).astype(np.float64)
    assert np.abs(saved.mean - everything.mean(axis=(0, 2))).min() > 0.02  # the test fold would shift every band

    # a whole fold held out for validation (SpeechBrain's split, here: train 1, validate 3, test 2)
    held = dict(params, learner=dict(params["learner"], validation_folds=[3]))
    ctx = RunContext(params=held, dataset=dataset, folds=[2],
                            paths=dict(paths, normalization=str(tmp_path / "n2")))
    do_feature_normalization(ctx)
    train, validation, test = ctx.split(2)
    assert [{c.fold for c in part} for part in (train, validation, test)] == [{1}, {3}, {2}]
    assert len(train) + len(validation) == 12
    fold_1 = cache.load_many([c.filename for c in train]).astype(np.float64)
    np.testing.assert_allclose(Normalizer.load(ctx.norm_path(2)).mean, fold_1.mean(axis=(0, 2)), rtol=1e-5)


def test_validation_folds_must_be_in_the_dataset_and_not_tested(tmp_path):
    from esc50_baseline.run import setup
    root = str(tmp_path / "d")
    make_dataset(root, n_classes=2, n_folds=3, per_fold=1, seconds=1.0)
    dataset = Dataset(root)
    setup.check_validation_folds([3], dataset, [1, 2])
    setup.check_validation_folds(["3"], dataset, [2])  # labels as text name the same fold
    with pytest.raises(UserError, match=r"^learner.validation_folds names fold 7, which the dataset does not hold "
                                        r"\(it holds 1, 2, 3\); name one of those.$"):
        setup.check_validation_folds([7], dataset, [1])
    with pytest.raises(UserError, match=r"^Fold 3 is both tested and held out for validation"):
        setup.check_validation_folds([3], dataset, [1, 3])
    with pytest.raises(UserError, match=r"^learner.validation_folds holds out 1, 2, which leaves no fold to train on"):
        setup.check_validation_folds([1, 2], dataset, [3])


def test_normalization_uses_training_folds_only():
    rng = np.random.default_rng(0)
    train = rng.normal(2.0, 3.0, size=(30, 4, 10))
    norm = Normalizer.fit(train)
    np.testing.assert_allclose(norm.mean, train.mean(axis=(0, 2)), rtol=1e-5)
    np.testing.assert_allclose(norm.std, train.std(axis=(0, 2)), rtol=1e-5)
    out = norm(train)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2)), 1, atol=1e-4)


def test_a_constant_band_is_centred_not_divided_by_zero_and_a_quiet_band_is_scaled_up():
    x = np.zeros((5, 3, 8))
    x[:, 0] = 4.0                                                          # constant: std 0
    x[:, 1] = np.random.default_rng(1).normal(0.0, 0.5, size=(5, 8))      # std about 0.5
    x[:, 2] = np.random.default_rng(2).normal(3.0, 2.0, size=(5, 8))
    norm = Normalizer.fit(x)
    assert norm.std[0] == 1.0 and norm.mean[0] == 4.0
    out = norm(x)
    assert np.isfinite(out).all() and (out[:, 0] == 0).all()
    np.testing.assert_allclose(out[:, 1:].std(axis=(0, 2)), 1, atol=1e-4)


def test_esc10_subset_keeps_esc50_targets_and_custom_targets_may_skip(tmp_path):
    root = str(tmp_path / "d")
    rows = make_dataset(root, n_classes=3, seconds=0.1)
    for r in rows:  # an ESC-10-like copy: targets 0, 10, 20
        r["target"] = {0: 0, 1: 10, 2: 20}[r["target"]]
    write_meta(root, rows)
    ds = Dataset(root)
    assert ds.targets == [0, 10, 20] and ds.labels == ["class_0", "class_1", "class_2"]
    one_each = [next(c for c in ds.clips if c.target == t) for t in (20, 0, 10)]
    np.testing.assert_array_equal(ds.target_index(one_each), [2, 0, 1])
    write_meta(root, [dict(r, target=-1, category="minus") if i == 0 else r for i, r in enumerate(rows)])
    with pytest.raises(UserError, match=r"target\(s\) -1 out of range"):
        Dataset(root)
    custom = [{k: v for k, v in r.items() if k != "esc10"} for r in rows]
    write_meta(root, [dict(r, target=r["target"] + 100) for r in custom])
    assert Dataset(root).targets == [100, 110, 120]


@pytest.mark.parametrize("written, labels", [
    (lambda fold: fold + 3, [4, 5]),                   # ESC-50 filtered to folds 4 and 5
    (lambda fold: fold - 1, [0, 1]),                   # numbered from 0
    (lambda fold: f"0{fold}", [1, 2]),                 # leading zeros: still numbers
    (lambda fold: "AB"[fold - 1], ["A", "B"]),         # named folds
    (lambda fold: f"fold {fold}", ["fold 1", "fold 2"]),
])
def test_folds_are_group_labels_as_written(tmp_path, written, labels):
    root = str(tmp_path / "d")
    rows = make_dataset(root, n_classes=2, n_folds=2, per_fold=2, seconds=0.2)
    write_meta(root, [dict(r, fold=written(r["fold"])) for r in rows])
    ds = Dataset(root)
    assert ds.folds == labels
    first = labels[0]
    assert len(ds.test(first)) == 4 and len(ds.train(first)) == 4
    assert {c.filename for c in ds.test(first)} == {r["filename"] for r in rows if r["fold"] == 1}
    assert select_folds(ds.folds, [str(labels[1])]) == [labels[1]]   # --folds gives text
    assert select_folds(ds.folds, "last") == [labels[1]]


def test_fold_seeds_keep_numbers_and_give_names_distinct_stable_seeds():
    from esc50_baseline.data.dataset import fold_seed
    assert fold_seed(0, 4) == 4 and fold_seed(10, 1) == 11   # as before: a numbered fold's results are unchanged
    named = [fold_seed(0, name) for name in ("A", "B", "fold 1")]
    assert len(set(named)) == 3 and named == [fold_seed(0, name) for name in ("A", "B", "fold 1")]


def test_csv_oddities_are_read_as_meant(tmp_path):
    """A byte-order mark, CRLF line ends, extra columns, spaces around cells, a target written 3.0, and file
    names with spaces and non-ASCII characters."""
    root = tmp_path / "d"
    make_dataset(str(root), n_classes=2, n_folds=2, per_fold=1, seconds=0.2)
    lines = ["filename,fold,target,category,notes,src_file",
             "1-100-A-0.wav , 1 ,0.0,dog,first take,100",
             "chien aboie é.wav,1,1,cat,,101",
             "2-102-A-0.wav,2,0,dog,\"quoted, with comma\",102",
             "2-103-A-1.wav,2,1.0,cat,x,103"]
    (root / "meta" / "esc50.csv").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    ds = Dataset(str(root))
    assert [c.filename for c in ds.clips] == ["1-100-A-0.wav", "chien aboie é.wav", "2-102-A-0.wav", "2-103-A-1.wav"]
    assert [c.target for c in ds.clips] == [0, 1, 0, 1] and ds.folds == [1, 2] and ds.labels == ["dog", "cat"]
    assert [c.src_file for c in ds.clips] == ["100", "101", "102", "103"]


def test_header_only_and_non_utf8_csv_are_named(tmp_path):
    root = tmp_path / "d"
    make_dataset(str(root), seconds=0.2)
    meta = root / "meta" / "esc50.csv"
    meta.write_text("filename,fold,target,category\n")
    with pytest.raises(UserError, match="has no rows"):
        Dataset(str(root))
    meta.write_bytes("filename,fold,target,category\nb\xe9b\xe9.wav,1,0,dog\n".encode("latin-1"))
    with pytest.raises(UserError, match="is not UTF-8 text.*save it as UTF-8"):
        Dataset(str(root))
    meta.write_text("filename;fold;target;category\na.wav;1;0;dog\n")
    with pytest.raises(UserError, match=r"lacks the column\(s\) filename, fold, target, category.*'filename;fold"):
        Dataset(str(root))


def test_no_fold_named_is_an_error():
    with pytest.raises(UserError, match="No fold is named"):
        select_folds([1, 2], [])
    with pytest.raises(UserError, match=r"Fold\(s\) 7 are not in the dataset, which holds folds 1, 2"):
        select_folds([1, 2], ["7"])
