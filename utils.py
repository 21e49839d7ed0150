"""What task_esc50.py and task_esc50_tflite.py share: the command-line flags, the app wrapper that turns a user's
mistake into one sentence (exit 2) and a signal into a clean stop, and the dispatch of the flags that answer
without running a flow (--show_sets, --show_results, --compare, --predict, --detect).

Imports stay light here (no TensorFlow, no librosa) so that --help and --show_sets answer at once.
"""
import os
import signal
import sys

from absl import app, flags

from esc50_baseline import config, interrupts
from esc50_baseline.errors import UserError

HERE = os.path.dirname(os.path.abspath(__file__))


def define_flags():
    flags.DEFINE_string("set", None, "Parameter set to run (default: active_set in the YAML).")
    flags.DEFINE_list("folds", None, "Active folds as the csv names them, e.g. 1,3 (default: general.active_folds).")
    flags.DEFINE_string("dataset_path", None, "An existing ESC-50-layout folder (audio/ + meta/esc50.csv).")
    flags.DEFINE_boolean("final", False, "Train the set's final model on every clip of the dataset (no fold is tested: "
                         "its accuracy is the set's cross-validation figure) and convert it to TFLite; --predict and "
                         "--detect use it from then on.")
    flags.DEFINE_boolean("overwrite", False, "Recompute every stage, ignoring cached results.")
    flags.DEFINE_boolean("show_sets", False, "List the parameter sets and exit.")
    flags.DEFINE_boolean("show_results", False, "List every evaluated set, one run a set (its settings in the YAML, "
                         "else its newest; with --set, every run of that set), with its accuracy, log loss and the "
                         "settings it was run with where they differ from the YAML.")
    flags.DEFINE_list("compare", None, "Compare two trained sets on the test clips they share, fold by fold, with "
                      "McNemar's exact test: OTHER (against --set) or A,B; a side SET:FORMAT is a TFLite format "
                      "of the set (e.g. low_complexity:int8).")
    flags.DEFINE_multi_string("param", [], "Override a YAML setting: key.path=value (repeatable).")
    flags.DEFINE_string("params_file", os.path.join(HERE, "task_esc50.yaml"), "The parameter file.")
    flags.DEFINE_string("predict", None, "Classify an audio file, or every audio file in a folder, with the set's "
                        "final model (else its fold models averaged, else the model shipped for it), then exit; - "
                        "reads raw 16-bit PCM from standard input and prints a label a window as it arrives.")
    flags.DEFINE_boolean("json", False, "With --predict: print JSON instead of a table.")
    flags.DEFINE_integer("top_k", 3, "With --predict: how many labels to show per file.", lower_bound=1)
    flags.DEFINE_boolean("windows", False, "With --predict: also show the scores of every 5 s window.")
    flags.DEFINE_string("detect", None, "Detect sound events in an audio file of any length, or in every audio file "
                        "in a folder, with the trained set; write their events and score curves, then exit.")
    flags.DEFINE_string("detect_output", "detections", "With --detect: the folder for detections.tsv and the figures.")
    flags.DEFINE_integer("rate", 16000, "With --predict -: the sample rate of the raw 16-bit PCM on standard input.",
                         lower_bound=1)
    flags.DEFINE_integer("channels", 1, "With --predict -: the channel count of that PCM (mixed to mono).",
                         lower_bound=1)
    flags.DEFINE_float("window_seconds", None, "With --predict -: the window classified each time (default: the "
                       "set's clip length; a shorter one is zero-padded).")
    flags.DEFINE_float("hop_seconds", 1.0, "With --predict -: how often a window is classified.")
    flags.DEFINE_enum("predict_format", "keras", ["keras", *config.TFLITE_FORMATS],
                      "With --predict: the Keras models, or the TFLite models of this format (raw_*: the "
                      "models that take samples and compute the features themselves).")
    return flags.FLAGS


