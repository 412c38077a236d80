"""The training loop, exact data-parallel training, checkpoints, resume state and seeding."""
