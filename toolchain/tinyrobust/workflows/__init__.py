"""What the commands do: export, validate, robustness, bench, demo, and the board commands."""
