"""learner.distribution: mirrored on two logical CPU devices learns as well as one device."""
import subprocess
import sys

from conftest import ROOT

SCRIPT = f"""
import sys
sys.path[:0] = [{ROOT!r}, {ROOT + '/tests'!r}]
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np, tempfile, yaml
from esc50_baseline.models import model_files
from esc50_baseline import runtime
from esc50_baseline.training import trainer
from esc50_baseline.models.builder import build_model
from test_training import separable, small_learner
defaults = yaml.safe_load(open({ROOT + '/task_esc50.yaml'!r}))["defaults"]
learner = dict(small_learner(defaults), epochs=10)  # 1 epoch: 50 %, 4 epochs: 100 %
learner["monitor"] = {{"metric": "val_loss", "initial_delay": 1}}  # val accuracy saturates at 100 % early
rng = np.random.default_rng(0)
x, y = separable(24, 4, rng)
xv, yv = separable(6, 4, rng)
xt, yt = separable(25, 4, np.random.default_rng(9))
for kind in ("none", "mirrored"):
    runtime.setup(0)
    strategy = runtime.distribution_strategy(kind)
    with strategy.scope():
        model = build_model(learner, x.shape[1:], 4)
    with tempfile.TemporaryDirectory() as logs:
        trainer.train_fold(model, x, y, xv, yv, 4, learner, 0, logs, strategy=strategy)
    accuracy = np.mean(model_files.predict(model, xt).argmax(axis=1) == yt)
    print(kind, strategy.num_replicas_in_sync, accuracy)
"""


def test_mirrored_on_two_logical_cpus_matches_single_device():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines()
                 if line.startswith(("none ", "mirrored ")))
    single_replicas, single = lines["none"].split()
    mirrored_replicas, mirrored = lines["mirrored"].split()
    assert (single_replicas, mirrored_replicas) == ("1", "2")
    assert float(single) >= 0.9 and float(mirrored) >= 0.9
    assert abs(float(single) - float(mirrored)) <= 0.05 + 1e-9
