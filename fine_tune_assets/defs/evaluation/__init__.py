"""Group `evaluation`: eval_report (its own process through Pipes) and its blocking checks, promotion_gate and
champion_challenger."""
