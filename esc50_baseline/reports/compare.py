"""--compare: two trained sets' (or TFLite formats') test predictions, clip by clip, on the folds they share,
with McNemar's exact test."""
import dataclasses
import os

from .. import config
from ..errors import UserError
from ..run.context import KERAS
from ..run.setup import prepare_run


def compare(parameters, params, options):
    """Compare `options.compare`'s two sides (one side: against the set of `params`) on their common folds."""
    from ..evaluation.comparison import class_differences, comparison_table, paired_folds
    from ..stages.common import load_predictions
    specs = options.compare if len(options.compare) != 1 else [params["set_id"]] + options.compare
    if len(specs) != 2:
        raise UserError(f"--compare takes one set (compared with --set) or two (A,B), each SET or SET:FORMAT; "
                        f"it got {len(specs)}: {','.join(specs)}.")
    sides = [_comparison_side(parameters, spec, options) for spec in specs]
    folds = [f for f in sides[0][1].folds if f in sides[1][1].folds]
    if not folds:
        raise UserError(f"{specs[0]} and {specs[1]} share no active fold; choose folds both ran with --folds.")
    predictions = []
    for spec, ctx, fmt in sides:
        script = "task_esc50.py" if fmt == KERAS else "task_esc50_tflite.py"
        for fold in folds:
            path = ctx.predictions_path(fold, fmt)
            if not os.path.exists(path):
                raise UserError(f"{spec} has no test predictions for fold {fold} ({path}); run python {script} "
                                f"--set {ctx.params['set_id']} with the same --param and --folds first.")
        predictions.append(load_predictions(dataclasses.replace(ctx, folds=folds), fmt))
    print(f"Comparison on fold(s) {', '.join(map(str, folds))} of {sides[0][1].dataset.root}\n")
    print(comparison_table(specs[0], specs[1], paired_folds(*predictions),
                           class_differences(*predictions, sides[0][1].dataset.labels)))


def _comparison_side(parameters, spec, options):
    """(spec, its run context, the format of its predictions: keras or a TFLite format)."""
    set_id, _, fmt = spec.partition(":")
    if fmt and fmt not in config.TFLITE_FORMATS:
        raise UserError(f"--compare {spec}: {fmt} is no TFLite format; use one of {', '.join(config.TFLITE_FORMATS)}.")
    ctx = prepare_run(parameters, parameters.resolve(set_id, options.param), options, quiet=True, check_audio=False,
                      download=False)
    return spec, ctx, fmt or KERAS
