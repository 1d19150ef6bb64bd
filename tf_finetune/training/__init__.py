"""Training: a job's plan, the classifier, the fit, head-only training on cached features, the head
search, checkpoints, distribution, scoring and the job's outputs."""
