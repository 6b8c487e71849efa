"""vaelab: the helper library of the open course on Variational Autoencoders.

Everything in this package ships to students: data loading, device and seed
helpers, plotting, widgets, training loops and the self-check harness. It never
contains a reference solution.
"""
import os

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core laptop or hub, spinning threads made
# training 10-20 times slower. Read once, when torch loads, so it must be set before that.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .checks import check, needs
from .data import binarize, load_mnist
from .runtime import autograding, configure_threads, cpu_budget, get_device, pick, progress, seed_everything

configure_threads()  # threads follow the CPU quota and affinity, not the visible core count

__all__ = ["check", "needs", "load_mnist", "binarize", "get_device", "seed_everything",
           "progress", "autograding", "pick", "cpu_budget", "configure_threads"]
__version__ = "0.1.0"
