"""DisenLoRA (paper section 4.2): disentangle training data into clusters, train one LoRA
expert per cluster, compose them per input with a hypernetwork.

Submodules stay import-light on purpose: torch/transformers/peft load only when a function
that needs them runs, so the CLI and TUI can import this package cheaply.

- ``examples``   the training-example JSONL contract and a canonical-solution builder
- ``base``       loading the base model (bf16/fp32 or 4-bit nf4), prompt formatting
- ``embedding``  encoders: MiniLM (offline package) or mean-pooled base-model states
- ``clustering`` cosine k-means (eq. 12), K by silhouette, 2-D projection
- ``config``     dataclass configs for LoRA, training loops, the hypernetwork, Twin and its router
- ``loop``       the resumable training loop (progress, checkpoints, cancel, held-out eval)
- ``tracking``   --report-to: loss, lr and eval metrics to accelerate's trackers (TensorBoard...)
- ``experts``    LoRA experts per cluster (eq. 13) and "SFT on all"
- ``layer``      the composed LoRA layer: dW = sum_k B_k diag(g_k) A_k (eq. 15-18)
- ``composed``   the model part DisenLoRA and Twin share: gating, folding, generation, saving
- ``artifacts``  safetensors + JSON artefacts of DisenLoRA and Twin, and their loader
- ``hypernet``   the input-aware hypernetwork f (eq. 14) and the DisenLoRA model
- ``merge``      static merge baselines through peft's add_weighted_adapter
- ``twin``       Twin-Merging baseline: shared merge + SVD-compressed exclusive experts, routed per input
- ``router``     the Twin-Merging router: an MLP from an input's encoding to cluster weights
"""
