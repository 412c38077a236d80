"""eae.training.seed: one function seeds every generator and puts torch in deterministic mode."""

import subprocess
import sys

import numpy as np
import torch

from eae.training.seed import seed_everything

# A fresh interpreter per case: the deterministic mode is process-wide and inductor, once imported, stays.
PROBE = """
import sys, torch
assert not torch.are_deterministic_algorithms_enabled()  # the default of a fresh interpreter
from eae.training.seed import seed_everything
seed_everything(0, compiled={compiled})
imported = "torch._inductor" in sys.modules
import torch._inductor.config as inductor
print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
      inductor.deterministic, imported)
"""


def test_same_seed_same_numbers():
    draws = []
    for _ in range(2):
        seed_everything(123)
        draws.append((np.random.rand(3), torch.rand(3)))
    assert np.array_equal(draws[0][0], draws[1][0]) and torch.equal(draws[0][1], draws[1][1])


def test_eager_and_compiled_paths_set_the_same_eager_mode():
    """Without ``compiled`` the eager flag is set and inductor is not imported (its own flag then keeps
    its default); with it, ``torch.use_deterministic_algorithms`` sets both. Fails if torch's private
    setter stops doing what the public function does."""
    out = {}
    for compiled in (False, True):
        proc = subprocess.run([sys.executable, "-c", PROBE.format(compiled=compiled)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[compiled] = proc.stdout.split()
    assert out[True] == ["True", "True", "True", "True"]
    assert out[False][:2] == ["True", "True"] and out[False][3] == "False"
