"""The HTML report: its sections, figures, templates and the paper's reference numbers."""
