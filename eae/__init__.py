"""Entropic Autoencoder (EAE) library.

Pure functions and modules only: nothing here reads params.yaml, calls DVC or
Prefect, or chooses a device. Importing ``eae`` does not import torch.
"""

__version__ = "0.1.0"
