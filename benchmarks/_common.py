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
    """The CPU, its vector units (they decide the precision and speed of training here), cores and Python."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        cpu = names[0] if names else cpu
        flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
    except OSError:
        pass
    units = ("AMX" if "amx_bf16" in flags else "AVX-512 with avx512_bf16, no AMX" if "avx512_bf16" in flags
             else "AVX-512, no AMX" if "avx512f" in flags
             else "AVX2, no AVX-512" if "avx2" in flags else "no AVX2")
    return f"{cpu} ({units}), {os.cpu_count()} cores, Python {platform.python_version()}"


def defaults():
    import yaml
    with open(os.path.join(ROOT, "task_esc50.yaml")) as f:
        return yaml.safe_load(f)["defaults"]
