"""Orchestration around the DVC stages: Prefect flows and alerts, artifacts, promotion and the model
registry, the retrain flow's workspace lock and the Table 1 experiment queue."""