def run(main):
    """absl's app.run, with a UserError or a mistyped flag printed as one line (exit 2) instead of a stack
    trace, and SIGTERM handled like Ctrl-C: the run stops between two steps, and what it finished is kept."""
    def guarded(argv):
        interrupts.install()
        try:
            result = main(argv)
            interrupts.check()  # a signal that a finalizer swallowed still ends the run as interrupted
            return result
        except UserError as e:
            print(f"Error: {e}", file=sys.stderr)
            sys.exit(2)
        except BrokenPipeError:  # the output went to a pipe that closed early (| head): nothing more to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except KeyboardInterrupt as e:
            print("\nInterrupted; finished work is cached, so the same command continues from there.",
                  file=sys.stderr)
            interrupted_exit(128 + (e.args[0] if e.args else signal.SIGINT))
    app.run(guarded, flags_parser=parse_flags)


def interrupted_exit(status):
    """Exit at once, without the interpreter's teardown: everything finished is on disk already (each
    file is written whole, then renamed), and TensorFlow's teardown of an interrupted training waits for
    its input pipeline's batches in flight, which took 12-44 s on a busy core."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


HELP = ("--help", "-h", "-?", "--helpshort", "--helpfull")


def parse_flags(argv):
    if any(arg in HELP for arg in argv[1:]):  # absl's own help exits with status 1; asking for help is no error
        app.usage(shorthelp="--helpfull" not in argv, writeto_stdout=True, exitcode=0)
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        print(f"Error: {e}; run with --help to see the flags.", file=sys.stderr)
        sys.exit(2)


def start(FLAGS):
    """The run context of the set to run, or None when a --show_*, --compare, --predict or --detect flag has
    already answered."""
    from esc50_baseline.run import setup
    parameters, params = setup.load_parameters(FLAGS)
    if FLAGS.show_sets:
        from esc50_baseline.reports.sets import show_sets
        return show_sets(parameters, FLAGS.param)
    if FLAGS.show_results:
        from esc50_baseline.reports.results import show_results
        return show_results(params, parameters, FLAGS.set, FLAGS.param)
    if FLAGS.compare:
        from esc50_baseline.reports.compare import compare
        return compare(parameters, params, FLAGS)
    if FLAGS.predict:
        return predict(parameters, params, FLAGS)
    if FLAGS.detect:
        return detect(parameters, params, FLAGS)
    ctx = setup.prepare_run(parameters, params, FLAGS)
    from esc50_baseline.run import fold_processes
    fold_processes.run(ctx)  # general.fold_processes > 1: the folds trained side by side, then all found cached
    return ctx


def predict(parameters, params, FLAGS):
    from esc50_baseline.run.shipped import prediction_context
    from esc50_baseline.stages import predict as prediction
    if FLAGS.predict == "-":
        ctx, folds, answered_by = prediction_context(parameters, params, FLAGS, FLAGS.predict_format)
        prediction.predict_stream(ctx, sys.stdin.buffer, FLAGS.rate, FLAGS.channels, FLAGS.window_seconds,
                                  FLAGS.hop_seconds, FLAGS.predict_format, folds, answered_by, FLAGS.top_k, FLAGS.json)
        return
    paths = prediction.find_audio(FLAGS.predict)
    ctx, folds, answered_by = prediction_context(parameters, params, FLAGS, FLAGS.predict_format)
    result = prediction.predict_files(ctx, paths, FLAGS.predict_format, FLAGS.windows, folds, answered_by)
    print(prediction.as_json(result, FLAGS.top_k) if FLAGS.json else prediction.as_table(result, FLAGS.top_k))
    if all("error" in entry for entry in result["files"]):
        raise UserError(f"None of the {len(paths)} file(s) given to --predict could be read.")


def detect(parameters, params, FLAGS):
    from esc50_baseline.run.shipped import prediction_context
    from esc50_baseline.stages.detect import check_output, detect_files
    from esc50_baseline.stages.predict import find_audio
    paths = find_audio(FLAGS.detect, flag="--detect")
    check_output(FLAGS.detect_output)  # before the models are looked for: the mistake the user can fix at once
    ctx, folds, answered_by = prediction_context(parameters, params, FLAGS, "keras")
    print(detect_files(ctx, paths, FLAGS.detect_output, folds, answered_by))
