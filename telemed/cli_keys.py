"""Placeholder: commands attach to the groups in telemed.cli."""
