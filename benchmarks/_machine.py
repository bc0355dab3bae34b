"""Where a benchmark's numbers came from: the machine, its load and the packages' versions."""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata

#: the packages every benchmark records (absent ones as None)
PACKAGES = ("minstab", "jax", "jaxlib", "numpy", "scipy", "optax")


def machine(packages=PACKAGES) -> dict:
    """Platform, processor, cores, load average, Python, JAX backend and device, versions, date."""
    import jax

    versions = {}
    for pkg in dict.fromkeys(packages):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    dev = jax.devices()[0]
    return dict(
        platform=platform.platform(), processor=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(), load_average=list(os.getloadavg()),
        python=platform.python_version(), backend=jax.default_backend(),
        device=getattr(dev, "device_kind", str(dev)), num_devices=jax.device_count(),
        versions=versions, date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )  # fmt: skip
