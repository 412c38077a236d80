"""The networks, the entropy estimator, the training objectives and eval-mode inference."""
