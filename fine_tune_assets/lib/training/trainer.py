"""TRL's ``SFTTrainer`` with exact token counts and a label-only loss.

- Token counts: each optimisation micro-step adds the tokens it really saw to the caller's
  ``counter`` (a shared prefix once, or once per row for the "logical" count): tokens/s are exact.
- Label-only loss: TRL's fused LM head scores every position through the LM head on CPU (it
  compacts to label positions only on Triton devices), and with assistant-only labels most
  positions carry no label. ``compute_loss`` projects only the labelled positions (same loss, same
  gradient contract).
- Padding-free batching: SDPA on CPU keeps the flattened rows apart via position_ids, but only
  without a KV cache (``compute_loss`` passes use_cache=False; a hand-written forward on such a
  batch must too, or rows silently attend to each other). On CPU it is about as fast as padding for
  rows of similar length; it saves memory and time when lengths spread.
- Shared prefix (``share_prefix``): batches from ``batching``; ``compute_loss`` runs the prefix once
  per batch, WITH gradients, sharing its keys/values with every row: same tokens at the same
  positions, so the same loss and gradients as the row-by-row path (LoRA dropout aside).
"""

from __future__ import annotations

import functools

from ..models.chat_template import IGNORE_INDEX, TrainingDataError
from ..models.shared_prefix import prefix_cache
from .batching import SharedPrefixBatchSampler, SharedPrefixCollator

# Models whose logits are scaled or soft-capped after the LM head: the label-only loss leaves them to TRL.
_SCALED_HEAD_FIELDS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier",
                       "logits_scaling")


