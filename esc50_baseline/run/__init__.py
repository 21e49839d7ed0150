"""The pipeline's run: its context (parameters, dataset, folds, and one path for every cache artifact), how a run
is set up from the parameters and flags, and the folds trained in several processes at once. The stages, the
reports and the task scripts build on it; the toolkits below (data, features, models, training, evaluation,
tflite, detection) never see it."""
