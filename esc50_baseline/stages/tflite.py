"""The TFLite stages, run after the float model's: convert each fold's model to every configured format,
test each with LiteRT exactly like the float model, evaluate, and compare the formats side by side."""
import os

import numpy as np

from .. import atomic, results_io
from ..evaluation import metrics, tables, test_time
from ..data.dataset import FINAL, fold_seed, fold_title
from ..tflite.formats import RAW_AUDIO_FORMATS
from .common import need, predictions_cached, section, stale, write_fold_predictions
from .evaluation import do_evaluation
from ..tflite.latency import keras_predict_one, latency_ms

COMPARISON_COLUMNS = ["fold", "format", "file_bytes", "size_bytes", "accuracy", "logloss", "agreement", "latency_ms",
                      "twin_agreement"]
MICRO_COLUMNS = ["fold", "size_bytes", "arena_bytes", "clips", "max_step_difference", "agreement", "package"]


# What a final model is always converted to, besides tflite.formats: what --predict_format and a device need.
FINAL_FORMATS = ("float32", "int8", "raw_int8")


def formats(ctx):
    chosen = list(ctx.params["tflite"]["formats"])  # checked with the other settings (config.check_ranges)
    if ctx.folds == [FINAL]:
        chosen += [f for f in FINAL_FORMATS if f not in chosen]
    return chosen


def do_tflite_conversion(ctx):
    section("TFLite conversion")
    from ..models import model_files
    from ..tflite.convert import convert, without_names
    from ..tflite.raw_audio import convert_raw
    from ..tflite.run import model_problem
    results_io.atomic_write_text(ctx.labels_path(), "".join(label + "\n" for label in ctx.dataset.labels))
    for fold in ctx.folds:
        model_path = need(ctx.model_path(fold), "learning")
        todo = [f for f in formats(ctx) if ctx.overwrite or stale(ctx.tflite_path(fold, f), model_path)
                or model_problem(ctx.tflite_path(fold, f), raw_audio=f in RAW_AUDIO_FORMATS)]
        if not todo:
            print(f"  {fold_title(fold)}: converted models cached")
            continue
        model = model_files.as_float32(model_files.load_model(model_path))
        normalizer = ctx.normalizer(fold)
        # the same clips calibrate the int8 network of both kinds: their features, or their samples (raw_int8)
        chosen = calibration_clips(ctx, fold)
        representative = normalizer(ctx.features(chosen))
        strip = ctx.params["tflite"]["strip_strings"]
        for fmt in todo:
            path = ctx.tflite_path(fold, fmt)
            if fmt in RAW_AUDIO_FORMATS:
                samples = model_inputs(ctx, fold, chosen)(fmt)[0] if fmt == "raw_int8" else None
                data = convert_raw(model, fmt, extractor(ctx), normalizer, samples)
                atomic.write_bytes(path, without_names(data) if strip else data)
            else:
                atomic.write_bytes(path, convert(model, fmt, representative, strip))
            print(f"  {fold_title(fold)}: {fmt:<13} {os.path.getsize(path):>9,} bytes -> {path}")


def calibration_clips(ctx, fold):
    """The clips that calibrate a fold's full-integer model: a draw of tflite.representative_samples of the clips
    its network trained on (never its validation or test clips), the same for every int8 format."""
    from ..tflite.convert import representative_sample
    train = ctx.split(fold)[0]
    index = representative_sample(np.arange(len(train)), ctx.params["tflite"]["representative_samples"],
                                  fold_seed(ctx.params["general"]["seed"], fold))
    return [train[i] for i in index]


def extractor(ctx):
    from ..features.extraction import LogMel
    return LogMel(ctx.settings)


def model_inputs(ctx, fold, clips):
    """What each kind of model takes for these clips, made when first asked for: `inputs(fmt)` -> (inputs, how
    test_time.averaged shifts them): the fold's normalised features, or (raw-audio formats) the clips' samples,
    whose features the model rolls itself. Every format of a kind shares one copy."""
    made = {}

    def inputs(fmt):
        raw = fmt in RAW_AUDIO_FORMATS
        if raw not in made:
            if raw:
                from ..data.audio import read_clip
                s = ctx.settings
                made[raw] = np.stack([read_clip(ctx.dataset.audio_path(c), s.fs, s.n_samples) for c in clips]), {
                    "shift_inside": True}
            else:
                made[raw] = ctx.normalizer(fold)(ctx.features(clips)), {}
        return made[raw]
    return inputs