@functools.cache
def counting_sft_trainer_class():
    """``SFTTrainer`` with exact token counts and a label-only loss (built lazily: TRL imports slowly)."""
    import torch
    from accelerate.utils import is_peft_model
    from trl import SFTTrainer

    class CountingSFTTrainer(SFTTrainer):
        """Counts the tokens each optimisation micro-step really saw (exact tokens/s) and computes the
        loss on labelled positions only (see ``compute_loss``)."""

        def __init__(self, *args, counter: dict | None = None, share_prefix: bool = False, **kwargs):
            super().__init__(*args, **kwargs)
            self.counter = counter if counter is not None else {}
            for key in ("trained_tokens", "input_tokens", "logical_input_tokens"):
                self.counter.setdefault(key, 0)
            self.share_prefix = share_prefix
            text_config = self.model.config.get_text_config()
            self.label_only_loss = (
                self.args.loss_type == "nll" and self.compute_loss_func is None and self.label_smoother is None
                and not self.aux_loss_enabled and getattr(self.accelerator, "parallelism_config", None) is None
                and all(getattr(text_config, name, None) in (None, 1, 1.0) for name in _SCALED_HEAD_FIELDS))
            if share_prefix and not self.label_only_loss:
                raise ValueError("share_prefix needs the label-only loss (nll, no custom loss, label smoothing, "
                                 "aux loss, parallelism or scaled LM head)")

        def get_train_dataloader(self):
            """With ``share_prefix``: batches from ``SharedPrefixBatchSampler`` through
            ``SharedPrefixCollator`` (evaluation keeps TRL's collator); else the Trainer's own."""
            if not self.share_prefix:
                return super().get_train_dataloader()
            from torch.utils.data import DataLoader

            dataset = self._remove_unused_columns(self.train_dataset, description="Training")
            self._share_prefix_sampler = SharedPrefixBatchSampler(
                dataset["input_ids"], self.args.per_device_train_batch_size,
                self.args.seed if self.args.data_seed is None else self.args.data_seed)
            loader = DataLoader(dataset, batch_sampler=self._share_prefix_sampler,
                                collate_fn=SharedPrefixCollator(self.processing_class.pad_token_id),
                                num_workers=self.args.dataloader_num_workers,
                                pin_memory=self.args.dataloader_pin_memory)
            return self.accelerator.prepare(loader)

        def _run_epoch(self, *args, **kwargs):
            # On a resume the Trainer skips consumed batches through a wrapper its set_epoch call does not
            # reach: set the sampler's epoch here, before the epoch's iterator is built.
            if self.share_prefix and hasattr(self, "_share_prefix_sampler") and "epoch" in kwargs:
                self._share_prefix_sampler.set_epoch(kwargs["epoch"])
            return super()._run_epoch(*args, **kwargs)

        def training_step(self, model, inputs, num_items_in_batch=None):
            labels = inputs.get("labels")
            if labels is not None:
                trainable = int((labels[..., 1:] != IGNORE_INDEX).sum())
                if trainable == 0:
                    raise TrainingDataError("a training batch has no trainable label (all -100)")
                self.counter["trained_tokens"] += trainable
            prefix = inputs.get("prefix_ids")
            if prefix is not None:  # computed once per batch: the prefix once, plus each row's real suffix
                rows, shared = inputs["input_ids"].shape[0], prefix.shape[1]
                suffix = int(inputs["attention_mask"].sum())
                self.counter["input_tokens"] += shared + suffix
                self.counter["logical_input_tokens"] += rows * shared + suffix  # as if each row ran it
            else:
                self.counter["input_tokens"] += int(inputs["input_ids"].numel())
                self.counter["logical_input_tokens"] += int(inputs["input_ids"].numel())
            return super().training_step(model, inputs, num_items_in_batch)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            """Mean NLL of the label tokens, projecting only their positions through the LM head.

            TRL's fused head scores every position off Triton devices (49k-vocab matmul, entropy and
            top-1 included) though assistant-only labels leave most positions unlabelled. Normalised as
            ``Trainer`` expects: summed NLL / ``num_items_in_batch`` (labels of the whole accumulated
            batch; ``training_step`` then does not divide by the accumulation steps), else / this
            batch's labels (evaluation). ``use_cache=False`` keeps padding-free rows apart.

            A ``SharedPrefixCollator`` batch (``prefix_ids`` [1, P]): the prefix runs once, with
            gradients, its keys/values are repeated for the B rows and each row's suffix attends to them
            (gradients of the prefix sum over the rows, as B separate copies would). Same loss and
            gradients as the row-by-row path, except for LoRA dropout: the prefix's dropout mask is drawn
            once and shared by the rows of the batch (row by row, each row draws its own).
            """
            prefix = inputs.get("prefix_ids")
            if prefix is not None and not self.label_only_loss:
                raise ValueError("shared-prefix batches need the label-only loss")
            if return_outputs or not self.label_only_loss or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            causal_lm = self.accelerator.unwrap_model(model)
            if is_peft_model(causal_lm):
                causal_lm = causal_lm.get_base_model()  # LoRA layers are injected in place: they still run
            backbone = causal_lm.base_model
            if prefix is not None and prefix.shape[1] > 0:
                if causal_lm.is_activation_checkpointing and causal_lm.training:
                    # Checkpointed layers silently drop the cache: rows would not see their prefix.
                    raise ValueError("share_prefix does not work with gradient (activation) checkpointing")
                ids, shared = inputs["input_ids"], prefix.shape[1]
                cache = prefix_cache(backbone, prefix[0].tolist(), ids.shape[0], ids.device)
                mask = torch.cat([inputs["attention_mask"].new_ones(ids.shape[0], shared),
                                  inputs["attention_mask"]], dim=1)
                hidden = backbone(input_ids=ids, attention_mask=mask, cache=cache, use_cache=True).last_hidden_state
            else:
                backbone_inputs = {k: v for k, v in inputs.items()
                                   if k not in ("labels", "shift_labels", "prefix_ids")}
                hidden = backbone(**backbone_inputs, use_cache=False).last_hidden_state
            labels = inputs["labels"][:, 1:]
            mask = labels != IGNORE_INDEX
            head = causal_lm.get_output_embeddings()
            log_probs = head(hidden[:, :-1][mask].to(head.weight.device)).float().log_softmax(-1)
            targets = labels[mask].to(log_probs.device)
            count = mask.sum()
            loss = torch.nn.functional.nll_loss(log_probs, targets, reduction="sum")
            loss = loss / (count.clamp(min=1) if num_items_in_batch is None else num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # as Trainer: DDP averages the gradients
            self._record_metrics(inputs, log_probs.detach(), targets, count)
            return loss

        @torch.no_grad()
        def _record_metrics(self, inputs, log_probs, targets, count):
            """TRL's logged entropy, token accuracy and token count, over the labelled positions."""
            mode = "train" if self.model.training else "eval"
            gather = self.accelerator.gather_for_metrics
            n = gather(count).sum()
            entropy = gather(-(log_probs.exp() * log_probs).sum()).sum()
            correct = gather((log_probs.argmax(-1) == targets).sum()).sum()
            self._metrics[mode]["entropy"].append((entropy / n).item() if n > 0 else 0.0)
            self._metrics[mode]["mean_token_accuracy"].append((correct / n).item() if n > 0 else 0.0)
            if mode == "train":
                ids = inputs["input_ids"]
                local = inputs["attention_mask"].sum() if "attention_mask" in inputs else \
                    torch.tensor(ids.numel(), device=ids.device)
                if "prefix_ids" in inputs:  # TRL's num_tokens: tokens per row, the shared prefix included
                    local = local + ids.shape[0] * inputs["prefix_ids"].shape[1]
                self._total_train_tokens += int(gather(local).sum())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

    return CountingSFTTrainer
