"""The testing stage: each fold's model classifies the fold's test clips, its scores averaged over the test-time
shifts; the probabilities go to a CSV per fold."""
from ..evaluation import test_time
from .common import need, predictions_cached, section, write_fold_predictions


def do_testing(ctx):
    section("Testing")
    from .. import runtime  # noqa: F401  (quiet TensorFlow start-up)
    from ..models import model_files
    for fold in ctx.folds:
        model_path = need(ctx.model_path(fold), "learning")
        out = ctx.predictions_path(fold)
        if predictions_cached(ctx, out, fold, model_path):
            print(f"  Fold {fold}: predictions cached")
            continue
        model = model_files.load_model(model_path)
        normalizer = ctx.normalizer(fold)
        test = ctx.dataset.test(fold)
        probabilities = test_time.averaged(lambda x: model_files.predict(model, x), normalizer(ctx.features(test)),
                                           ctx.params["testing"]["time_shifts"])
        write_fold_predictions(ctx, out, test, probabilities)
        print(f"  Fold {fold}: {len(test)} clips -> {out}")
