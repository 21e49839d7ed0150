"""Detection scores: sed_eval's segment-based and event-based metrics (DCASE's), and the polyphonic sound
detection score (PSDS, DCASE task 4's official metric since 2020) from psds-eval.

Event lists are {filename: [(onset, offset, label)]}; every file of the references is scored, also those
with no events (an empty detector's misses count).
"""
import contextlib

import numpy as np

SEGMENT_SECONDS = 1.0
EVENT_COLLAR_SECONDS = 0.2          # onset collar; the offset's is the larger of this and 20 % of the length
EVENT_OFFSET_SHARE = 0.2
# PSDS scenario 1 of DCASE 2021 task 4: detection tolerance and ground-truth intersection criteria 0.7,
# no cross-trigger weight, alpha_st 1, eFPR up to 100 per hour
PSDS1 = {"dtc_threshold": 0.7, "gtc_threshold": 0.7, "cttc_threshold": 0.3, "alpha_ct": 0.0, "alpha_st": 1.0,
         "max_efpr": 100}


def _dicts(name, events):
    return [{"filename": name, "onset": on, "offset": off, "event_label": label} for on, off, label in events]


def sed_eval_metrics(references, estimates, durations, labels):
    """(segment-based, event-based) sed_eval metric objects, every file evaluated over its whole length."""
    import sed_eval
    segment = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=list(labels), time_resolution=SEGMENT_SECONDS)
    event = sed_eval.sound_event.EventBasedMetrics(event_label_list=list(labels), t_collar=EVENT_COLLAR_SECONDS,
                                                   percentage_of_length=EVENT_OFFSET_SHARE)
    for name in references:
        reference, estimate = _dicts(name, references[name]), _dicts(name, estimates.get(name, []))
        segment.evaluate(reference, estimate, evaluated_length_seconds=durations[name])
        event.evaluate(reference, estimate)
    return segment, event


@contextlib.contextmanager
def _quiet():
    """sed_eval averages empty slices (a class with no events: NaN, made 0 below); psds-eval warns of each
    operating point that repeats another (a threshold change that changes no event), and pandas of its calls."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", message="A similar operating point exists", category=UserWarning)
        warnings.filterwarnings("ignore", message="The inplace keyword")  # pandas 3.1 on psds-eval's calls
        yield


def summary(segment, event):
    """The overall figures: F1 and error rate of both, micro-averaged (as sed_eval's overall), and the event-based
    class-wise mean F1 (macro)."""
    with _quiet():
        seg, evt = segment.results_overall_metrics(), event.results_overall_metrics()
        macro = event.results_class_wise_average_metrics()["f_measure"]["f_measure"]
    return {"segment_f1": _number(seg["f_measure"]["f_measure"]), "segment_error_rate": _number(seg["error_rate"]["error_rate"]),
            "event_f1": _number(evt["f_measure"]["f_measure"]), "event_error_rate": _number(evt["error_rate"]["error_rate"]),
            "event_f1_macro": _number(macro)}


def class_wise(segment, event, labels):
    """{label: {segment_f1, event_f1, event_error_rate (None without references), references}} per class."""
    with _quiet():
        seg, evt = segment.results_class_wise_metrics(), event.results_class_wise_metrics()
    return {label: {"segment_f1": _number(seg[label]["f_measure"]["f_measure"]),
                    "event_f1": _number(evt[label]["f_measure"]["f_measure"]),
                    # a class without reference events has no error rate (sed_eval divides by a tiny number)
                    "event_error_rate": (_number(evt[label]["error_rate"]["error_rate"])
                                         if evt[label]["count"]["Nref"] else None),
                    "references": int(evt[label]["count"]["Nref"])} for label in labels}


def _number(value):
    """sed_eval gives NaN where a figure is undefined (a class with no reference and no output): 0 here, so
    that the tables and the YAML hold numbers."""
    value = float(value)
    return 0.0 if np.isnan(value) else value


def psds(references, detections_per_threshold, durations, scenario=PSDS1):
    """The PSDS of the operating points (one event list per decision threshold) against the references."""
    import pandas as pd
    columns = ["filename", "onset", "offset", "event_label"]
    truth = pd.DataFrame([[n, on, off, label] for n, events in references.items() for on, off, label in events],
                         columns=columns)
    metadata = pd.DataFrame(sorted(durations.items()), columns=["filename", "duration"])
    criteria = {k: scenario[k] for k in ("dtc_threshold", "gtc_threshold", "cttc_threshold")}
    with _psds_eval_on_this_pandas_and_numpy() as PSDSEval:
        evaluator = PSDSEval(ground_truth=truth, metadata=metadata, **criteria)
        for detections in detections_per_threshold:
            evaluator.add_operating_point(pd.DataFrame(
                [[n, on, off, label] for n, events in detections.items() for on, off, label in events], columns=columns))
        return float(evaluator.psds(alpha_ct=scenario["alpha_ct"], alpha_st=scenario["alpha_st"],
                                    max_efpr=scenario["max_efpr"]).value)


@contextlib.contextmanager
def _psds_eval_on_this_pandas_and_numpy():
    """psds-eval 0.5.3 (its last release) calls two things that pandas 3 and NumPy 2 removed: DataFrame.fillna(
    method='ffill') in its ROC step curve, and int() of a one-element 2-D array in its area under the curve. For
    the length of the call, fillna(method=...) is given its old meaning, and the point the area function would
    insert at max_efpr is inserted before it is called (its own rule: the y value of the point before), so that
    it never takes that branch. Nothing else of the computation changes."""
    import pandas as pd
    from psds_eval import PSDSEval

    class Evaluator(PSDSEval):
        @staticmethod
        def _auc(x, y, max_x=None, decreasing_y=False):
            if max_x is not None and max_x not in x:
                i = int(np.searchsorted(x, max_x, side="right"))
                x, y = np.insert(x, i, max_x), np.insert(y, i, y[i - 1])
            return PSDSEval._auc(x, y, max_x, decreasing_y)

    original = pd.DataFrame.fillna

    def fillna(self, value=None, *, method=None, **kwargs):
        if method in ("ffill", "pad"):
            filled = self.ffill()
            return filled if value is None else original(filled, value, **kwargs)
        return original(self, value, **kwargs)

    pd.DataFrame.fillna = fillna
    try:
        with _quiet():
            yield Evaluator
    finally:
        pd.DataFrame.fillna = original
