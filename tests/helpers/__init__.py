"""Test helpers: tiny repositories, stage subprocesses, browser checks and synthetic inputs."""
