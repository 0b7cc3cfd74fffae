"""`tinyrobust robustness`: adversarial attacks on the deployed model, every adversarial example
run on the target. evaluation.py crafts and evaluates, masking.py checks for gradient masking,
results.py holds the result types, report.py writes JSON / Markdown / HTML, command.py is the command."""
