"""Offline evaluation: ranking metrics, baselines (SASRec and BPR among them), the evaluation run."""
