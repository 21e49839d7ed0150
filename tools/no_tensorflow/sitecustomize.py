"""With this folder on PYTHONPATH, TensorFlow and Keras cannot be imported: a small device that has neither, for
the tests and benchmarks of what must run with LiteRT alone (PYTHONPATH=tools/no_tensorflow python ...)."""
import importlib.abc
import sys


class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"{name} is not installed here")


sys.meta_path.insert(0, NoTensorFlow())
