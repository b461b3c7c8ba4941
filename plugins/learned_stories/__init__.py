"""story-lm internals: tokenizer, torch model with KV cache and sampling, training, corpus authoring."""
