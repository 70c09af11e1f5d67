"""The machine a figure was measured on: CPU model, cores, ISA flags that matter, memory, versions, load."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "fma", "neon", "asimd")


def machine_info(packages: tuple[str, ...] = ("numpy", "av", "opencv-python-headless", "torch", "openvino",
                                              "onnxruntime", "executorch")) -> dict:
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    cpu = value.strip()
                elif key.strip() in ("flags", "Features"):
                    flags = set(value.split())
    except OSError:
        pass
    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    versions = {}
    for pkg in packages:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": cpu, "cores": os.cpu_count(), "flags": sorted(f for f in FLAGS_OF_INTEREST if f in flags),
        "memory_gib": mem_gib, "os": platform.platform(), "python": sys.version.split()[0],
        "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None, "versions": versions,
    }