def checked_clips(ctx, fold):
    """(clips, what they are) on which a fold's converted model is checked against another runtime: its test clips,
    or for a final model, which has none, the clips that calibrated it."""
    if fold == FINAL:
        return calibration_clips(ctx, fold), "calibration"
    return ctx.dataset.test(fold), "test"


def do_tflite_testing(ctx):
    section("TFLite testing")
    from ..tflite.run import TFLiteModel
    for fold in ctx.folds:
        test = ctx.dataset.test(fold)
        inputs = model_inputs(ctx, fold, test)
        for fmt in formats(ctx):
            model_path = need(ctx.tflite_path(fold, fmt), "tflite_conversion")
            out = ctx.predictions_path(fold, fmt)
            if predictions_cached(ctx, out, fold, model_path):
                print(f"  {fold_title(fold)}: {fmt} predictions cached")
                continue
            model = TFLiteModel(model_path, ctx.params["tflite"]["num_threads"])
            x, roll = inputs(fmt)
            probabilities = test_time.averaged(lambda v, shift=0: model.predict(v, shift)[0], x,
                                               ctx.params["testing"]["time_shifts"], **roll)
            write_fold_predictions(ctx, out, test, probabilities)
            print(f"  {fold_title(fold)}: {fmt:<13} {len(test)} clips -> {out}")


def evaluate_formats(ctx, title_suffix=""):
    """The DCASE tables of the float model's predictions and of every TFLite format's: {format: result}."""
    show = ctx.params["tflite"]["print_tables"]
    if not show:
        section(f"Evaluation of every format{title_suffix}")
    results = {"keras": do_evaluation(ctx, title=f"Evaluation: keras (float model){title_suffix}", show=show)}
    for fmt in formats(ctx):
        results[fmt] = do_evaluation(ctx, fmt, title=f"Evaluation: TFLite {fmt}{title_suffix}", show=show)
    return results


def do_tflite_evaluation(ctx):
    """DCASE tables for every format, then the comparison table (printed and as tflite_comparison.csv)."""
    from ..models import model_files
    from ..models.complexity import keras_size_report
    from ..tflite.run import TFLiteModel
    from ..tflite.size import tflite_size_report
    results = evaluate_formats(ctx)
    keras_result = results["keras"]
    rows = []
    count = ctx.params["tflite"]["latency_clips"]
    for fold in ctx.folds:
        inputs = model_inputs(ctx, fold, ctx.dataset.test(fold)[:count])
        keras_path = ctx.model_path(fold)
        model = model_files.load_model(keras_path)
        keras_predicted = keras_result["per_fold"][fold][1].argmax(axis=1)
        for fmt, result in results.items():
            true, probabilities = result["per_fold"][fold]
            x = inputs(fmt)[0]  # keras: the features, as every feature format
            if fmt == "keras":
                path, size = keras_path, keras_size_report(model)["total"]["bytes"]
                predict_one = keras_predict_one(model)
            else:
                path = ctx.tflite_path(fold, fmt)
                size = tflite_size_report(path)["total"]["bytes"]
                predict_one = TFLiteModel(path, ctx.params["tflite"]["num_threads"]).predict_one
            rows.append({"fold": fold, "format": fmt, "file_bytes": os.path.getsize(path), "size_bytes": size,
                         "accuracy": float(np.nanmean(result["fold_class_accuracy"][fold])),
                         "logloss": metrics.log_loss(true, probabilities, result["clip"]),
                         "agreement": float(np.mean(probabilities.argmax(axis=1) == keras_predicted)),
                         "latency_ms": latency_ms(predict_one, x, count),
                         "twin_agreement": twin_agreement(results, fmt, fold)})
    results_io.write_csv(ctx.results_path("tflite_comparison.csv"), COMPARISON_COLUMNS,
                         [[r[c] if not isinstance(r[c], float) else f"{r[c]:.6g}" for c in COMPARISON_COLUMNS]
                          for r in rows])
    print_comparison(ctx, rows, results)
    return rows


def twin(fmt):
    """The feature format a raw-audio format must agree with: raw_int8 -> int8."""
    return fmt[len("raw_"):] if fmt in RAW_AUDIO_FORMATS else None


