"""Orchestration around the DVC stages: Prefect flows and alerts, artifacts, promotion, the guarded
workspace runner and the Table 1 experiment queue."""
