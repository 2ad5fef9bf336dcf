"""The in-process local provider: transformers causal LMs behind litellm, batched continuously (or dynamically)."""