def twin_agreement(results, fmt, fold):
    """The share of test clips a raw-audio model gives the class its feature twin gives (NaN: no twin run)."""
    if twin(fmt) not in results:
        return float("nan")
    return float(np.mean(results[fmt]["per_fold"][fold][1].argmax(axis=1)
                         == results[twin(fmt)]["per_fold"][fold][1].argmax(axis=1)))


def print_comparison(ctx, rows, results):
    section(f"TFLite comparison: set {ctx.params['set_id']}, fold(s) {', '.join(map(str, ctx.folds))}")
    print(f"   {'Format':<13} | {'File bytes':>10} | {'DCASE size':>10} | {'Accuracy':>8} | {'Logloss':>7} | "
          f"{'Agreement':>9} | {'Latency':>10}")
    print("   " + "-" * 87)
    for fmt, result in results.items():
        mine = [r for r in rows if r["format"] == fmt]
        mean = lambda key: float(np.mean([r[key] for r in mine]))
        agreement = np.mean([r["agreement"] for r in mine])
        print(f"   {fmt:<13} | {mean('file_bytes'):>10,.0f} | {mean('size_bytes') / 1024:>7.1f} KB | "
              f"{tables.percent(result['overall_accuracy']):>7}% | {result['overall_logloss']:>7.3f} | "
              f"{100 * agreement:>8.1f}% | {mean('latency_ms'):>7.2f} ms")
    print("   (sizes and latency: mean over folds; latency: batch 1, one core, raw_* including the front end; "
          "agreement: same class as keras)")
    for fmt in [f for f in results if twin(f) in results]:
        mine = [r["twin_agreement"] for r in rows if r["format"] == fmt]
        points = 100 * (results[fmt]["overall_accuracy"] - results[twin(fmt)]["overall_accuracy"])
        print(f"   {fmt} against {twin(fmt)} on features computed in Python: the same class for "
              f"{100 * np.mean(mine):.1f} % of the clips, accuracy {points:+.1f} points")


def do_tflite_micro(ctx):
    """Each fold's full-integer model in TensorFlow Lite Micro's own interpreter: its outputs on the test clips
    against LiteRT's, the tensor arena it allocates, and a package for a device (micro.py)."""
    section("Microcontroller package (TensorFlow Lite Micro)")
    if "int8" not in formats(ctx):
        print("  Skipped: tflite.formats has no int8 (full-integer) model")
        return []
    from ..tflite.micro import unavailable_here
    if unavailable_here():
        print(f"  Skipped: {unavailable_here()}")
        return []
    from ..tflite.micro import SRAM_BYTES, MicroModel, compare_with_litert, settings_header, write_package
    from ..tflite.run import TFLiteModel
    from ..tflite.size import tflite_size_report
    rows = []
    for fold in ctx.folds:
        model_path = need(ctx.tflite_path(fold, "int8"), "tflite_conversion")
        size = tflite_size_report(model_path)["total"]["bytes"]  # the weights in flash, by DCASE's count
        micro, litert = MicroModel(model_path), TFLiteModel(model_path, reference_kernels=True)
        clips, kind = checked_clips(ctx, fold)
        check = compare_with_litert(micro, litert, model_inputs(ctx, fold, clips)("int8")[0])
        header = settings_header(extractor(ctx), ctx.normalizer(fold), litert.input["quantization"], ctx.dataset.labels,
                                 micro.arena_bytes)
        package = write_package(ctx.micro_package_dir(fold), model_path, header)
        rows.append(dict(fold=fold, size_bytes=size, arena_bytes=micro.arena_bytes, package=package, **check))
        fits = "fits" if micro.arena_bytes <= SRAM_BYTES else "does not fit"
        print(f"  {fold_title(fold)}: DCASE size {size / 1024:.1f} KB, tensor arena {micro.arena_bytes:,} bytes "
              f"({micro.arena_bytes / 1024:.1f} KB, {fits} in {SRAM_BYTES // 1024} KB of SRAM); on {check['clips']} "
              f"{kind} clips the same class as LiteRT for "
              f"{100 * check['agreement']:.1f} %, outputs at most {check['max_step_difference']} step(s) apart "
              "(LiteRT's reference kernels)")
        print(f"          package -> {package}")
    results_io.write_csv(ctx.results_path("tflite_micro.csv"), MICRO_COLUMNS,
                         [[r[c] for c in MICRO_COLUMNS] for r in rows])
    return rows
