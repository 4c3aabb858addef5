"""Group `evaluation`: eval_report (its own process through Pipes) and the blocking promotion_gate check."""
