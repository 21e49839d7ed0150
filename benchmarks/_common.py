"""Shared by the benchmark scripts: the repository on sys.path, the dev clips, the machine's description."""
import argparse
import os
import platform
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dataset_path", required=True,
                   help="ESC-50-layout folder, e.g. the dev clips rebuilt by ../shared/esc50/rebuild.py")
    return p


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def defaults():
    import yaml
    with open(os.path.join(ROOT, "task_esc50.yaml")) as f:
        return yaml.safe_load(f)["defaults"]
